//! `mqtls probe`: attacks an external MQTT broker over TLS and checks it
//! keeps serving.

use super::CliError;
use crate::hostile::probe::{self, MAX_CONNECTIONS, ProbeSettings};
use crate::hostile::raw_client::Target;
use crate::hostile::{HostileError, address, report};
use crate::tls::ClientTlsOptions;
use std::path::PathBuf;
use std::time::Duration;

/// Probe an external broker: malformed packets, dropped subscriptions, cut
/// QoS 2 flows, broken and half-open handshakes, oversize packets, each
/// followed by a liveness check.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Read {
            what: "a tokio runtime".into(),
            source,
        })?;
    let results = runtime.block_on(probe::run(&target, &rogue, &distrusting, &settings, |r| {
        println!("{:<40} {}", r.name, r.verdict.label());
    }))?;
    let broker = format!(
        "{}:{} (TLS, CA {})",
        args.host,
        args.port,
        args.cafile.display()
    );
    for p in report::write_probe(&args.report_dir, &broker, &results)? {
        println!("wrote {}", p.display());
    }
    print!("\n{}", report::probe_markdown(&broker, &results));
    Ok(if results.iter().any(|r| r.verdict.stopped()) {
        1
    } else {
        0
    })
}
