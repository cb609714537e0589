//! Errors of the command line layer.

use std::path::PathBuf;
use thiserror::Error;

/// Why a subcommand could not do its job (as opposed to finding a problem,
/// which is its job and is reported through its exit status).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// A report or output file could not be written.
    #[error(
        "cannot write {path}: {source} (check that the directory is writable, or pass another one)"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Input could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        /// The file or stream.
        what: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// The test PKI could not be generated or written.
    #[error("{0}")]
    Certs(#[from] certs_gen::CertsError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    /// A network step failed (connect, TLS, subscribe, publish).
    #[error("{0}")]
    Net(String),
    /// A hostile-broker or probe run could not do its job.
    #[error(transparent)]
    Hostile(#[from] crate::hostile::HostileError),
}
