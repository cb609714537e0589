//! Errors of the soak engine.

use thiserror::Error;

/// Why a soak could not run (as opposed to what it measured).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SoakError {
    /// A broker did not start or did not listen.
    #[error("cannot start the broker: {0} (is it installed, and is the port free?)")]
    Start(String),
    /// A client could not connect (TCP, TLS or CONNACK).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The broker answered something a soak client did not expect.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Our broker's shutdown report is missing or unreadable.
    #[error("no broker report: {0}")]
    Report(String),
}

impl SoakError {
    pub(crate) fn io(what: &str, source: std::io::Error) -> SoakError {
        SoakError::Io {
            what: what.to_string(),
            source,
        }
    }
}
