//! rustls configurations from PEM files or from the in-memory test PKI.
//!
//! - [`ServerTlsOptions`] builds a [`ServerTls`]: the server identity,
//!   optional (or required) client certificates checked against a CA;
//! - [`ClientTlsOptions`] builds a [`ClientTls`]: the trusted CA, the server
//!   name to check, an optional client identity for mutual TLS.
//!
//! Both offer the ALPN protocol `mqtt` without requiring it, speak TLS 1.2
//! and 1.3, and use the ring crypto provider explicitly (no process-wide
//! default needs installing). Every failure is a [`TlsError`] naming the file
//! or the check: loading problems when the configuration is built, and
//! certificate checks when a handshake fails ([`ServerTls::accept`],
//! [`ClientTls::connect`], or [`explain_handshake_error`] for callers that
//! drive tokio-rustls themselves).

mod client;
mod error;
mod identity;
mod rejection;
mod server;
pub mod sniff;
mod source;

pub use client::{ClientTls, ClientTlsOptions, TlsVersions};
pub use error::{Role, TlsError};
pub use rejection::explain_handshake_error;
pub use server::{ServerTls, ServerTlsOptions};
pub use sniff::FirstBytes;
pub use source::PemSource;

use crate::sync::StdArc;
use rustls::crypto::CryptoProvider;

/// The ALPN protocol identifier offered by both sides.
pub const ALPN_MQTT: &[u8] = b"mqtt";

/// The one crypto provider of the harness.
fn provider() -> StdArc<CryptoProvider> {
    StdArc::new(rustls::crypto::ring::default_provider())
}
