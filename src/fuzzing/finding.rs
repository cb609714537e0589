//! What a fuzz entry point reports instead of passing.

use super::Target;
use crate::codec::{CodecError, Packet, Version};
use crate::faults::FaultSet;
use crate::ledger::{Audit, ViolationKind};
use thiserror::Error;

/// How many violations a finding spells out in full (the rest are counted).
const SHOWN: usize = 3;

/// A failed check: the ledger's violations, or a codec inconsistency. Its
/// `Display` is the bug report (diagnosis and timeline of each violation).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Finding {
    /// The ledger audit after the input was not clean.
    #[error(
        "{target}: {count} ledger violation(s) with faults [{faults}] (to keep the input as a \
         test: fuzz/README.md, \"Promote a crash\")\n{report}"
    )]
    Violations {
        /// The target that ran.
        target: &'static str,
        /// The faults switched on, by name (empty: the fixed protocol).
        faults: String,
        /// How many violations.
        count: usize,
        /// The kinds found, in order.
        kinds: Vec<ViolationKind>,
        /// The first few violations in full, then a count of the rest.
        report: String,
    },
    /// A packet the decoder accepted cannot be encoded again.
    #[error("codec: a decoded {version} packet does not re-encode ({error}): {packet:?}")]
    DecodedNotEncodable {
        /// The version decoded in.
        version: Version,
        /// The encoder's complaint.
        error: CodecError,
        /// The decoded packet.
        packet: Box<Packet>,
    },
    /// A valid packet could not be encoded.
    #[error("codec: a valid {version} packet does not encode ({error}): {packet:?}")]
    ValidNotEncodable {
        /// The version encoded in.
        version: Version,
        /// The encoder's complaint.
        error: CodecError,
        /// The packet.
        packet: Box<Packet>,
    },
    /// The frame decoder read the same bytes into another packet than the
    /// whole-packet decoder did (its in-place and fast paths must claim only
    /// what the full decoder decodes the same way).
    #[error(
        "codec: the frame decoder and the whole-packet decoder read the same {version} bytes differently\n  whole packet:  {whole:?}\n  frame decoder: {frame:?}"
    )]
    DecodersDisagree {
        /// The version.
        version: Version,
        /// What `decode`/`decode_connect` gave.
        whole: Box<Packet>,
        /// What the frame decoder gave.
        frame: Box<Packet>,
    },
    /// An encoding did not decode back to the packet it came from.
    #[error(
        "codec: {version} round trip changed the packet{}\n  before: {before:?}\n  after:  {after}",
        if *.canonical_differs { " (and its canonical encoding is not stable)" } else { "" }
    )]
    RoundTrip {
        /// The version.
        version: Version,
        /// The packet encoded.
        before: Box<Packet>,
        /// What decoding its encoding gave (or the error).
        after: String,
        /// Encoding the decoded packet again gave other bytes.
        canonical_differs: bool,
    },
}

impl Finding {
    pub(super) fn violations(target: Target, faults: FaultSet, audit: &Audit) -> Finding {
        let mut report = String::new();
        for v in audit.violations.iter().take(SHOWN) {
            report.push_str(&v.to_string());
            report.push('\n');
        }
        let rest = audit.violations.len().saturating_sub(SHOWN);
        if rest > 0 {
            report.push_str(&format!("... and {rest} more\n"));
        }
        Finding::Violations {
            target: target.name(),
            faults: faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(","),
            count: audit.violations.len(),
            kinds: audit.violations.iter().map(|v| v.kind).collect(),
            report,
        }
    }

    /// The violation kinds, for a ledger finding.
    pub fn kinds(&self) -> &[ViolationKind] {
        match self {
            Finding::Violations { kinds, .. } => kinds,
            _ => &[],
        }
    }
}
