//! A hostile-broker run: for each scenario, a fresh listener, the client
//! under test started against it, and what both sides did.

use super::HostileError;
use super::runner::{self, ClientRun, Placeholders};
use super::scenario::{Scenario, Settings};
use super::server::{self, ServerRecord};
use crate::tls::{ServerTls, ServerTlsOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;

/// Where the broker's identity and the client's files come from.
#[derive(Debug)]
pub struct Pki {
    /// The broker's TLS configuration.
    pub server: ServerTls,
    /// The files the template's placeholders name.
    pub cafile: Option<PathBuf>,
    /// `{cert}`.
    pub cert: Option<PathBuf>,
    /// `{key}`.
    pub key: Option<PathBuf>,
    /// The generated PKI's directory, removed when this is dropped.
    _dir: Option<tempfile::TempDir>,
}

impl Pki {
    /// Generates a fresh test PKI into a temporary directory (removed when
    /// the returned value is dropped).
    pub fn generate() -> Result<Pki, HostileError> {
        let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())?;
        let dir = tempfile::Builder::new()
            .prefix("mqtls-hostile-")
            .tempdir()
            .map_err(|source| HostileError::File {
                path: std::env::temp_dir(),
                source,
            })?;
        pki.write_pem(dir.path(), false)?;
        let p = dir.path();
        let server = ServerTlsOptions::from_files(p.join("server.pem"), p.join("server.key"))
            .with_client_ca(p.join("ca.pem"), false)
            .build()?;
        Ok(Pki {
            server,
            cafile: Some(p.join("ca.pem")),
            cert: Some(p.join("client.pem")),
            key: Some(p.join("client.key")),
            _dir: Some(dir),
        })
    }

    /// Uses existing files: the broker's certificate and key, and the
    /// client's CA, certificate and key for the template. Client
    /// certificates are checked against `cafile` when the client sends one.
    pub fn from_files(
        server_cert: PathBuf,
        server_key: PathBuf,
        cafile: PathBuf,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Pki, HostileError> {
        let server = ServerTlsOptions::from_files(server_cert, server_key)
            .with_client_ca(cafile.clone(), false)
            .build()?;
        Ok(Pki {
            server,
            cafile: Some(cafile),
            cert,
            key,
            _dir: None,
        })
    }
}

/// What a hostile-broker run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// The address to listen on (a loopback address unless allowed).
    pub host: String,
    /// The port; 0 picks a free one per scenario.
    pub port: u16,
    /// The client under test; `None` serves each scenario for `limit` to
    /// whoever connects.
    pub client_cmd: Option<String>,
    /// The client's time limit per scenario.
    pub limit: Duration,
    /// The scripts' knobs.
    pub settings: Settings,
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// What it does.
    pub description: &'static str,
    /// The port it listened on.
    pub port: u16,
    /// The client run, when a command was given.
    pub client: Option<ClientRun>,
    /// What the broker saw.
    pub server: ServerRecord,
}

impl ScenarioResult {
    /// True when the client crashed, hung or a sanitizer spoke.
    pub fn is_finding(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.outcome.is_finding())
    }
}

/// Runs every scenario of `plan` in turn; `listening` is called when a
/// scenario's listener is up (before its client starts), `progress` after
/// it ended.
pub async fn run(
    plan: &Plan,
    pki: &Pki,
    mut listening: impl FnMut(Scenario, std::net::SocketAddr),
    mut progress: impl FnMut(&ScenarioResult),
) -> Result<Vec<ScenarioResult>, HostileError> {
    let mut results = Vec::new();
    for &scenario in &plan.scenarios {
        let result = run_one(plan, pki, scenario, &mut listening).await?;
        progress(&result);
        results.push(result);
    }
    Ok(results)
}

async fn run_one(
    plan: &Plan,
    pki: &Pki,
    scenario: Scenario,
    listening: &mut impl FnMut(Scenario, std::net::SocketAddr),
) -> Result<ScenarioResult, HostileError> {
    let (listener, addr) = server::bind(&plan.host, plan.port).await?;
    listening(scenario, addr);
    let (stop_tx, stop_rx) = oneshot::channel();
    let command = match &plan.client_cmd {
        Some(template) => Some(runner::fill(
            template,
            &Placeholders {
                host: plan.host.clone(),
                port: addr.port(),
                cafile: pki.cafile.clone(),
                cert: pki.cert.clone(),
                key: pki.key.clone(),
            },
        )?),
        None => None,
    };
    let settings = plan.settings.clone();
    let tls = pki.server.clone();
    let serving =
        tokio::spawn(
            async move { server::serve(&listener, &tls, scenario, &settings, stop_rx).await },
        );
    let client = match command {
        Some(cmd) => Some(runner::run(&cmd, plan.limit).await),
        None => {
            tokio::time::sleep(plan.limit).await;
            None
        }
    };
    let _ = stop_tx.send(());
    let server = serving.await.unwrap_or_default();
    Ok(ScenarioResult {
        scenario,
        description: scenario.description(),
        port: addr.port(),
        client: client.transpose()?,
        server,
    })
}
