//! `mqtls broker`: the reference broker over TLS (and optionally plain
//! TCP). On Ctrl-C or after `--duration` it stops, audits the ledger and
//! exits non-zero on any violation. Sessions, queued and retained messages
//! live in memory only and are lost when it stops.
//!
//! Without `--cert`/`--key` it generates a throwaway test PKI, writes it to
//! a directory it prints together with the client command lines that trust
//! it, and serves with it.

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
    /// Without --cert and --key, a throwaway test PKI is generated and the
    /// commands to connect with it are printed.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Where to write the generated PKI (kept); default: a temporary
    /// directory removed when the broker stops. Only without --cert/--key.
    #[arg(long, value_name = "DIR", conflicts_with = "cert")]
    pub pki_dir: Option<PathBuf>,
    /// Extra name for the generated server certificate (DNS name or IP
    /// address), on top of localhost, 127.0.0.1, ::1 and --bind. Repeatable.
    #[arg(long = "san", value_name = "NAME", conflicts_with = "cert")]
    pub extra_server_names: Vec<String>,
    /// CA that client certificates must chain to.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Refuse clients without a certificate signed by --cafile.
    #[arg(long)]
    pub require_client_cert: bool,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seconds a client may take to finish its TLS handshake (on the plain
    /// port: to send its first bytes); it is refused after that.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout: u64,
    /// Largest packet accepted, in bytes.
    #[arg(long, default_value_t = crate::codec::DEFAULT_MAX_PACKET_SIZE)]
    pub max_packet_size: usize,
    /// Longest keep-alive a client may use, in seconds. MQTT 5 clients
    /// asking for more (or for none) are told this value in CONNACK (Server
    /// Keep Alive); 3.1.1 clients cannot be told and are refused.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_keepalive: Option<u16>,
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
    /// Logging (stderr; one line per connection event by default).
    #[command(flatten)]
    pub log: super::logging::LogArgs,
}

/// Runs the broker until Ctrl-C or `--duration`; 0 when the ledger audit
/// after shutdown is clean.
pub fn run(args: Args) -> Result<i32, CliError> {
    if args.require_client_cert && args.cafile.is_none() {
        return Err(CliError::Usage(
            "--require-client-cert needs --cafile CA.pem, the CA that signs the client certificates".into(),
        ));
    }
    let (cert, key, generated) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), None),
        _ => {
            let pki = ThrowawayPki::write(&args)?;
            (
                pki.dir().join("server.pem"),
                pki.dir().join("server.key"),
                Some(pki),
            )
        }
    };
    let mut tls = ServerTlsOptions::from_files(cert, key);
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
        max_keep_alive: args.max_keepalive,
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
        // Installed before the broker says it listens: a Ctrl-C right after
        // must stop it cleanly, not kill it unaudited.
        let ctrl_c = ctrl_c_handler()?;
        let server = Server::start(opts, ledger)
            .await
            .map_err(|e| CliError::Net(e.to_string()))?;
        if let Some(a) = server.tls_addr() {
            println!("mqtls broker: TLS on {a}");
        }
        if let Some(a) = server.tcp_addr() {
            println!("mqtls broker: plain TCP on {a}");
        }
        if let (Some(pki), Some(a)) = (&generated, server.tls_addr()) {
            pki.print_how_to_connect(a);
        }
        let limit = args.duration.map(Duration::from_secs);
        let bounded = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C: stopping"),
            _ = bounded => tracing::info!("--duration reached: stopping"),
        }
        Ok::<_, CliError>(server.shutdown().await)
    })?;
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    let d = report.stats.drops;
    // The queue limits' account, one event (text: key=value, JSON: keys).
    tracing::info!(
        dropped = d.total(),
        queue_messages = d.queue_messages,
        queue_bytes = d.queue_bytes,
        memory_budget = d.memory_budget,
        send_queue_full = d.send_queue_full,
        offline_qos0 = d.offline_qos0,
        client_max_packet = d.client_max_packet,
        refused_publishes = d.refused_publishes,
        slow_consumers_disconnected = d.slow_consumers_disconnected,
        "shutdown: deliveries dropped by the queue limits"
    );
    let s = report.audit.stats;
    let violations = report.audit.violations.len();
    // One event whose fields are the audit (text: key=value, JSON: keys);
    // each violation follows as an error of its own.
    tracing::info!(
        connections = report.stats.connections,
        refused = report.refused,
        publishes_in = report.stats.publishes_in,
        deliveries = report.stats.deliveries,
        protocol_errors = report.stats.protocol_errors,
        allocated = s.allocated,
        freed = s.freed,
        live = s.live,
        ops_finished = s.ops_finished,
        violations,
        "shutdown audit: {}",
        if report.audit.is_clean() {
            "clean"
        } else {
            "LEDGER VIOLATIONS"
        }
    );
    for v in &report.audit.violations {
        tracing::error!(kind = %v.kind, "ledger violation: {}", v.diagnosis());
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

/// A future that completes on Ctrl-C, with the signal handler installed
/// now (tokio's `ctrl_c()` installs it only when first polled).
fn ctrl_c_handler() -> Result<impl std::future::Future<Output = ()>, CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt())
            .map_err(|e| CliError::Runtime(format!("cannot handle Ctrl-C: {e}")))?;
        Ok(async move {
            sigint.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The test PKI `mqtls broker` generates when given no certificate.
struct ThrowawayPki {
    /// Removed on drop; `None` for a `--pki-dir` the user keeps.
    temp: Option<tempfile::TempDir>,
    dir: PathBuf,
}

impl ThrowawayPki {
    /// Generates the PKI (the server certificate also names `--bind` and
    /// `--san`) and writes it to `--pki-dir` or a temporary directory.
    fn write(args: &Args) -> Result<ThrowawayPki, CliError> {
        let mut options = certs_gen::PkiOptions::default();
        let mut names = args.extra_server_names.clone();
        if !args.bind.is_unspecified() {
            names.push(args.bind.to_string());
        }
        for name in names {
            if !options.server_names.contains(&name) {
                options = options.with_extra_server_name(name);
            }
        }
        let pki = certs_gen::Pki::generate(&options)?;
        let (temp, dir) = match &args.pki_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("mqtls-broker-pki-")
                    .tempdir()
                    .map_err(|source| CliError::Write {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        // A kept directory is this broker's: replace an older PKI there.
        pki.write_pem(&dir, true)?;
        Ok(ThrowawayPki { temp, dir })
    }

    fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Prints where the PKI is and the client commands that trust it.
    fn print_how_to_connect(&self, tls: SocketAddr) {
        // The certificate names localhost and the --bind address.
        let host = match tls.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            ip => ip.to_string(),
        };
        let port = tls.port();
        let ca = self.dir.join("ca.pem");
        let ca = ca.display();
        let kept = if self.temp.is_some() {
            "removed when the broker stops; --pki-dir DIR keeps it"
        } else {
            "kept"
        };
        println!(
            "mqtls broker: no --cert/--key: serving a throwaway test PKI written to {} ({kept})",
            self.dir.display()
        );
        println!("mqtls broker: connect with");
        println!("  mosquitto_sub -h {host} -p {port} --cafile {ca} -t 'test/#' -v");
        println!("  mosquitto_pub -h {host} -p {port} --cafile {ca} -t test/hello -m hi");
        println!("  mqtls sub -h {host} -p {port} -s --cafile {ca} -t 'test/#' -v");
        println!("  mqtls pub -h {host} -p {port} -s --cafile {ca} -t test/hello -m hi");
    }
}
