//! Errors of the certificate generator.

use std::path::PathBuf;
use thiserror::Error;

/// Why a test PKI could not be generated or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A name asked for as a subject alternative name is neither an IP
    /// address nor a valid DNS name.
    #[error(
        "`{name}` cannot be a certificate name: {reason} (use a DNS name such as `broker.test` or an IP address)"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The wrong-host name is also one of the server names, so the
    /// wrong-host certificate would not be wrong.
    #[error(
        "the wrong-host name `{name}` is also a server name: pick a name the server certificate does not hold"
    )]
    WrongHostIsServerName {
        /// The name.
        name: String,
    },
    /// The validity period is unusable (zero days, or beyond what X.509
    /// dates can express).
    #[error("invalid validity of {days} days: pick between 1 and 36500")]
    InvalidValidity {
        /// The number of days asked for.
        days: u32,
    },
    /// A key pair could not be generated.
    #[error("cannot generate the {what} key: {reason}")]
    KeyGeneration {
        /// Which key (for example `server`).
        what: &'static str,
        /// What the crypto library said.
        reason: String,
    },
    /// A certificate could not be built or signed.
    #[error("cannot create the {what} certificate: {source}")]
    Certificate {
        /// Which certificate (for example `expired server`).
        what: &'static str,
        /// What rcgen said.
        source: rcgen::Error,
    },
    /// Some of the files to write already exist.
    #[error("refusing to overwrite {}: pass --force to replace them, or choose another --out directory", list(.paths))]
    WouldOverwrite {
        /// Every existing file that would have been replaced.
        paths: Vec<PathBuf>,
    },
    /// The output directory could not be created.
    #[error("cannot create directory {path}: {source} (check the path and its permissions)")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file could not be written (or, with `--force`, removed first).
    #[error("cannot write {path}: {source} (check that the directory is writable)")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Something that is not a regular file stands where a PEM file goes.
    #[error(
        "{path} exists and is not a regular file: move it away or choose another --out directory"
    )]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
}

/// Names the first few paths: a whole PKI's worth of paths hides the advice.
fn list(paths: &[PathBuf]) -> String {
    const SHOWN: usize = 3;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}
