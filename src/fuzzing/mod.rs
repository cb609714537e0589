//! Fuzz entry points: one function per cargo-fuzz target (`fuzz/`), kept in
//! the library so that the targets are one-liners and a plain `cargo test`
//! on stable replays every committed corpus and regression file through
//! exactly the code the fuzzer ran (`tests/fuzz_regressions.rs`).
//!
//! | target | input | checks |
//! |---|---|---|
//! | [`codec_decode`] | raw bytes | decoding never panics; what decodes re-encodes canonically to the same packet |
//! | [`codec_roundtrip`] | bytes for [`crate::codec::arbitrary`] | every valid packet encodes and decodes back to itself |
//! | [`broker_stream`] | a script of client byte streams and transport events | the broker kernel, then shutdown and a ledger audit |
//! | [`client_stream`] | a hostile broker's bytes, transport events and user API calls | the client kernel, audited the same way |
//! | [`lifecycle_ops`] | a script of kernel operations over the in-memory transport | both kernels, audited after each input |
//!
//! The kernel targets read their input as a [`Script`](script) of one-byte
//! opcodes with operands (see each target's op enum), so that libFuzzer's
//! byte mutations, the dictionary `fuzz/mqtt.dict` and the seed corpora
//! (written by [`seeds`]) all speak the same grammar. Byte 0 of every
//! kernel input selects the historic faults when the [`FaultPolicy`]
//! allows them, and is ignored otherwise, so one corpus serves both.
//!
//! For throughput the kernels record into a [`Mode::Counting`] ledger
//! (every misuse is still detected); when the audit is not clean the input
//! runs again in [`Mode::Full`] so that the [`Finding`] carries each
//! violation's diagnosis and timeline, and a crash reads like a bug report.
//!
//! [`Mode::Counting`]: crate::ledger::Mode::Counting
//! [`Mode::Full`]: crate::ledger::Mode::Full

pub mod broker_stream;
mod caller;
pub mod client_stream;
mod codec_decode;
mod codec_roundtrip;
mod finding;
pub mod lifecycle_ops;
mod policy;
pub mod script;
pub mod seeds;
pub mod shapes;

pub use broker_stream::{BrokerOp, broker_stream, broker_stream_with};
pub use client_stream::{ClientOp, client_stream, client_stream_with};
pub use codec_decode::codec_decode;
pub use codec_roundtrip::codec_roundtrip;
pub use finding::Finding;
pub use lifecycle_ops::{LifecycleOp, lifecycle_ops, lifecycle_ops_with};
pub use policy::{FAULTS_ENV, FaultPolicy};
pub use shapes::{BrokerPacket, ClientPacket};

use crate::faults::FaultSet;
use crate::ledger::{Audit, Mode};

/// The fuzz targets, by the names `fuzz/` and its corpora use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// [`codec_decode`].
    CodecDecode,
    /// [`codec_roundtrip`].
    CodecRoundtrip,
    /// [`broker_stream`].
    BrokerStream,
    /// [`client_stream`].
    ClientStream,
    /// [`lifecycle_ops`].
    LifecycleOps,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::CodecDecode,
        Target::CodecRoundtrip,
        Target::BrokerStream,
        Target::ClientStream,
        Target::LifecycleOps,
    ];

    /// The cargo-fuzz target name (and corpus folder).
    pub fn name(self) -> &'static str {
        match self {
            Target::CodecDecode => "codec_decode",
            Target::CodecRoundtrip => "codec_roundtrip",
            Target::BrokerStream => "broker_stream",
            Target::ClientStream => "client_stream",
            Target::LifecycleOps => "lifecycle_ops",
        }
    }

    /// Runs one input with the historic faults off (the replay of corpora
    /// and regressions).
    pub fn run(self, data: &[u8]) -> Result<(), Finding> {
        self.run_with(data, &FaultPolicy::Off)
    }

    /// Runs one input under `policy`.
    pub fn run_with(self, data: &[u8], policy: &FaultPolicy) -> Result<(), Finding> {
        match self {
            Target::CodecDecode => codec_decode(data),
            Target::CodecRoundtrip => codec_roundtrip(data),
            Target::BrokerStream => broker_stream_with(data, policy),
            Target::ClientStream => client_stream_with(data, policy),
            Target::LifecycleOps => lifecycle_ops_with(data, policy),
        }
    }
}

/// Runs a kernel script in counting mode and, when its audit is not clean,
/// once more in full mode for the histories.
fn audited(
    target: Target,
    data: &[u8],
    policy: &FaultPolicy,
    run: impl Fn(&[u8], FaultSet, Mode) -> Audit,
) -> Result<(), Finding> {
    let faults = policy.select(data.first().copied());
    let body = data.get(1..).unwrap_or_default();
    let quick = run(body, faults, Mode::Counting);
    if quick.is_clean() {
        return Ok(());
    }
    let full = run(body, faults, Mode::Full);
    // The kernels iterate hash maps, so a rerun may take another order; the
    // counting run's findings stand if the rerun came out clean.
    let audit = if full.is_clean() { quick } else { full };
    Err(Finding::violations(target, faults, &audit))
}
