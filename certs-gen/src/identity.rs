//! Generated certificates, with and without their private key.

use rcgen::{Certificate, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;

/// A CA certificate (its key is dropped once the PKI is signed: nothing
/// needs to sign with it afterwards).
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificate {
    der: CertificateDer<'static>,
    pem: String,
}

impl CaCertificate {
    pub(crate) fn new(cert: &Certificate) -> Self {
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
        }
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.der
    }
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificate")
            .field("der_len", &self.der.len())
            .finish()
    }
}

/// An end-entity certificate and its private key (PKCS#8).
#[derive(PartialEq, Eq)]
pub struct Identity {
    cert: CaCertificate,
    key_der: PrivatePkcs8KeyDer<'static>,
    key_pem: String,
}

impl Identity {
    pub(crate) fn new(cert: &Certificate, key: &KeyPair) -> Self {
        Self {
            cert: CaCertificate::new(cert),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn cert_pem(&self) -> &str {
        self.cert.cert_pem()
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.cert.cert_der()
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The private key as DER, ready for rustls.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }
}

impl fmt::Debug for Identity {
    // Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert_der_len", &self.cert.cert_der().len())
            .finish_non_exhaustive()
    }
}
