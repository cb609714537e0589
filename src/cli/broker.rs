//! `mqtls broker`: the reference broker over TLS (and optionally plain
//! TCP). On Ctrl-C or after `--duration` it stops, audits the ledger and
//! exits non-zero on any violation. Sessions, queued and retained messages
//! live in memory only and are lost when it stops.

use super::CliError;
use crate::broker::BrokerConfig;
use crate::faults::FaultSet;
use crate::ledger::{Ledger, Mode};
use crate::net::{Server, ServerOptions};
use crate::tls::ServerTlsOptions;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How much the ledger records.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LedgerMode {
    /// Counts and generations (cheap).
    Counting,
    /// Full per-message histories for readable reports.
    Full,
    /// No accounting at all, to measure what the ledger costs; detects
    /// nothing, so the audit is always clean.
    Off,
}

/// Options of `mqtls broker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// TLS port (0: any free port, printed at start).
    #[arg(short = 'p', long, default_value_t = 8883)]
    pub port: u16,
    /// Also listen on this plain TCP port.
    #[arg(long)]
    pub tcp_port: Option<u16>,
    /// Server certificate chain (PEM), e.g. server.pem from `mqtls certs`.
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key of --cert (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// CA that client certificates must chain to.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Refuse clients without a certificate signed by --cafile.
    #[arg(long)]
    pub require_client_cert: bool,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seconds a client may take to finish its TLS handshake.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout: u64,
    /// Largest packet accepted, in bytes.
    #[arg(long, default_value_t = crate::codec::DEFAULT_MAX_PACKET_SIZE)]
    pub max_packet_size: usize,
    /// Ledger mode.
    #[arg(long, value_enum, default_value = "counting")]
    pub ledger: LedgerMode,
    /// Historic faults to switch on (comma-separated names, see `mqtls zoo`).
    #[arg(long, default_value = "none")]
    pub faults: FaultSet,
    /// Write the shutdown report (traffic, drops per reason, the ledger
    /// audit) to this file as JSON, e.g. for `mqtls soak`.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Queue limits.
    #[command(flatten)]
    pub queue: super::queue_limits::QueueArgs,
}

/// Runs the broker until Ctrl-C or `--duration`; 0 when the ledger audit
/// after shutdown is clean.
pub fn run(args: Args) -> Result<i32, CliError> {
    if args.require_client_cert && args.cafile.is_none() {
        return Err(CliError::Usage(
            "--require-client-cert needs --cafile CA.pem, the CA that signs the client certificates".into(),
        ));
    }
    let mut tls = ServerTlsOptions::from_files(args.cert.clone(), args.key.clone());
    if let Some(ca) = &args.cafile {
        tls = tls.with_client_ca(ca.clone(), args.require_client_cert);
    }
    let tls = tls
        .build()
        .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
    let mut opts = ServerOptions::tls(tls, SocketAddr::new(args.bind, args.port));
    opts.tcp = args.tcp_port.map(|p| SocketAddr::new(args.bind, p));
    opts.handshake_timeout = Duration::from_secs(args.handshake_timeout.max(1));
    opts.broker = BrokerConfig {
        max_packet_size: args.max_packet_size,
        faults: args.faults,
        max_inflight: args.queue.max_inflight,
        queue: args.queue.limits(),
        ..BrokerConfig::default()
    };
    let ledger = Ledger::new(match args.ledger {
        LedgerMode::Counting => Mode::Counting,
        LedgerMode::Full => Mode::Full,
        LedgerMode::Off => Mode::Off,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let report = rt.block_on(async {
        let server = Server::start(opts, ledger)
            .await
            .map_err(|e| CliError::Net(e.to_string()))?;
        if let Some(a) = server.tls_addr() {
            println!("mqtls broker: TLS on {a}");
        }
        if let Some(a) = server.tcp_addr() {
            println!("mqtls broker: plain TCP on {a}");
        }
        let limit = args.duration.map(Duration::from_secs);
        let bounded = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => println!("mqtls broker: Ctrl-C, stopping"),
            _ = bounded => println!("mqtls broker: --duration reached, stopping"),
        }
        Ok::<_, CliError>(server.shutdown().await)
    })?;
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    let d = report.stats.drops;
    println!(
        "mqtls broker: deliveries dropped {} (queue messages {}, queue bytes {}, memory budget {}, send queue full {}, QoS 0 offline {}, client max packet {}); publishes refused {}; slow consumers disconnected {}",
        d.total(),
        d.queue_messages,
        d.queue_bytes,
        d.memory_budget,
        d.send_queue_full,
        d.offline_qos0,
        d.client_max_packet,
        d.refused_publishes,
        d.slow_consumers_disconnected
    );
    let s = report.audit.stats;
    println!(
        "connections {}, publishes in {}, deliveries {}, protocol errors {}; messages allocated {}, freed {}, live {}; operations finished {}; violations {}",
        report.stats.connections,
        report.stats.publishes_in,
        report.stats.deliveries,
        report.stats.protocol_errors,
        s.allocated,
        s.freed,
        s.live,
        s.ops_finished,
        report.audit.violations.len()
    );
    for v in &report.audit.violations {
        eprintln!("mqtls broker: ledger violation: {}", v.diagnosis());
    }
    Ok(i32::from(!report.audit.is_clean()))
}

/// Writes `report` to `path` as JSON.
fn write_report(path: &std::path::Path, report: &crate::net::ServerReport) -> Result<(), CliError> {
    // Plain data with string keys: serialising cannot fail.
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    std::fs::write(path, json).map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}
