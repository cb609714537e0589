//! The server side: identity, client-certificate policy, accepting.

use super::rejection::{Context, explain};
use super::{ALPN_MQTT, PemSource, Role, TlsError, identity, provider};
use crate::sync::StdArc;
use certs_gen::{Identity, Pki};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::SingleCertAndKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// What a TLS server presents and whom it accepts.
#[derive(Debug, Clone)]
pub struct ServerTlsOptions {
    /// The server certificate chain, leaf first.
    pub cert: PemSource,
    /// The private key of the leaf.
    pub key: PemSource,
    /// The CA that client certificates must chain to; `None` asks for no
    /// client certificate.
    pub client_ca: Option<PemSource>,
    /// Refuse clients without a certificate (needs `client_ca`). When
    /// false, a client may send none, but one it sends is still checked.
    pub require_client_cert: bool,
}

impl ServerTlsOptions {
    /// A server identity from PEM files, without client certificates.
    pub fn from_files(cert: impl Into<PemSource>, key: impl Into<PemSource>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            require_client_cert: false,
        }
    }

    /// The good server identity of an in-memory PKI, without client
    /// certificates.
    pub fn from_pki(pki: &Pki) -> Self {
        Self::from_identity("server", &pki.server)
    }

    /// Any identity of an in-memory PKI (the broken ones included); `name`
    /// is how errors refer to it, for example `broken/expired-server`.
    pub fn from_identity(name: &str, identity: &Identity) -> Self {
        Self::from_files(
            PemSource::memory(format!("{name}.pem"), identity.cert_pem()),
            PemSource::memory(format!("{name}.key"), identity.key_pem()),
        )
    }

    /// Checks client certificates against `ca`; `required` refuses clients
    /// that send none.
    pub fn with_client_ca(mut self, ca: impl Into<PemSource>, required: bool) -> Self {
        self.client_ca = Some(ca.into());
        self.require_client_cert = required;
        self
    }

    /// Loads and checks everything, and builds the server.
    pub fn build(&self) -> Result<ServerTls, TlsError> {
        let provider = provider();
        let certified = identity::load(&self.cert, &self.key, "server certificate", &provider)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| TlsError::Config {
                reason: e.to_string(),
            })?;
        let builder = match (&self.client_ca, self.require_client_cert) {
            (None, true) => return Err(TlsError::ClientCaMissing),
            (None, false) => builder.with_no_client_auth(),
            (Some(ca), required) => {
                let roots = ca.root_store("client CA certificate")?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(StdArc::new(roots), provider);
                let verifier = if required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| TlsError::BadCertificate {
                    what: "client CA certificate",
                    source_name: ca.name(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(StdArc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![ALPN_MQTT.to_vec()];
        Ok(ServerTls {
            config: StdArc::new(config),
            context: Context {
                local: Role::Server,
                trusted: self
                    .client_ca
                    .as_ref()
                    .map_or_else(|| "(no client CA)".to_owned(), PemSource::name),
                server_name: None,
            },
        })
    }

    /// Just the rustls configuration, for callers that accept on their own.
    pub fn server_config(&self) -> Result<StdArc<ServerConfig>, TlsError> {
        self.build().map(|tls| tls.config())
    }
}

/// A ready TLS server configuration that explains its handshake failures.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: StdArc<ServerConfig>,
    context: Context,
}

impl ServerTls {
    /// The rustls configuration.
    pub fn config(&self) -> StdArc<ServerConfig> {
        self.config.clone()
    }

    /// A tokio-rustls acceptor for this configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Runs the server handshake on `io`. No timeout: wrap it in one.
    pub async fn accept<IO>(&self, io: IO) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.acceptor()
            .accept(io)
            .await
            .map_err(|e| self.explain(e))
    }

    /// Turns an I/O error from a handshake or a later read/write on a
    /// connection of this server into the check that failed.
    pub fn explain(&self, err: std::io::Error) -> TlsError {
        explain(err, &self.context)
    }
}
