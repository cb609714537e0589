//! Errors of the TLS layer.

use rustls::AlertDescription;
use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// One end of a TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that accepted the connection.
    Server,
    /// The end that opened it.
    Client,
}

impl Role {
    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// Why a TLS configuration could not be built, or why a handshake failed.
///
/// Loading errors name the file; handshake errors name the check that
/// failed and whose certificate failed it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read the {what} file {path}: {source} (check the path)")]
    Read {
        /// What the file should hold, for example `server certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A PEM source is malformed.
    #[error("the {what} in {source_name} is not valid PEM: {reason}")]
    BadPem {
        /// What the source should hold.
        what: &'static str,
        /// The file or in-memory source.
        source_name: String,
        /// What the PEM parser said.
        reason: String,
    },
    /// A source that should hold certificates holds none.
    #[error(
        "{source_name} holds no CERTIFICATE block, but it was given as the {what}: pass a PEM certificate file (`mqtls certs --out DIR` writes a matching test set)"
    )]
    NoCertificate {
        /// What the source should hold.
        what: &'static str,
        /// The file or in-memory source.
        source_name: String,
    },
    /// A certificate does not parse as X.509, or cannot be a trust anchor.
    #[error("the {what} in {source_name} is not a usable X.509 certificate: {reason}")]
    BadCertificate {
        /// What the source should hold.
        what: &'static str,
        /// The file or in-memory source.
        source_name: String,
        /// What rustls/webpki said.
        reason: String,
    },
    /// A source that should hold a private key holds none.
    #[error(
        "{source_name} holds no private key (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block): pass the key file, not a certificate"
    )]
    NoPrivateKey {
        /// The file or in-memory source.
        source_name: String,
    },
    /// A private key parses as PEM but rustls cannot sign with it.
    #[error(
        "the private key in {source_name} cannot be used: {reason} (supported: ECDSA P-256/P-384, RSA 2048+, Ed25519)"
    )]
    UnsupportedKey {
        /// The file or in-memory source.
        source_name: String,
        /// What the crypto provider said.
        reason: String,
    },
    /// The certificate was not issued for the private key next to it.
    #[error(
        "the certificate in {cert} does not match the private key in {key}: pass the key generated together with this certificate (`mqtls certs --out DIR` writes a matching test set)"
    )]
    KeyMismatch {
        /// The certificate source.
        cert: String,
        /// The key source.
        key: String,
    },
    /// The server name to check is not a DNS name or an IP address.
    #[error(
        "`{name}` is not a valid server name: use a DNS name or an IP address the server certificate holds"
    )]
    InvalidServerName {
        /// The name as given.
        name: String,
    },
    /// Client certificates are required, but no CA to check them was given.
    #[error(
        "client certificates are required but no client CA was given: pass the CA file that signs the client certificates"
    )]
    ClientCaMissing,
    /// rustls refused the configuration itself.
    #[error("invalid TLS configuration: {reason}")]
    Config {
        /// What rustls said.
        reason: String,
    },

    /// The peer's certificate has expired.
    #[error(
        "the {cert_of}'s certificate has expired{detail}: generate fresh certificates (`mqtls certs --out DIR --force`) or fix the clock"
    )]
    Expired {
        /// Whose certificate.
        cert_of: Role,
        /// When, if rustls said.
        detail: String,
    },
    /// The peer's certificate is not valid yet.
    #[error(
        "the {cert_of}'s certificate is not valid yet{detail}: check the clocks of both machines, or generate certificates valid from now"
    )]
    NotYetValid {
        /// Whose certificate.
        cert_of: Role,
        /// When it becomes valid, if rustls said.
        detail: String,
    },
    /// The server's certificate does not hold the name the client connected to.
    #[error(
        "the server's certificate is not valid for `{expected}` (it holds {presented}): connect with one of those names, or regenerate it with `mqtls certs --san {expected}`"
    )]
    WrongHost {
        /// The name the client checked.
        expected: String,
        /// The names the certificate holds, comma-separated.
        presented: String,
    },
    /// The peer's certificate is not signed by a trusted CA.
    #[error(
        "the {cert_of}'s certificate is not signed by the trusted CA in {trusted}: pass the CA file that signed it, or give the {cert_of} a certificate signed by this CA"
    )]
    UnknownCa {
        /// Whose certificate.
        cert_of: Role,
        /// The trusted CA source.
        trusted: String,
    },
    /// The server requires a client certificate and the client sent none.
    #[error(
        "the client sent no certificate, but this server requires one signed by {client_ca}: give the client a certificate and key"
    )]
    NoClientCertificate {
        /// The client CA source of the server.
        client_ca: String,
    },
    /// The server's certificate does not allow server authentication.
    #[error(
        "the server's certificate lacks the server-auth extended key usage (TLS Web Server Authentication): use a server certificate, not a client one"
    )]
    MissingServerAuthUsage,
    /// The client's certificate does not allow client authentication.
    #[error(
        "the client's certificate lacks the client-auth extended key usage (TLS Web Client Authentication): use a client certificate, not a server one"
    )]
    MissingClientAuthUsage,
    /// The peer's certificate failed another check (bad signature, bad
    /// encoding, unsupported algorithm, ...).
    #[error("the {cert_of}'s certificate was rejected: {reason:?}")]
    CertificateRejected {
        /// Whose certificate.
        cert_of: Role,
        /// The check as rustls reported it.
        reason: rustls::CertificateError,
    },
    /// The peer aborted the handshake with an alert: it rejected something
    /// of ours. Its own log says which check failed.
    #[error("the {peer} aborted the handshake with alert {alert:?}: {}", alert_hint(*.alert))]
    RejectedByPeer {
        /// Who sent the alert.
        peer: Role,
        /// The alert.
        alert: AlertDescription,
    },
    /// The handshake failed for a protocol reason.
    #[error("TLS handshake failed: {source}")]
    Handshake {
        /// What rustls said.
        source: rustls::Error,
    },
    /// The transport failed (connection reset, closed before the handshake
    /// finished, ...).
    #[error("TLS transport error: {source}")]
    Io {
        /// What the OS or tokio said.
        source: std::io::Error,
    },
}

fn alert_hint(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::UnknownCA => "it does not trust the CA that signed our certificate",
        AlertDescription::BadCertificate | AlertDescription::UnsupportedCertificate => {
            "it rejected our certificate"
        }
        AlertDescription::CertificateExpired => {
            "it considers our certificate expired or not yet valid"
        }
        AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure => {
            "it may require a client certificate we did not send"
        }
        AlertDescription::NoApplicationProtocol => "it speaks none of our ALPN protocols (mqtt)",
        AlertDescription::ProtocolVersion => "it speaks none of our TLS versions",
        _ => "see the peer's log for the check that failed",
    }
}
