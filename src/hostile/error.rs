//! Errors of the hostile peers.

use crate::tls::TlsError;
use std::path::PathBuf;
use thiserror::Error;

/// A temporary directory named `prefix...`, removed when dropped.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, HostileError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| HostileError::File {
            path: std::env::temp_dir(),
            source,
        })
}

/// Why a hostile-broker or probe run could not do its job (as opposed to a
/// finding about the peer under test, which is a result, not an error).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HostileError {
    /// The name does not match any scenario.
    #[error("no scenario is called `{name}`: `--list` prints the scenarios")]
    UnknownScenario {
        /// The name as given.
        name: String,
    },
    /// The host is not a loopback address and `--allow-remote` was not given.
    #[error(
        "{host} resolves to {addr}, which is not a loopback address: these scenarios attack the peer, so only 127.0.0.1/::1 are allowed unless you pass --allow-remote for a machine you own"
    )]
    NotLoopback {
        /// The host as given.
        host: String,
        /// The address it resolved to.
        addr: std::net::IpAddr,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source} (pass an IP address such as 127.0.0.1)")]
    Resolve {
        /// The host as given.
        host: String,
        /// What the resolver said.
        source: std::io::Error,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source} (pick another --port, or 0 for any free port)")]
    Bind {
        /// The address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built, or a handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A test PKI could not be generated or written.
    #[error("cannot generate the test PKI: {0}")]
    Certs(#[from] certs_gen::CertsError),
    /// A temporary directory or a file could not be created or read.
    #[error("cannot use {path}: {source}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The client command names a placeholder that has no value.
    #[error(
        "the client command uses {{{placeholder}}}, but no value was given for it: pass --{placeholder} (or none of --cafile/--cert/--key to use a generated PKI)"
    )]
    MissingPlaceholder {
        /// The placeholder's name, without braces.
        placeholder: &'static str,
    },
    /// The client command could not be started.
    #[error("cannot start the client command through `sh -c`: {source} (is /bin/sh installed?)")]
    Spawn {
        /// What the OS said.
        source: std::io::Error,
    },
    /// A TCP or TLS connection to the broker under test failed.
    #[error("cannot {what} {addr}: {reason} (is the broker running with TLS on that port?)")]
    Connect {
        /// What was attempted.
        what: &'static str,
        /// The broker address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The broker under test did not serve a well-behaved client before any
    /// scenario ran: nothing the probe would find would mean anything.
    #[error(
        "the broker at {addr} does not serve a plain client before any scenario ran: {reason} (check --host/--port/--cafile and that the broker allows anonymous clients)"
    )]
    BrokerNotServing {
        /// The broker address.
        addr: String,
        /// Why the liveness check failed.
        reason: String,
    },
    /// The broker of `--broker-cmd` exited, or did not serve, before any
    /// scenario ran.
    #[error(
        "`{command}` {why}; it printed:\n{output}\n(check the command, its configuration, and that it listens with TLS on --host/--port)"
    )]
    BrokerDidNotStart {
        /// The command.
        command: String,
        /// What went wrong.
        why: String,
        /// The end of what it printed.
        output: String,
    },
    /// A corpus file could not be read.
    #[error("cannot read the corpus {path}: {source} (pass a directory of raw packet files)")]
    Corpus {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The LeakSanitizer-on-signal helper could not be compiled.
    #[error(
        "cannot build the leak-check helper with `{compiler}`: {reason} (install a C compiler, set CC, or leave out --leak-check-on-stop)"
    )]
    LeakCheckBuild {
        /// The compiler used.
        compiler: String,
        /// What it said.
        reason: String,
    },
    /// A report given to compare could not be read or is not a report.
    #[error("cannot read the report {path}: {reason}")]
    Report {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The report the shim linked into the target wrote cannot be read.
    #[error(
        "cannot read the mqtls-shim report {path} the target wrote: {reason} (was the target linked with another version of mqtls-shim? rebuild it with targets/nanomq/build.sh --variant shim)"
    )]
    ShimReport {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// An option is out of range.
    #[error("{0}")]
    Usage(String),
}
