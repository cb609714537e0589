//! A certificate chain and its private key, loaded and checked to match.

use super::{PemSource, TlsError};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{Error, InconsistentKeys};

/// Loads `cert` (chain, leaf first) and `key`, and checks that the key is the
/// leaf's: a mismatch would otherwise only show up as a failed handshake on
/// the peer, far from the file that caused it.
pub(crate) fn load(
    cert: &PemSource,
    key: &PemSource,
    what: &'static str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = cert.certificates(what)?;
    let key_der = key.private_key()?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::UnsupportedKey {
            source_name: key.name(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key cannot tell its public half; the peer will check.
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(TlsError::KeyMismatch {
            cert: cert.name(),
            key: key.name(),
        }),
        Err(other) => Err(TlsError::BadCertificate {
            what,
            source_name: cert.name(),
            reason: other.to_string(),
        }),
    }
}
