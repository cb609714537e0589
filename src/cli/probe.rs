//! `mqtls probe`: attacks an external MQTT broker over TLS and checks it
//! keeps serving.

use super::CliError;
use super::hostile_broker::{seconds, stop_plan};
use crate::hostile::broker_process::BrokerProcess;
use crate::hostile::finding::{Finding, FindingKind, FrameFilter, summary_line};
use crate::hostile::leak_check::{self, LeakCheck};
use crate::hostile::probe::{self, MAX_CONNECTIONS, ProbeSettings};
use crate::hostile::raw_client::Target;
use crate::hostile::runner::Exit;
use crate::hostile::shim::{self, ShimReports};
use crate::hostile::{HostileError, address, report, sanitizer};
use crate::tls::ClientTlsOptions;
use std::path::PathBuf;
use std::time::Duration;

/// Probe an external broker: malformed packets, dropped subscriptions, cut
/// QoS 2 flows, broken and half-open handshakes, oversize packets, each
/// followed by a liveness check.
///
/// A deviation from the specification is a PROTOCOL finding naming the
/// normative statement it breaks. With --broker-cmd the probe starts the
/// broker itself, reads its output after every scenario for sanitizer
/// reports (SANITIZER and LEAK findings, kept apart from protocol ones) and
/// stops it gracefully at the end. The exit status is 1 when there is any
/// finding or the broker stopped serving.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The broker's host (loopback only unless --allow-remote).
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// The broker's TLS port.
    #[arg(short = 'p', long, default_value_t = 8883)]
    pub port: u16,
    /// The CA that signed the broker's certificate.
    #[arg(long, value_name = "FILE")]
    pub cafile: PathBuf,
    /// Client certificate, if the broker requires one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The name the broker's certificate holds (default: --host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// A directory of raw packet files (e.g. a fuzz corpus or its
    /// regressions), each sent after CONNECT as one scenario (at most 200).
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Only scenarios whose name contains this (repeatable).
    #[arg(long = "only", value_name = "TEXT")]
    pub only: Vec<String>,
    /// Simultaneous handshakes with broken certificates (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub handshakes: usize,
    /// Half-open handshakes held at once (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub half_open: usize,
    /// Time limit of each step (connect, read, liveness), in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Probe a broker that is not on a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Start the broker under test with this command (through `sh -c`, in
    /// a process group of its own) and read its output for sanitizer
    /// reports; it must serve TLS on --host/--port.
    #[arg(long, value_name = "COMMAND")]
    pub broker_cmd: Option<String>,
    /// Seconds the broker of --broker-cmd has to start serving.
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub broker_start: f64,
    /// The signal that stops the broker of --broker-cmd at the end.
    #[arg(long, default_value = "TERM", value_name = "SIGNAL")]
    pub stop_signal: String,
    /// Seconds it has to exit after the stop signal before it is killed.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub grace: f64,
    /// Preload the LeakSanitizer-on-signal helper (built with `cc`) into
    /// the broker of --broker-cmd, so that its stop reports its leaks.
    #[arg(long, requires = "broker_cmd")]
    pub leak_check_on_stop: bool,
    /// Also skip frames whose function matches this regular expression when
    /// building signatures (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub ignore_frame: Vec<String>,
    /// Where to write probe.md and probe.json.
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
}

/// Runs the subcommand: exit status 1 when the broker stopped serving.
pub fn run(args: Args) -> Result<i32, CliError> {
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err(CliError::Usage(
            "--timeout must be between 0 and 600 seconds".into(),
        ));
    }
    for (name, v) in [
        ("handshakes", args.handshakes),
        ("half-open", args.half_open),
    ] {
        if v > MAX_CONNECTIONS {
            return Err(CliError::Usage(format!(
                "--{name} must be at most {MAX_CONNECTIONS}"
            )));
        }
    }
    let addr = address::resolve(&args.host, args.port, args.allow_remote)?;
    let server_name = args
        .server_name
        .clone()
        .unwrap_or_else(|| args.host.clone());
    let mut good = ClientTlsOptions::from_files(args.cafile.clone(), server_name.clone());
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        good = good.with_client_cert(cert.clone(), key.clone());
    }
    let good = good.build().map_err(HostileError::from)?;
    // Broken material from a fresh PKI: its rogue CA is trusted by nobody.
    let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())?;
    let rogue = ClientTlsOptions::from_files(args.cafile.clone(), server_name.clone())
        .with_client_identity("rogue-client", &pki.broken.rogue_client)
        .build()
        .map_err(HostileError::from)?;
    let distrusting = ClientTlsOptions::from_files(
        crate::tls::PemSource::memory("rogue-ca.pem", pki.broken.rogue_ca.cert_pem()),
        server_name,
    )
    .build()
    .map_err(HostileError::from)?;
    let target = Target { addr, tls: good };
    let settings = ProbeSettings {
        step: Duration::from_secs_f64(args.timeout),
        handshakes: args.handshakes,
        half_open: args.half_open,
        corpus: args.corpus.clone(),
        only: args.only.clone(),
        ..ProbeSettings::default()
    };
    let filter = FrameFilter::with_extra(&args.ignore_frame).map_err(CliError::Usage)?;
    let stop = stop_plan(&args.stop_signal, args.grace)?;
    let start_limit = seconds("broker-start", args.broker_start)?;
    let leak = if args.leak_check_on_stop {
        Some(LeakCheck::build()?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Read {
            what: "a tokio runtime".into(),
            source,
        })?;
    let broker_name = match &args.broker_cmd {
        Some(cmd) => format!("`{cmd}` on {}:{} (TLS)", args.host, args.port),
        None => format!(
            "{}:{} (TLS, CA {})",
            args.host,
            args.port,
            args.cafile.display()
        ),
    };
    // A broker built with the shim writes its ledger's report here when it
    // is stopped; one built without ignores the variable.
    let shim_report = match &args.broker_cmd {
        Some(_) => Some(ShimReports::new(args.report_dir.join("shim")).prepare("broker")?),
        None => None,
    };
    let (results, at_stop) = runtime.block_on(async {
        let mut broker = match &args.broker_cmd {
            Some(cmd) => {
                let env = leak_check::environment(leak.as_ref(), stop.signal);
                let env = match &shim_report {
                    Some(path) => shim::environment(&env, path),
                    None => env,
                };
                let mut b = BrokerProcess::start(cmd, &env)?;
                if let Err(e) = b.wait_serving(&target, start_limit, settings.step).await {
                    b.stop(stop).await;
                    return Err(e);
                }
                Some(b)
            }
            None => None,
        };
        let results = probe::run(
            &target,
            &rogue,
            &distrusting,
            &settings,
            broker.as_mut(),
            &filter,
            |r| {
                println!(
                    "{:<40} {:<16} {}",
                    r.name,
                    r.verdict.label(),
                    summary_line(&r.findings)
                );
            },
        )
        .await;
        let mut at_stop = Vec::new();
        if let Some(mut b) = broker {
            let died = b.exited_before_stop();
            let (exit, killed, rest) = b.stop(stop).await;
            at_stop = sanitizer::findings(&rest, &filter);
            if let Some(path) = &shim_report {
                at_stop.extend(shim::findings(path)?);
            }
            let stop_signal_death = matches!(&exit, Exit::Signaled { signal, .. } if *signal == stop.signal || (*signal == libc::SIGKILL && killed));
            if died && !stop_signal_death {
                at_stop.push(Finding::plain(
                    FindingKind::Crash,
                    "broker exited during the probe",
                    format!("the broker exited during the probe ({exit})"),
                    rest.clone(),
                ));
            }
            println!(
                "broker stopped: {exit}{}",
                if killed {
                    " (killed after the grace period)"
                } else {
                    ""
                }
            );
        }
        Ok::<_, HostileError>((results?, at_stop))
    })?;
    let mut results = results;
    for r in results.iter_mut().filter(|r| r.verdict.stopped()) {
        r.findings.push(Finding::plain(
            FindingKind::Stuck,
            format!("stopped serving after {}", r.name),
            format!("the broker stopped serving after {}", r.name),
            r.liveness.clone(),
        ));
    }
    let verdict = report::probe_verdict(&broker_name, &results, &at_stop);
    for p in report::write_probe(&args.report_dir, &verdict, &results)? {
        println!("wrote {}", p.display());
    }
    print!("\n{}", report::probe_markdown(&verdict, &results, false));
    Ok(if verdict.finding_count() > 0 { 1 } else { 0 })
}
