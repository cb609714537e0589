//! Whether a fuzz run may switch the historic faults on, and which.

use crate::faults::{Fault, FaultSet, UnknownFault};

/// The environment variable the fuzz targets read once at start-up.
///
/// - unset, empty, `0`, `off` or `none`: faults off (the fixed protocol;
///   any finding is a bug in the kernels);
/// - `1`, `on` or `input`: byte 0 of each input picks one fault (or none),
///   so the fuzzer explores every fault at once;
/// - a fault name or a comma-separated list (`nanomq-485`), or `all`: that
///   set for every input, for a detection campaign against one fault.
pub const FAULTS_ENV: &str = "MQTLS_FUZZ_FAULTS";

/// Which faults the kernel targets switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultPolicy {
    /// The fixed protocol: byte 0 of the input is ignored.
    #[default]
    Off,
    /// Byte 0 of the input picks the fault: 0 none, `i` the `i`-th of
    /// [`Fault::ALL`] (modulo the number of faults plus one).
    ByFirstByte,
    /// The same set for every input; byte 0 is ignored.
    Fixed(FaultSet),
}

impl FaultPolicy {
    /// Reads [`FAULTS_ENV`].
    pub fn from_env() -> Result<Self, UnknownFault> {
        Self::parse(&std::env::var(FAULTS_ENV).unwrap_or_default())
    }

    /// Parses a value of [`FAULTS_ENV`].
    pub fn parse(value: &str) -> Result<Self, UnknownFault> {
        let v = value.trim();
        match v.to_ascii_lowercase().as_str() {
            "" | "0" | "off" | "none" => Ok(FaultPolicy::Off),
            "1" | "on" | "input" => Ok(FaultPolicy::ByFirstByte),
            _ => v.parse::<FaultSet>().map(FaultPolicy::Fixed),
        }
    }

    /// The faults for an input whose first byte is `first`.
    pub fn select(&self, first: Option<u8>) -> FaultSet {
        match self {
            FaultPolicy::Off => FaultSet::NONE,
            FaultPolicy::Fixed(set) => *set,
            FaultPolicy::ByFirstByte => {
                let i = usize::from(first.unwrap_or(0)) % (Fault::ALL.len() + 1);
                match i.checked_sub(1).and_then(|i| Fault::ALL.get(i)) {
                    Some(f) => FaultSet::only(*f),
                    None => FaultSet::NONE,
                }
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(FaultPolicy::parse(""), Ok(FaultPolicy::Off));
        assert_eq!(FaultPolicy::parse("off"), Ok(FaultPolicy::Off));
        assert_eq!(FaultPolicy::parse("1"), Ok(FaultPolicy::ByFirstByte));
        assert_eq!(
            FaultPolicy::parse("nanomq-485"),
            Ok(FaultPolicy::Fixed(FaultSet::only(Fault::Nanomq485)))
        );
        assert!(FaultPolicy::parse("nanomq-0").is_err());
    }

    #[test]
    fn first_byte_picks_each_fault_and_none() {
        let p = FaultPolicy::ByFirstByte;
        assert_eq!(p.select(Some(0)), FaultSet::NONE);
        assert_eq!(p.select(None), FaultSet::NONE);
        for (i, f) in Fault::ALL.into_iter().enumerate() {
            assert_eq!(p.select(Some(i as u8 + 1)), FaultSet::only(f));
        }
        assert_eq!(FaultPolicy::Off.select(Some(3)), FaultSet::NONE);
    }
}
