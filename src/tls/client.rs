//! The client side: trusted CA, server name, optional client identity.

use super::rejection::{Context, explain};
use super::{ALPN_MQTT, PemSource, Role, TlsError, identity, provider};
use crate::sync::StdArc;
use certs_gen::{Identity, Pki};
use rustls::client::ResolvesClientCert;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, SupportedProtocolVersion};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Which TLS versions the client offers (the server always accepts both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.3, falling back to 1.2.
    #[default]
    Both,
    /// TLS 1.2 only.
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

impl TlsVersions {
    fn rustls(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersions::Both => rustls::ALL_VERSIONS,
            TlsVersions::Tls12Only => &TLS12,
            TlsVersions::Tls13Only => &TLS13,
        }
    }
}

/// Whom a TLS client trusts, whom it expects, and who it is.
#[derive(Debug, Clone)]
pub struct ClientTlsOptions {
    /// The CA the server certificate must chain to.
    pub ca: PemSource,
    /// Certificate chain and key for mutual TLS.
    pub client_cert_and_key: Option<(PemSource, PemSource)>,
    /// The name the server certificate must hold (DNS name or IP address).
    pub server_name: String,
    /// The TLS versions offered.
    pub versions: TlsVersions,
}

impl ClientTlsOptions {
    /// Trusts the CA file `ca` and expects the server to be `server_name`.
    pub fn from_files(ca: impl Into<PemSource>, server_name: impl Into<String>) -> Self {
        Self {
            ca: ca.into(),
            client_cert_and_key: None,
            server_name: server_name.into(),
            versions: TlsVersions::default(),
        }
    }

    /// Trusts the CA of an in-memory PKI and expects `localhost`, without a
    /// client certificate.
    pub fn from_pki(pki: &Pki) -> Self {
        Self::from_files(PemSource::memory("ca.pem", pki.ca.cert_pem()), "localhost")
    }

    /// Presents the certificate and key files for mutual TLS.
    pub fn with_client_cert(
        mut self,
        cert: impl Into<PemSource>,
        key: impl Into<PemSource>,
    ) -> Self {
        self.client_cert_and_key = Some((cert.into(), key.into()));
        self
    }

    /// Presents an in-memory identity; `name` is how errors refer to it,
    /// for example `client`.
    pub fn with_client_identity(self, name: &str, identity: &Identity) -> Self {
        self.with_client_cert(
            PemSource::memory(format!("{name}.pem"), identity.cert_pem()),
            PemSource::memory(format!("{name}.key"), identity.key_pem()),
        )
    }

    /// Expects the server certificate to hold `name`.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Offers only `versions`.
    pub fn with_versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Loads and checks everything, and builds the client.
    pub fn build(&self) -> Result<ClientTls, TlsError> {
        let server_name = ServerName::try_from(self.server_name.clone()).map_err(|_| {
            TlsError::InvalidServerName {
                name: self.server_name.clone(),
            }
        })?;
        let provider = provider();
        let roots = self.ca.root_store("CA certificate")?;
        let resolver: Option<StdArc<dyn ResolvesClientCert>> = match &self.client_cert_and_key {
            Some((cert, key)) => {
                let certified = identity::load(cert, key, "client certificate", &provider)?;
                Some(StdArc::new(SingleCertAndKey::from(certified)))
            }
            None => None,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions.rustls())
            .map_err(|e| TlsError::Config {
                reason: e.to_string(),
            })?
            .with_root_certificates(roots);
        let mut config = match resolver {
            Some(resolver) => builder.with_client_cert_resolver(resolver),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_MQTT.to_vec()];
        Ok(ClientTls {
            config: StdArc::new(config),
            server_name,
            context: Context {
                local: Role::Client,
                trusted: self.ca.name(),
                server_name: Some(self.server_name.clone()),
            },
        })
    }

    /// Just the rustls configuration, for callers that connect on their own
    /// (they also need [`ClientTls::server_name`]).
    pub fn client_config(&self) -> Result<StdArc<ClientConfig>, TlsError> {
        self.build().map(|tls| tls.config())
    }
}

/// A ready TLS client configuration that explains its handshake failures.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: StdArc<ClientConfig>,
    server_name: ServerName<'static>,
    context: Context,
}

impl ClientTls {
    /// The rustls configuration.
    pub fn config(&self) -> StdArc<ClientConfig> {
        self.config.clone()
    }

    /// The server name checked against the server certificate.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// A tokio-rustls connector for this configuration.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }

    /// Runs the client handshake on `io`. No timeout: wrap it in one.
    ///
    /// With TLS 1.3 the client finishes its handshake before the server has
    /// checked the client certificate: a server's rejection of that
    /// certificate shows up on the first read, through [`ClientTls::explain`].
    pub async fn connect<IO>(&self, io: IO) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector()
            .connect(self.server_name.clone(), io)
            .await
            .map_err(|e| self.explain(e))
    }

    /// Turns an I/O error from a handshake or a later read/write on a
    /// connection of this client into the check that failed.
    pub fn explain(&self, err: std::io::Error) -> TlsError {
        explain(err, &self.context)
    }
}
