//! End-to-end scenarios over real TLS on 127.0.0.1: the reference broker
//! and clients driven through the tokio + rustls shell, one ledger shared
//! by all of them and audited after everything stopped.
//!
//! Each scenario takes the [`FaultSet`] the broker and its clients are
//! built with and returns a [`ScenarioOutcome`]: `mqtls check` runs them on
//! the fixed protocol (clean expected), the detection matrix runs them with
//! a fault switched on (a violation expected).

pub mod connection;
pub mod expiry;
pub mod malformed;
pub mod pubsub;
pub mod races;
pub mod retained;
pub mod shared;
pub mod will;

use crate::broker::BrokerConfig;
use crate::client::ClientConfig;
use crate::codec::Version;
use crate::faults::FaultSet;
use crate::ledger::{Audit, Ledger, Mode};
use crate::net::{Client, ClientOptions, NetError, Server, ServerOptions};
use crate::sync::Arc;
use crate::tls::{ClientTls, ClientTlsOptions, ServerTls, ServerTlsOptions, TlsError};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The TLS material every scenario uses: a server and a client
/// configuration trusting the same CA.
#[derive(Clone)]
pub struct Tls {
    /// The broker's side.
    pub server: ServerTls,
    /// The clients' side (trusts the CA, expects `localhost`).
    pub client: ClientTls,
}

impl Tls {
    /// Loads the PEM files `mqtls certs` writes (`ca.pem`, `server.pem`,
    /// `server.key`) from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Tls, TlsError> {
        Ok(Tls {
            server: ServerTlsOptions::from_files(dir.join("server.pem"), dir.join("server.key"))
                .build()?,
            client: ClientTlsOptions::from_files(dir.join("ca.pem"), "localhost").build()?,
        })
    }

    /// The in-memory PKI's good material.
    pub fn from_pki(pki: &certs_gen::Pki) -> Result<Tls, TlsError> {
        Ok(Tls {
            server: ServerTlsOptions::from_pki(pki).build()?,
            client: ClientTlsOptions::from_pki(pki).build()?,
        })
    }
}

/// How one scenario went.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// The scenario's name.
    pub name: &'static str,
    /// True when the MQTT behaviour was as expected (every message
    /// delivered, every close clean). With a fault on this may be false.
    pub behaved: bool,
    /// What was checked and what came out, or what went wrong.
    pub detail: String,
    /// Application messages received by subscribers.
    pub messages: u64,
    /// The ledger audit after broker and clients stopped.
    pub audit: Audit,
}

impl ScenarioOutcome {
    /// True when it behaved and the ledger is clean.
    pub fn passed(&self) -> bool {
        self.behaved && self.audit.is_clean()
    }
}

/// A running broker for one scenario, with the ledger it and its clients
/// share.
pub struct Env {
    /// The broker.
    pub server: Server,
    /// The shared ledger.
    pub ledger: Arc<Ledger>,
    tls: Tls,
    faults: FaultSet,
}

/// The request timeout of scenario clients: short, so that a fault that
/// loses an acknowledgement costs little time.
const REQUEST_TIMEOUT_MS: u64 = 3_000;

impl Env {
    /// Starts a broker on an ephemeral loopback port.
    pub async fn start(tls: &Tls, faults: FaultSet) -> Result<Env, NetError> {
        Self::start_with(tls, faults, |_| {}).await
    }

    /// Starts a broker, letting `adjust` change its options first.
    pub async fn start_with(
        tls: &Tls,
        faults: FaultSet,
        adjust: impl FnOnce(&mut ServerOptions),
    ) -> Result<Env, NetError> {
        let ledger = Ledger::new(Mode::Full);
        let mut opts =
            ServerOptions::tls(tls.server.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
        opts.broker = BrokerConfig {
            faults,
            ..BrokerConfig::default()
        };
        opts.handshake_timeout = Duration::from_secs(2);
        adjust(&mut opts);
        let server = Server::start(opts, ledger.clone()).await?;
        Ok(Env {
            server,
            ledger,
            tls: tls.clone(),
            faults,
        })
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.server.tls_addr().map_or(0, |a| a.port())
    }

    /// Client options for this broker: TLS, `version`, `client_id`, the
    /// scenario's faults.
    pub fn client_options(&self, client_id: &str, version: Version) -> ClientOptions {
        ClientOptions {
            host: "127.0.0.1".into(),
            port: self.port(),
            tls: Some(self.tls.client.clone()),
            mqtt: ClientConfig {
                version,
                client_id: client_id.into(),
                request_timeout_ms: REQUEST_TIMEOUT_MS,
                faults: self.faults,
                ..ClientConfig::default()
            },
            connect_timeout: Duration::from_secs(5),
            name: if client_id.is_empty() {
                "client".into()
            } else {
                client_id.into()
            },
        }
    }

    /// Connects a client.
    pub async fn connect(&self, client_id: &str, version: Version) -> Result<Client, NetError> {
        Client::connect(self.client_options(client_id, version), self.ledger.clone()).await
    }

    /// Stops the broker and audits the shared ledger. Every client must
    /// have been disconnected or dropped before.
    pub async fn finish(self) -> Audit {
        self.server.shutdown().await.audit
    }
}

/// Runs `body` against a fresh broker and turns the result into an
/// outcome: `Ok((messages, detail))` behaved, `Err` did not.
pub async fn scenario<F, Fut>(
    name: &'static str,
    tls: &Tls,
    faults: FaultSet,
    body: F,
) -> ScenarioOutcome
where
    F: FnOnce(Arc<Env>) -> Fut,
    Fut: std::future::Future<Output = Result<(u64, String), String>>,
{
    scenario_with(name, tls, faults, |_| {}, body).await
}

/// [`scenario`] against a broker whose options `adjust` changed first.
pub async fn scenario_with<F, Fut>(
    name: &'static str,
    tls: &Tls,
    faults: FaultSet,
    adjust: impl FnOnce(&mut ServerOptions),
    body: F,
) -> ScenarioOutcome
where
    F: FnOnce(Arc<Env>) -> Fut,
    Fut: std::future::Future<Output = Result<(u64, String), String>>,
{
    let env = match Env::start_with(tls, faults, adjust).await {
        Ok(env) => Arc::new(env),
        Err(e) => {
            return ScenarioOutcome {
                name,
                behaved: false,
                detail: format!("broker did not start: {e}"),
                messages: 0,
                audit: Ledger::new(Mode::Counting).audit(),
            };
        }
    };
    // The whole scenario is bounded; clients dropped on the way release
    // what they hold.
    let result = tokio::time::timeout(Duration::from_secs(20), body(env.clone()))
        .await
        .unwrap_or_else(|_| Err("did not finish within 20 s".into()));
    let audit = match Arc::try_unwrap(env) {
        Ok(env) => env.finish().await,
        Err(_) => {
            return ScenarioOutcome {
                name,
                behaved: false,
                detail: "a task still held the broker after the scenario".into(),
                messages: 0,
                audit: Ledger::new(Mode::Counting).audit(),
            };
        }
    };
    let (behaved, messages, detail) = match result {
        Ok((m, d)) => (true, m, d),
        Err(d) => (false, 0, d),
    };
    ScenarioOutcome {
        name,
        behaved,
        detail,
        messages,
        audit,
    }
}

/// Every scenario, in the order `mqtls check` runs them.
pub async fn all(
    tls: &Tls,
    faults: FaultSet,
    progress: impl Fn(&ScenarioOutcome),
) -> Vec<ScenarioOutcome> {
    let mut out = Vec::new();
    macro_rules! run {
        ($f:expr) => {{
            let o = $f(tls, faults).await;
            progress(&o);
            out.push(o);
        }};
    }
    run!(pubsub::qos_levels);
    run!(pubsub::fan_out);
    run!(pubsub::overlapping_subscriptions);
    run!(retained::delivery);
    run!(will::abrupt_disconnect);
    run!(will::delayed);
    run!(expiry::offline_and_retained);
    run!(shared::split_and_hand_over);
    run!(connection::keep_alive_and_aliases);
    run!(races::subscribe_vs_drop);
    run!(races::short_connections);
    run!(malformed::hostile_packets);
    out
}

/// Turns any displayable error into the scenario's failure text.
pub(crate) fn step<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}
