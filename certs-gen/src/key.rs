//! Key pair generation for each [`KeyType`].

use crate::{CertsError, KeyType};
use rcgen::KeyPair;
use rustls_pki_types::PrivatePkcs8KeyDer;

/// Generates a fresh key pair; `what` names it in errors.
pub(crate) fn generate(key_type: KeyType, what: &'static str) -> Result<KeyPair, CertsError> {
    let failed = |reason: String| CertsError::KeyGeneration { what, reason };
    match key_type {
        KeyType::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| failed(e.to_string()))
        }
        KeyType::Ed25519 => {
            KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| failed(e.to_string()))
        }
        KeyType::Rsa2048 => {
            // ring signs with RSA keys but cannot make them: the rsa crate
            // generates the key, rcgen (on ring) does everything else.
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| failed(e.to_string()))?;
            let pkcs8 = key.to_pkcs8_der().map_err(|e| failed(e.to_string()))?;
            KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(|e| failed(e.to_string()))
        }
    }
}
