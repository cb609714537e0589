//! `mqtls soak`: mixed load with slow, stopped and flapping consumers
//! against our broker and, side by side, mosquitto (or a broker you
//! started), reporting RSS over time, drops per reason, the latency of an
//! unrelated client and the ledger audit. Exit 1 when our broker's audit
//! is not clean, its RSS went over `--max-rss`, the probe lost a message
//! or a client failed.

use super::CliError;
use super::queue_limits::{QueueArgs, parse_size};
use crate::codec::QoS;
use crate::report;
use crate::soak::{self, Mix, SharedLimits, SoakConfig, TargetRun, TargetSpec};
use crate::tls::ClientTlsOptions;
use clap::ValueEnum;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A ready-made load; the other flags change any part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One QoS 1 subscriber that stops reading, one publisher flat out.
    StoppedQos1,
    /// The same at QoS 0.
    StoppedQos0,
    /// A hundred QoS 1 subscribers that stop reading at once.
    #[value(name = "stopped-100")]
    Stopped100,
    /// Two publishers; stopped, slow, flapping and healthy consumers.
    Mixed,
}

impl Scenario {
    fn mix(self) -> Mix {
        let one_stopped = Mix {
            publishers: 1,
            qos: QoS::AtLeastOnce,
            payload: 1024,
            stopped: 1,
            slow: 0,
            slow_rate: 200,
            flapping: 0,
            flap_up_ms: 2_000,
            flap_down_ms: 3_000,
            healthy: 0,
            probe_hz: 20,
        };
        match self {
            Scenario::StoppedQos1 => one_stopped,
            Scenario::StoppedQos0 => Mix {
                qos: QoS::AtMostOnce,
                ..one_stopped
            },
            Scenario::Stopped100 => Mix {
                stopped: 100,
                ..one_stopped
            },
            Scenario::Mixed => Mix {
                publishers: 2,
                stopped: 5,
                slow: 5,
                flapping: 5,
                healthy: 2,
                ..one_stopped
            },
        }
    }
}

/// Options of `mqtls soak`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The load to start from.
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: Scenario,
    /// Seconds the publishers flood.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Seconds with only the probe running, before the flood.
    #[arg(long, default_value_t = 2)]
    pub baseline: u64,
    /// Seconds after the flood (publishers stopped, stopped consumers gone)
    /// before the broker is stopped: does its memory come back?
    #[arg(long, default_value_t = 5)]
    pub settle: u64,
    /// Brokers to run against, one after the other with the same load:
    /// `ours`, `mosquitto` (skipped with a note when not installed), or
    /// HOST:PORT of a TLS broker you started with the certificates of
    /// --pki-dir.
    #[arg(long, value_delimiter = ',', default_value = "ours,mosquitto")]
    pub against: Vec<String>,
    /// The pid of the HOST:PORT broker, to read its RSS.
    #[arg(long, value_name = "PID")]
    pub external_pid: Option<u32>,
    /// Where the test PKI is (ca.pem, server.pem, server.key, as `mqtls
    /// certs` writes them); written there when absent. Default: a
    /// temporary directory.
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Publishers flat out.
    #[arg(long)]
    pub publishers: Option<usize>,
    /// QoS of the flood, 0 or 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: Option<u8>,
    /// Payload bytes.
    #[arg(long)]
    pub payload: Option<usize>,
    /// Consumers that subscribe and stop reading.
    #[arg(long)]
    pub stopped: Option<usize>,
    /// Consumers that read slowly.
    #[arg(long)]
    pub slow: Option<usize>,
    /// Messages per second a slow consumer reads.
    #[arg(long)]
    pub slow_rate: Option<u32>,
    /// Persistent consumers that come and go.
    #[arg(long)]
    pub flapping: Option<usize>,
    /// Consumers that keep up.
    #[arg(long)]
    pub healthy: Option<usize>,
    /// Round trips per second of the latency probe (0: none).
    #[arg(long)]
    pub probe_hz: Option<u32>,
    /// Milliseconds between RSS readings.
    #[arg(long, default_value_t = 250)]
    pub sample_ms: u64,
    /// Fail when our broker's RSS goes above this (K, M, G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_rss: Option<usize>,
    /// Where to write soak.md and soak.json.
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
    /// Our broker's queue limits; the per-session ones (messages, bytes,
    /// in flight) are given to mosquitto too.
    #[command(flatten)]
    pub queue: QueueArgs,
}

impl Args {
    fn mix(&self) -> Mix {
        let mut m = self.scenario.mix();
        let set = |v: Option<usize>, into: &mut usize| {
            if let Some(v) = v {
                *into = v;
            }
        };
        set(self.publishers, &mut m.publishers);
        set(self.payload, &mut m.payload);
        set(self.stopped, &mut m.stopped);
        set(self.slow, &mut m.slow);
        set(self.flapping, &mut m.flapping);
        set(self.healthy, &mut m.healthy);
        if let Some(q) = self.qos {
            m.qos = if q == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
        }
        if let Some(r) = self.slow_rate {
            m.slow_rate = r;
        }
        if let Some(hz) = self.probe_hz {
            m.probe_hz = hz;
        }
        m
    }

    /// Our broker's arguments beyond the shared per-session limits.
    fn ours_args(&self) -> Vec<String> {
        let q = &self.queue;
        let policy = q
            .queue_full
            .to_possible_value()
            .map_or_else(|| "drop-oldest".to_string(), |v| v.get_name().to_string());
        vec![
            "--queue-memory".into(),
            q.queue_memory.to_string(),
            "--queue-full".into(),
            policy,
            "--slow-consumer-timeout".into(),
            q.slow_consumer_timeout.to_string(),
        ]
    }

    fn targets(&self) -> Result<Vec<TargetSpec>, CliError> {
        let mut out = Vec::new();
        for t in &self.against {
            match t.trim() {
                "ours" => out.push(TargetSpec::Ours {
                    exe: std::env::current_exe().map_err(|e| {
                        CliError::Runtime(format!("cannot find the mqtls executable: {e}"))
                    })?,
                    args: self.ours_args(),
                }),
                "mosquitto" => match soak::target::find_mosquitto() {
                    Some(exe) => out.push(TargetSpec::Mosquitto { exe }),
                    None => eprintln!(
                        "mqtls soak: mosquitto is not installed (apt-get install mosquitto): its column is skipped"
                    ),
                },
                other => {
                    let addr: SocketAddr = other.parse().map_err(|_| {
                        CliError::Usage(format!(
                            "--against {other}: expected ours, mosquitto or HOST:PORT (e.g. 127.0.0.1:8883)"
                        ))
                    })?;
                    if !addr.ip().is_loopback() {
                        return Err(CliError::Usage(format!(
                            "--against {other}: a soak floods its target; only loopback addresses are accepted"
                        )));
                    }
                    out.push(TargetSpec::External {
                        addr,
                        pid: self.external_pid,
                    });
                }
            }
        }
        if out.is_empty() {
            return Err(CliError::Usage(
                "nothing to soak: --against needs ours, mosquitto or HOST:PORT".into(),
            ));
        }
        Ok(out)
    }
}

/// What failed in our broker's run, if anything.
fn problems(run: &TargetRun, max_rss: Option<usize>) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(a) = run.audit
        && a.violations > 0
    {
        p.push(format!("ledger audit: {} violations", a.violations));
    }
    if let (Some(limit), Some(peak)) = (max_rss, run.rss_peak_kib)
        && peak.saturating_mul(1024) > limit as u64
    {
        p.push(format!(
            "peak RSS {:.1} MiB is over --max-rss {:.1} MiB",
            peak as f64 / 1024.0,
            limit as f64 / (1 << 20) as f64
        ));
    }
    let lost = run
        .probe_sent
        .saturating_sub(u64::try_from(run.probe_received).unwrap_or(u64::MAX));
    if lost > 0 {
        p.push(format!(
            "the probe lost {lost} of {} round trips",
            run.probe_sent
        ));
    }
    p.extend(run.errors.iter().map(|e| format!("client: {e}")));
    p
}

/// Runs the soak; 0 when our broker passed.
pub fn run(args: Args) -> Result<i32, CliError> {
    let targets = args.targets()?;
    let temp;
    let pki_dir = match &args.pki_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().map_err(|e| CliError::Runtime(e.to_string()))?;
            temp.path().to_path_buf()
        }
    };
    if !pki_dir.join("ca.pem").is_file() {
        let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())?;
        pki.write_pem(&pki_dir, false)?;
    }
    let tls = ClientTlsOptions::from_files(pki_dir.join("ca.pem"), "localhost")
        .build()
        .map_err(|e| CliError::Usage(format!("TLS with {}: {e}", pki_dir.display())))?;
    let cfg = SoakConfig {
        mix: args.mix(),
        duration: Duration::from_secs(args.duration.max(1)),
        baseline: Duration::from_secs(args.baseline),
        settle: Duration::from_secs(args.settle),
        sample_every: Duration::from_millis(args.sample_ms.max(10)),
        targets,
        log_dir: args.report_dir.clone(),
        limits: SharedLimits {
            max_queued_messages: args.queue.max_queued_messages,
            max_queued_bytes: args.queue.max_queued_bytes,
            max_inflight: args.queue.max_inflight,
        },
    };
    let progress = |line: &str| eprintln!("mqtls soak: {line}");
    let report =
        soak::run(&cfg, &pki_dir, &tls, &progress).map_err(|e| CliError::Net(e.to_string()))?;
    let md = report::soak::to_markdown(&report);
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    report::write_file(&args.report_dir, "soak.md", &md)?;
    report::write_file(&args.report_dir, "soak.json", &json)?;
    println!("{md}");
    println!(
        "mqtls soak: wrote {} and soak.json",
        args.report_dir.join("soak.md").display()
    );
    let mut failed = false;
    for run in report.runs.iter().filter(|r| r.audit.is_some()) {
        for p in problems(run, args.max_rss) {
            eprintln!("mqtls soak: {}: FAILED: {p}", run.target);
            failed = true;
        }
    }
    Ok(i32::from(failed))
}
