//! `mqtls hostile-broker`: a TLS broker that misbehaves on purpose, to test
//! an external MQTT client.

use super::CliError;
use crate::hostile::campaign::{self, Pki, Plan};
use crate::hostile::scenario::{Scenario, Settings};
use crate::hostile::{HostileError, address, report};
use std::path::PathBuf;
use std::time::Duration;

/// Run a misbehaving TLS broker, one scenario at a time, against a client
/// under test (`--client-cmd`) or whoever connects.
///
/// Example: `mqtls hostile-broker --all --client-cmd 'mosquitto_sub -h {host}
/// -p {port} -t t --cafile {cafile} -C 1'`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each scenario with a one-line description, then exit.
    #[arg(long)]
    pub list: bool,
    /// Run this scenario (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Run every scenario.
    #[arg(long)]
    pub all: bool,
    /// The client under test, run through `sh -c` once per scenario with
    /// `{host}`, `{port}`, `{cafile}`, `{cert}` and `{key}` filled in.
    #[arg(long, value_name = "TEMPLATE")]
    pub client_cmd: Option<String>,
    /// Time limit of the client per scenario, in seconds (without
    /// --client-cmd: how long each scenario is served).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// How long `late-suback` holds the SUBACK, in seconds: set it above the
    /// client's subscribe timeout, and below --timeout.
    #[arg(long, default_value_t = 5.0)]
    pub suback_delay: f64,
    /// How many QoS 1 PUBLISHes `publish-flood` sends (at least the client's
    /// receive maximum + 10; at most 70000).
    #[arg(long, default_value_t = 1000)]
    pub flood: usize,
    /// Address to listen on (loopback only unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: a free port per scenario).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Listen on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// The CA file for `{cafile}` (with --server-cert and --server-key;
    /// without all three a fresh test PKI is generated).
    #[arg(long, value_name = "FILE", requires_all = ["server_cert", "server_key"])]
    pub cafile: Option<PathBuf>,
    /// The client certificate for `{cert}`.
    #[arg(long, value_name = "FILE", requires = "cafile")]
    pub cert: Option<PathBuf>,
    /// The client key for `{key}`.
    #[arg(long, value_name = "FILE", requires = "cafile")]
    pub key: Option<PathBuf>,
    /// The broker's certificate (signed by the CA of --cafile).
    #[arg(long, value_name = "FILE", requires = "cafile")]
    pub server_cert: Option<PathBuf>,
    /// The broker's private key.
    #[arg(long, value_name = "FILE", requires = "cafile")]
    pub server_key: Option<PathBuf>,
    /// Where to write hostile-broker.md and hostile-broker.json.
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
}

fn seconds(name: &str, v: f64) -> Result<Duration, CliError> {
    if v > 0.0 && v.is_finite() && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(CliError::Usage(format!(
            "--{name} must be a number of seconds between 0 and 3600"
        )))
    }
}

/// Runs the subcommand: exit status 1 when the client crashed, hung or a
/// sanitizer reported an error in some scenario.
pub fn run(args: Args) -> Result<i32, CliError> {
    if args.list {
        for s in Scenario::ALL {
            println!("{:<22} {}", s.name(), s.description());
        }
        return Ok(0);
    }
    let scenarios = if args.all {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|n| {
                Scenario::from_name(n)
                    .ok_or_else(|| HostileError::UnknownScenario { name: n.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if scenarios.is_empty() {
        return Err(CliError::Usage(
            "name a scenario with --scenario NAME, or pass --all (--list shows them)".into(),
        ));
    }
    let limit = seconds("timeout", args.timeout)?;
    let suback_delay = seconds("suback-delay", args.suback_delay)?;
    if !(1..=70_000).contains(&args.flood) {
        return Err(CliError::Usage(
            "--flood must be between 1 and 70000".into(),
        ));
    }
    address::resolve(&args.host, args.port, args.allow_remote)?;

    let pki = match (&args.cafile, &args.server_cert, &args.server_key) {
        (Some(ca), Some(cert), Some(key)) => Pki::from_files(
            cert.clone(),
            key.clone(),
            ca.clone(),
            args.cert.clone(),
            args.key.clone(),
        )?,
        _ => Pki::generate()?,
    };
    let plan = Plan {
        scenarios,
        host: args.host.clone(),
        port: args.port,
        client_cmd: args.client_cmd.clone(),
        limit,
        settings: Settings {
            suback_delay,
            flood: args.flood,
            serve_for: limit,
            step: limit.min(Duration::from_secs(5)),
            ..Settings::default()
        },
    };
    if let (None, Some(ca)) = (&args.client_cmd, &pki.cafile) {
        println!("clients must trust {}", ca.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Read {
            what: "a tokio runtime".into(),
            source,
        })?;
    let interactive = args.client_cmd.is_none();
    let results = runtime.block_on(campaign::run(
        &plan,
        &pki,
        |scenario, addr| {
            if interactive {
                println!("{scenario}: listening on {addr} for {:?}", plan.limit);
            }
        },
        |r| {
            let outcome = r
                .client
                .as_ref()
                .map_or_else(|| "(no client command)".to_owned(), |c| c.outcome.label());
            println!(
                "{:<22} {:<34} {} connection(s)",
                r.scenario.name(),
                outcome,
                r.server.connections.len()
            );
        },
    ))?;
    let cmd = args.client_cmd.as_deref();
    for p in report::write_broker(&args.report_dir, cmd, &results)? {
        println!("wrote {}", p.display());
    }
    print!("\n{}", report::broker_markdown(cmd, &results));
    Ok(if results.iter().any(|r| r.is_finding()) {
        1
    } else {
        0
    })
}
