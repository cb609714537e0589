//! Turning a failed handshake into the check that failed.
//!
//! tokio-rustls reports every TLS failure as an `io::Error` wrapping a
//! `rustls::Error`; this module unwraps it and names the check, the side
//! whose certificate failed it, and the file the user should look at.

use super::{Role, TlsError};
use rustls::{CertificateError, Error};
use rustls_pki_types::UnixTime;

/// What the explaining side knows about its own configuration.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Which end this is.
    pub(crate) local: Role,
    /// The CA source this end trusts (for the peer's certificate).
    pub(crate) trusted: String,
    /// The name the client checked (clients only).
    pub(crate) server_name: Option<String>,
}

/// Explains an error from a tokio-rustls handshake (or a later read or write)
/// run as `local`, for callers that drive tokio-rustls themselves.
/// [`super::ServerTls::explain`] and [`super::ClientTls::explain`] also name
/// the trusted CA file.
pub fn explain_handshake_error(err: std::io::Error, local: Role) -> TlsError {
    explain(
        err,
        &Context {
            local,
            trusted: "the trusted CA".to_owned(),
            server_name: None,
        },
    )
}

pub(crate) fn explain(err: std::io::Error, ctx: &Context) -> TlsError {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .cloned();
    match tls {
        Some(tls) => explain_rustls(tls, ctx),
        None => TlsError::Io { source: err },
    }
}

fn explain_rustls(err: Error, ctx: &Context) -> TlsError {
    let cert_of = ctx.local.peer();
    match err {
        Error::InvalidCertificate(cert) => explain_certificate(cert, cert_of, ctx),
        Error::NoCertificatesPresented if ctx.local == Role::Server => {
            TlsError::NoClientCertificate {
                client_ca: ctx.trusted.clone(),
            }
        }
        Error::AlertReceived(alert) => TlsError::RejectedByPeer {
            peer: cert_of,
            alert,
        },
        other => TlsError::Handshake { source: other },
    }
}

fn explain_certificate(cert: CertificateError, cert_of: Role, ctx: &Context) -> TlsError {
    use CertificateError as C;
    match cert {
        C::Expired => TlsError::Expired {
            cert_of,
            detail: String::new(),
        },
        C::ExpiredContext { time, not_after } => TlsError::Expired {
            cert_of,
            detail: format!(" ({} ago)", age(not_after, time)),
        },
        C::NotValidYet => TlsError::NotYetValid {
            cert_of,
            detail: String::new(),
        },
        C::NotValidYetContext { time, not_before } => TlsError::NotYetValid {
            cert_of,
            detail: format!(" (valid in {})", age(time, not_before)),
        },
        C::NotValidForName => TlsError::WrongHost {
            expected: ctx.server_name.clone().unwrap_or_default(),
            presented: "other names".to_owned(),
        },
        C::NotValidForNameContext {
            expected,
            presented,
        } => TlsError::WrongHost {
            expected: expected.to_str().into_owned(),
            presented: if presented.is_empty() {
                "no names".to_owned()
            } else {
                presented.join(", ")
            },
        },
        C::UnknownIssuer => TlsError::UnknownCa {
            cert_of,
            trusted: ctx.trusted.clone(),
        },
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => match cert_of {
            Role::Server => TlsError::MissingServerAuthUsage,
            Role::Client => TlsError::MissingClientAuthUsage,
        },
        other => TlsError::CertificateRejected {
            cert_of,
            reason: other,
        },
    }
}

/// `later - earlier` in the largest unit that keeps it readable.
fn age(earlier: UnixTime, later: UnixTime) -> String {
    let secs = later.as_secs().saturating_sub(earlier.as_secs());
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 2 * 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}
