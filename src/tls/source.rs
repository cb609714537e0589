//! Where PEM material comes from, and loading it with errors that name it.

use super::TlsError;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::borrow::Cow;
use std::path::PathBuf;

/// PEM text in a file or in memory.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A PEM file on disk.
    File(PathBuf),
    /// PEM text already in memory (for example from a [`certs_gen::Pki`]).
    Memory {
        /// How errors name it, for example `server.pem`.
        name: String,
        /// The PEM text.
        pem: String,
    },
}

impl std::fmt::Debug for PemSource {
    // Never prints in-memory PEM: it may be a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PemSource({})", self.name())
    }
}

impl PemSource {
    /// A PEM file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        PemSource::File(path.into())
    }

    /// In-memory PEM text; `name` is how errors refer to it.
    pub fn memory(name: impl Into<String>, pem: impl Into<String>) -> Self {
        PemSource::Memory {
            name: name.into(),
            pem: pem.into(),
        }
    }

    /// How errors name this source: the path, or the in-memory name.
    pub fn name(&self) -> String {
        match self {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Memory { name, .. } => format!("{name} (in memory)"),
        }
    }

    fn bytes(&self, what: &'static str) -> Result<Cow<'_, [u8]>, TlsError> {
        match self {
            PemSource::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| TlsError::Read {
                        what,
                        path: path.clone(),
                        source,
                    })
            }
            PemSource::Memory { pem, .. } => Ok(Cow::Borrowed(pem.as_bytes())),
        }
    }

    /// Every certificate in the source, in order; at least one.
    pub(crate) fn certificates(
        &self,
        what: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.bytes(what)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.bad_pem(what, e))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                what,
                source_name: self.name(),
            });
        }
        Ok(certs)
    }

    /// The first private key in the source.
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.bytes("private key")?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError::NoPrivateKey {
                source_name: self.name(),
            },
            other => self.bad_pem("private key", other),
        })
    }

    /// The certificates of the source as trust anchors.
    pub(crate) fn root_store(&self, what: &'static str) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates(what)? {
            roots.add(cert).map_err(|e| TlsError::BadCertificate {
                what,
                source_name: self.name(),
                reason: e.to_string(),
            })?;
        }
        Ok(roots)
    }

    fn bad_pem(&self, what: &'static str, e: pem::Error) -> TlsError {
        TlsError::BadPem {
            what,
            source_name: self.name(),
            reason: e.to_string(),
        }
    }
}

impl From<PathBuf> for PemSource {
    fn from(path: PathBuf) -> Self {
        PemSource::File(path)
    }
}

impl From<&std::path::Path> for PemSource {
    fn from(path: &std::path::Path) -> Self {
        PemSource::File(path.to_path_buf())
    }
}
