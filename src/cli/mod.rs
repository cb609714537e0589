//! The `mqtls` command line: one file per subcommand.

mod bench;
mod broker;
mod certs;
mod check;
mod compare;
mod decode;
mod error;
mod hostile_broker;
pub mod logging;
mod mqtt_client;
mod probe;
mod publish;
mod queue_limits;
mod soak;
mod sub;
pub mod zoo;

pub use error::CliError;

use clap::{Parser, Subcommand};

/// Memory-safety regression and fuzzing harness for MQTT over TLS.
///
/// Start with `mqtls check`: it runs the whole harness on a built-in default
/// and exits non-zero when anything leaked, was freed twice or was left
/// unfinished.
#[derive(Debug, Parser)]
#[command(name = "mqtls", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole harness (the main job) and write reports.
    Check(check::Args),
    /// Compare criterion baselines and flag regressions.
    Bench(bench::Args),
    /// The bug zoo: list the historic faults, replay one, or run the detection matrix.
    Zoo(zoo::Args),
    /// Write a test PKI (good and broken certificates) as PEM files.
    Certs(certs::Args),
    /// Decode MQTT packets (hex or raw bytes) and print them as JSON.
    Decode(decode::Args),
    /// The reference broker over TLS (and optionally plain TCP); with no
    /// arguments it serves 8883 with a throwaway PKI and prints how to connect.
    ///
    /// Sessions, their queued messages and retained messages live in memory
    /// only: they are lost when the broker stops or restarts.
    ///
    /// What a slow or stopped consumer may hold is bounded per session
    /// (--max-queued-messages, --max-queued-bytes) and for the whole broker
    /// (--queue-memory); beyond that, queued QoS 0 go first, then
    /// --queue-full decides for QoS 1/2, and a consumer over its limit for
    /// --slow-consumer-timeout seconds is disconnected. Every drop is
    /// counted per reason, logged, and released once through the ledger.
    Broker(broker::Args),
    /// Subscribe and print messages (nanomq_cli / mosquitto_sub flags).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Sub(sub::Args),
    /// Publish a message (nanomq_cli / mosquitto_pub flags).
    #[command(name = "pub", disable_help_flag = true, disable_version_flag = true)]
    Pub(publish::Args),
    /// A TLS broker that misbehaves on purpose, to test an external client.
    HostileBroker(hostile_broker::Args),
    /// Attack an external TLS broker and check it keeps serving.
    Probe(probe::Args),
    /// Soak a broker with slow, stopped and flapping consumers: RSS over
    /// time, drops per reason, other clients' latency, the ledger audit.
    ///
    /// Runs the same load against our broker and mosquitto (or a broker
    /// you started) one after the other and prints them side by side;
    /// writes soak.md and soak.json. Exits 1 when our broker's audit is not
    /// clean, its RSS went over --max-rss, the probe lost a message or a
    /// client failed.
    Soak(soak::Args),
    /// Compare hostile-broker or probe reports: new, fixed and unchanged findings.
    Compare(compare::Args),
}

/// Installs the log subscriber for `command`: the broker logs each
/// connection event by default, everything else only warnings unless asked.
fn init_logging(command: &Command) {
    use logging::{Baseline, LogFormat, init};
    match command {
        Command::Broker(a) => init(Baseline::Events, a.log.verbose, a.log.log_format),
        Command::Sub(a) => init(Baseline::Quiet, a.connect.debug.into(), LogFormat::Text),
        Command::Pub(a) => init(Baseline::Quiet, a.connect.debug.into(), LogFormat::Text),
        _ => init(Baseline::Quiet, 0, LogFormat::Text),
    }
}

/// Parses the process arguments, runs the subcommand and returns the exit
/// status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let result = match cli.command {
        Command::Check(a) => check::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Zoo(a) => zoo::run(a),
        Command::Certs(a) => certs::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Broker(a) => broker::run(a),
        Command::Sub(a) => sub::run(a),
        Command::Pub(a) => publish::run(a),
        Command::HostileBroker(a) => hostile_broker::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Soak(a) => soak::run(a),
        Command::Compare(a) => compare::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mqtls: {e}");
            2
        }
    }
}
