//! A hostile-broker run: for each scenario and repeat, a fresh listener,
//! the client under test started against it, what both sides did, and the
//! judgement (outcome and findings).

use super::HostileError;
use super::finding::{Finding, FrameFilter, serialize_signature_ids};
use super::outcome::{self, Outcome};
use super::runner::{self, ClientRun, Launch, Placeholders, StopPlan};
use super::scenario::{Scenario, Settings};
use super::server::{self, ServerRecord};
use super::session::Observer;
use super::shim::{self, ShimReports};
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
        let dir = super::temp_dir("mqtls-hostile-")?;
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
    /// How many times each scenario runs (its runs follow each other).
    pub repeat: usize,
    /// The address to listen on (a loopback address unless allowed).
    pub host: String,
    /// The port; 0 picks a free one per run.
    pub port: u16,
    /// The client under test; `None` serves each scenario for `limit` to
    /// whoever connects.
    pub client_cmd: Option<String>,
    /// The client's time limit per run.
    pub limit: Duration,
    /// How the client is stopped, once it recovered or at the limit.
    pub stop: StopPlan,
    /// How long a recovered client may go on before it is stopped.
    pub settle: Duration,
    /// The scripts' knobs.
    pub settings: Settings,
    /// Which frames signatures skip.
    pub filter: FrameFilter,
    /// Where the client's shim reports go, one per run (`None`: the shim's
    /// report is not asked for). A client built without the shim ignores
    /// it.
    pub shim_reports: Option<ShimReports>,
    /// Run on each process of a client stopped at the limit (`{pid}`).
    pub on_stuck: Option<String>,
}

/// One run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// 1 for the first run of the scenario.
    pub repeat: usize,
    /// The port it listened on.
    pub port: u16,
    /// How the client ended, when a command was given.
    pub outcome: Option<Outcome>,
    /// What the client did that a correct one never does (sanitizer
    /// reports, leaks, broken rules, stuck, crashed); the report lists each
    /// once, so a run names them by signature.
    #[serde(serialize_with = "serialize_signature_ids")]
    pub findings: Vec<Finding>,
    /// True when the plain broker's message reached the client.
    pub delivered: bool,
    /// The client run, when a command was given.
    pub client: Option<ClientRun>,
    /// What the broker saw.
    pub server: ServerRecord,
}

/// Every run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// What it does.
    pub description: &'static str,
    /// Its runs, in order.
    pub runs: Vec<RunResult>,
}

impl ScenarioResult {
    /// True when some run has a finding.
    pub fn is_finding(&self) -> bool {
        self.runs.iter().any(|r| !r.findings.is_empty())
    }
}

/// Runs every scenario of `plan` `plan.repeat` times; `listening` is called
/// when a run's listener is up (before its client starts), `progress` after
/// each run.
pub async fn run(
    plan: &Plan,
    pki: &Pki,
    env: &[(String, String)],
    mut listening: impl FnMut(Scenario, std::net::SocketAddr),
    mut progress: impl FnMut(Scenario, &RunResult),
) -> Result<Vec<ScenarioResult>, HostileError> {
    let mut results = Vec::new();
    for &scenario in &plan.scenarios {
        let mut runs = Vec::new();
        for repeat in 1..=plan.repeat.max(1) {
            let run = run_one(plan, pki, env, scenario, repeat, &mut listening).await?;
            progress(scenario, &run);
            runs.push(run);
        }
        results.push(ScenarioResult {
            scenario,
            description: scenario.description(),
            runs,
        });
    }
    Ok(results)
}

async fn run_one(
    plan: &Plan,
    pki: &Pki,
    env: &[(String, String)],
    scenario: Scenario,
    repeat: usize,
    listening: &mut impl FnMut(Scenario, std::net::SocketAddr),
) -> Result<RunResult, HostileError> {
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
    let (observer, delivered) = Observer::new();
    let serving_observer = observer.clone();
    let serving = tokio::spawn(async move {
        server::serve(
            &listener,
            &tls,
            scenario,
            &settings,
            serving_observer,
            stop_rx,
        )
        .await
    });
    let shim_report = match (&plan.shim_reports, &command) {
        (Some(reports), Some(_)) => {
            Some(reports.prepare(&format!("{}-{repeat}", scenario.name()))?)
        }
        _ => None,
    };
    let client = match command {
        Some(command) => {
            let launch = Launch {
                command,
                limit: plan.limit,
                stop: plan.stop,
                settle: plan.settle,
                env: match &shim_report {
                    Some(path) => shim::environment(env, path),
                    None => env.to_vec(),
                },
                on_stuck: plan.on_stuck.clone(),
            };
            Some(runner::run(&launch, delivered).await?)
        }
        None => {
            tokio::time::sleep(plan.limit).await;
            None
        }
    };
    let _ = stop_tx.send(());
    let server = serving.await.unwrap_or_default();
    let delivered = observer.was_delivered();
    let judgement = client.as_ref().map(|c| {
        outcome::judge(
            scenario,
            c,
            delivered,
            server.violations().cloned().collect(),
            plan.limit,
            &plan.filter,
        )
    });
    let (outcome, mut findings) = match judgement {
        Some(j) => (Some(j.outcome), j.findings),
        None => (None, server.violations().cloned().collect()),
    };
    if let Some(path) = &shim_report {
        findings.extend(shim::findings(path)?);
    }
    Ok(RunResult {
        repeat,
        port: addr.port(),
        outcome,
        findings,
        delivered,
        client,
        server,
    })
}
