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
    /// The broker ended the connection (a reset or broken pipe while
    /// writing): what a consumer over its limit is told, not a failure.
    #[error("the broker closed the connection")]
    Closed,
}

impl SoakError {
    /// A write's failure: the broker closing is [`SoakError::Closed`].
    pub(crate) fn write(source: std::io::Error) -> SoakError {
        use std::io::ErrorKind as K;
        match source.kind() {
            K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => SoakError::Closed,
            _ => SoakError::io("writing", source),
        }
    }

    pub(crate) fn io(what: &str, source: std::io::Error) -> SoakError {
        SoakError::Io {
            what: what.to_string(),
            source,
        }
    }
}
