//! Errors the ledger returns to code that used a handle it may not use.

use super::msg::MsgKind;
use thiserror::Error;

/// Refusals of the ledger layer. The misuse behind each one has already been
/// recorded as a violation; the error only keeps the caller from acting on
/// memory that is no longer its own.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The handle names a message that was already freed.
    #[error(
        "msg #{serial} {kind} was already freed; this access is recorded as a violation \
         (see the ledger report for who freed it)"
    )]
    StaleMessage {
        /// The message's serial number.
        serial: u64,
        /// What it carried.
        kind: MsgKind,
    },
}
