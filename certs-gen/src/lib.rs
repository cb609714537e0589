//! An in-memory test PKI for TLS tests, good and deliberately broken.
//!
//! [`Pki::generate`] makes, in memory:
//! - a CA, a server certificate for `localhost`, `127.0.0.1` and `::1` (plus
//!   any extra names asked for) and a client certificate for mutual TLS;
//! - a [`BrokenPki`]: one certificate per failure a TLS peer must detect
//!   (expired, not yet valid, wrong host name, missing server-auth usage, and
//!   a rogue CA with a server and a client certificate signed by it).
//!
//! [`Pki::write_pem`] writes them as PEM files that OpenSSL-based programs
//! (mosquitto, NanoMQ, `openssl verify`) accept; [`cli`] is the command line
//! shared by the `certs-gen` binary and `mqtls certs`.
//!
//! ```
//! let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())?;
//! assert!(pki.server.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok::<(), certs_gen::CertsError>(())
//! ```
#![warn(missing_docs)]

pub mod cli;
mod error;
mod files;
mod identity;
mod key;
mod options;
mod pki;
mod profile;

pub use error::CertsError;
pub use files::{PemFile, WrittenFile};
pub use identity::{CaCertificate, Identity};
pub use options::{KeyType, PkiOptions};
pub use pki::{BrokenPki, Pki};
