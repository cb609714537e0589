//! The on-disk layout of a [`Pki`] and how it is written.

use crate::{CertsError, Pki};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Subdirectory of the output directory holding the broken material.
pub const BROKEN_DIR: &str = "broken";

/// One PEM file of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PemFile<'a> {
    /// Path relative to the output directory, for example `broken/expired-server.pem`.
    pub relative_path: &'static str,
    /// The PEM text.
    pub contents: &'a str,
    /// A private key: written with mode 0600.
    pub secret: bool,
    /// What the file is, for the listing printed after writing.
    pub description: &'static str,
}

/// A file [`Pki::write_pem`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub description: &'static str,
}

impl fmt::Display for WrittenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  ({})", self.path.display(), self.description)
    }
}

impl Pki {
    /// Every file of the layout, good material first.
    pub fn pem_files(&self) -> Vec<PemFile<'_>> {
        let cert = |relative_path, contents, description| PemFile {
            relative_path,
            contents,
            secret: false,
            description,
        };
        let key = |relative_path, contents, description| PemFile {
            relative_path,
            contents,
            secret: true,
            description,
        };
        let b = &self.broken;
        vec![
            cert(
                "ca.pem",
                self.ca.cert_pem(),
                "CA certificate: trust this one",
            ),
            cert("server.pem", self.server.cert_pem(), "server certificate"),
            key("server.key", self.server.key_pem(), "server private key"),
            cert(
                "client.pem",
                self.client.cert_pem(),
                "client certificate for mutual TLS",
            ),
            key("client.key", self.client.key_pem(), "client private key"),
            cert(
                "broken/expired-server.pem",
                b.expired_server.cert_pem(),
                "server certificate that expired yesterday",
            ),
            key(
                "broken/expired-server.key",
                b.expired_server.key_pem(),
                "its private key",
            ),
            cert(
                "broken/not-yet-valid-server.pem",
                b.not_yet_valid_server.cert_pem(),
                "server certificate valid only from 30 days from now",
            ),
            key(
                "broken/not-yet-valid-server.key",
                b.not_yet_valid_server.key_pem(),
                "its private key",
            ),
            cert(
                "broken/wrong-host-server.pem",
                b.wrong_host_server.cert_pem(),
                "server certificate for another host name only",
            ),
            key(
                "broken/wrong-host-server.key",
                b.wrong_host_server.key_pem(),
                "its private key",
            ),
            cert(
                "broken/no-server-auth-server.pem",
                b.no_server_auth_server.cert_pem(),
                "server certificate without the server-auth usage",
            ),
            key(
                "broken/no-server-auth-server.key",
                b.no_server_auth_server.key_pem(),
                "its private key",
            ),
            cert(
                "broken/rogue-ca.pem",
                b.rogue_ca.cert_pem(),
                "CA that nobody trusts",
            ),
            cert(
                "broken/rogue-server.pem",
                b.rogue_server.cert_pem(),
                "server certificate signed by the rogue CA",
            ),
            key(
                "broken/rogue-server.key",
                b.rogue_server.key_pem(),
                "its private key",
            ),
            cert(
                "broken/rogue-client.pem",
                b.rogue_client.cert_pem(),
                "client certificate signed by the rogue CA",
            ),
            key(
                "broken/rogue-client.key",
                b.rogue_client.key_pem(),
                "its private key",
            ),
        ]
    }

    /// Writes every file of [`Pki::pem_files`] under `dir` (created if
    /// missing), keys with mode 0600.
    ///
    /// Without `force`, nothing is written when any of the files already
    /// exists: a half-replaced PKI would mix certificates of two CAs.
    pub fn write_pem(&self, dir: &Path, force: bool) -> Result<Vec<WrittenFile>, CertsError> {
        let files = self.pem_files();
        let targets: Vec<PathBuf> = files.iter().map(|f| dir.join(f.relative_path)).collect();

        let mut existing = Vec::new();
        for path in &targets {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_file() => existing.push(path.clone()),
                Ok(_) => return Err(CertsError::NotAFile { path: path.clone() }),
                Err(_) => {}
            }
        }
        if !force && !existing.is_empty() {
            return Err(CertsError::WouldOverwrite { paths: existing });
        }

        for sub in [dir.to_path_buf(), dir.join(BROKEN_DIR)] {
            fs::create_dir_all(&sub)
                .map_err(|source| CertsError::CreateDir { path: sub, source })?;
        }
        // Removing first, then creating exclusively, gives a replaced key
        // file mode 0600 even if the old one was world-readable.
        for path in existing {
            fs::remove_file(&path).map_err(|source| CertsError::Write { path, source })?;
        }

        let mut written = Vec::with_capacity(files.len());
        for (file, path) in files.iter().zip(targets) {
            write_new(&path, file.contents, file.secret).map_err(|source| CertsError::Write {
                path: path.clone(),
                source,
            })?;
            written.push(WrittenFile {
                path,
                description: file.description,
            });
        }
        Ok(written)
    }
}

fn write_new(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}
