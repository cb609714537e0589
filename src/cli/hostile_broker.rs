//! `mqtls hostile-broker`: a TLS broker that misbehaves on purpose, to test
//! an external MQTT client.

use super::CliError;
use crate::hostile::campaign::{self, Pki, Plan};
use crate::hostile::finding::{FrameFilter, summary_line};
use crate::hostile::leak_check::{self, LeakCheck};
use crate::hostile::runner::{StopPlan, signal_number};
use crate::hostile::scenario::{Scenario, Settings};
use crate::hostile::shim::ShimReports;
use crate::hostile::{HostileError, address, report};
use std::path::PathBuf;
use std::time::Duration;

/// Run a misbehaving TLS broker, one scenario at a time, against a client
/// under test (`--client-cmd`) or whoever connects.
///
/// After each misbehaviour the broker serves the client plainly and
/// delivers one message. A client that receives it has RECOVERED (it is then
/// stopped); one that exits with an error GAVE UP: both pass. STUCK,
/// CRASHED, sanitizer reports, leaks and broken protocol rules are
/// findings, each with a stable signature; the exit status is 1 when there
/// is any.
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
    /// The client under test, run through `sh -c` once per scenario and
    /// repeat, with `{host}`, `{port}`, `{cafile}`, `{cert}` and `{key}`
    /// filled in.
    #[arg(long, value_name = "TEMPLATE")]
    pub client_cmd: Option<String>,
    /// Run each scenario this many times; the report gives each finding's
    /// rate ("9/10").
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Time limit of the client per run, in seconds: a client that has
    /// neither recovered nor exited by then is STUCK (without
    /// --client-cmd: how long each scenario is served).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// The signal that stops the client (once it recovered, or at the
    /// limit): TERM, INT, HUP, USR1... or a number.
    #[arg(long, default_value = "TERM", value_name = "SIGNAL")]
    pub stop_signal: String,
    /// Seconds the client has to exit after the stop signal before its
    /// process group is killed.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub grace: f64,
    /// Preload a small helper (built with `cc` on demand) that runs
    /// LeakSanitizer's check when the stop signal arrives, so that a client
    /// that never exits by itself still reports its leaks.
    #[arg(long)]
    pub leak_check_on_stop: bool,
    /// When a client is stopped at the limit, first run this for each of
    /// its processes with `{pid}` filled in, and quote what it prints in the
    /// STUCK finding: e.g. `gdb -p {pid} -batch -ex 'thread apply all bt'`
    /// shows where each thread waits.
    #[arg(long, value_name = "COMMAND")]
    pub on_stuck: Option<String>,
    /// Also skip frames whose function matches this regular expression when
    /// building signatures (repeatable; allocation and free wrappers and the
    /// sanitizer runtime are skipped already).
    #[arg(long, value_name = "REGEX")]
    pub ignore_frame: Vec<String>,
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
    /// Port to listen on (0: a free port per run).
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

/// Seconds from an option, in (0, 3600].
pub(super) fn seconds(name: &str, v: f64) -> Result<Duration, CliError> {
    if v > 0.0 && v.is_finite() && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(CliError::Usage(format!(
            "--{name} must be a number of seconds between 0 and 3600"
        )))
    }
}

/// The stop signal and grace of --stop-signal and --grace.
pub(super) fn stop_plan(signal: &str, grace: f64) -> Result<StopPlan, CliError> {
    let signal = signal_number(signal).ok_or_else(|| {
        CliError::Usage(format!(
            "--stop-signal {signal}: name a signal such as TERM, INT, HUP, USR1, or give its number"
        ))
    })?;
    Ok(StopPlan {
        signal,
        grace: seconds("grace", grace)?,
    })
}

/// Runs the subcommand: exit status 1 when some run has a finding.
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
    let stop = stop_plan(&args.stop_signal, args.grace)?;
    if !(1..=70_000).contains(&args.flood) {
        return Err(CliError::Usage(
            "--flood must be between 1 and 70000".into(),
        ));
    }
    if !(1..=1000).contains(&args.repeat) {
        return Err(CliError::Usage(
            "--repeat must be between 1 and 1000".into(),
        ));
    }
    let filter = FrameFilter::with_extra(&args.ignore_frame).map_err(CliError::Usage)?;
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
    let leak = if args.leak_check_on_stop {
        Some(LeakCheck::build()?)
    } else {
        None
    };
    let env = leak_check::environment(leak.as_ref(), stop.signal);
    let plan = Plan {
        scenarios,
        repeat: args.repeat,
        host: args.host.clone(),
        port: args.port,
        client_cmd: args.client_cmd.clone(),
        limit,
        stop,
        settle: Duration::from_millis(500),
        settings: Settings {
            suback_delay,
            flood: args.flood,
            serve_for: limit,
            step: limit.min(Duration::from_secs(5)),
            ..Settings::default()
        },
        filter,
        shim_reports: Some(ShimReports::new(args.report_dir.join("shim"))),
        on_stuck: args.on_stuck.clone(),
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
        &env,
        |scenario, addr| {
            if interactive {
                println!("{scenario}: listening on {addr} for {:?}", plan.limit);
            }
        },
        |scenario, r| {
            let outcome = r
                .outcome
                .as_ref()
                .map_or_else(|| "(no client command)".to_owned(), |o| o.describe());
            println!(
                "{:<22} run {:<3} {:<38} {}",
                scenario.name(),
                r.repeat,
                outcome,
                summary_line(&r.findings)
            );
        },
    ))?;
    let cmd = args.client_cmd.as_deref();
    let verdict = report::broker_verdict(cmd, args.repeat, &results);
    for p in report::write_broker(&args.report_dir, &verdict, &results)? {
        println!("wrote {}", p.display());
    }
    print!("\n{}", report::broker_markdown(&verdict, &results, false));
    Ok(if verdict.finding_count() > 0 { 1 } else { 0 })
}
