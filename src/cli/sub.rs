//! `mqtls sub`: subscribe and print messages (like `nanomq_cli sub` and
//! `mosquitto_sub`).

use super::CliError;
use super::mqtt_client::{ConnectArgs, qos, runtime};
use crate::ledger::{Ledger, Mode};
use crate::net::Client;
use std::io::Write;

/// Options of `mqtls sub`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct Args {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", required = true)]
    pub topics: Vec<String>,
    /// QoS of the subscription.
    #[arg(short = 'q', long = "qos", default_value_t = 0)]
    pub qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Stop this many seconds after subscribing, with exit status
    /// 27 (as mosquitto_sub -W) unless -C messages arrived first.
    #[arg(short = 'W', value_name = "SECS")]
    pub wait: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

/// Exit status when `-W` elapsed first (mosquitto_sub's).
pub const TIMED_OUT: i32 = 27;

/// Runs it: 0 after `-C` messages or Ctrl-C, [`TIMED_OUT`] when `-W`
/// elapsed first, 1 when the connection ends or the client's ledger found a
/// violation.
pub fn run(args: Args) -> Result<i32, CliError> {
    let opts = args.connect.options("sub")?;
    let q = qos(args.qos)?;
    let ledger = Ledger::new(Mode::Counting);
    let code = runtime()?.block_on(async {
        let mut client = Client::connect(opts, ledger.clone())
            .await
            .map_err(|e| CliError::Net(e.to_string()))?;
        let filters: Vec<(&str, _)> = args.topics.iter().map(|t| (t.as_str(), q)).collect();
        client
            .subscribe(&filters)
            .await
            .map_err(|e| CliError::Net(e.to_string()))?;
        let mut seen = 0u64;
        let mut code = 0;
        let wait = args.wait.map(std::time::Duration::from_secs);
        let deadline = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        while args.count.is_none_or(|c| seen < c) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = &mut deadline => {
                    eprintln!(
                        "mqtls sub: timed out: -W {} s elapsed after {seen} messages",
                        wait.map_or(0, |d| d.as_secs())
                    );
                    code = TIMED_OUT;
                    break;
                }
                m = client.recv() => match m {
                    Ok(m) => {
                        seen += 1;
                        let mut out = std::io::stdout().lock();
                        if args.verbose {
                            let _ = write!(out, "{} ", m.topic);
                        }
                        let _ = out.write_all(&m.payload);
                        let _ = writeln!(out);
                        let _ = out.flush();
                    }
                    Err(e) => {
                        eprintln!("mqtls sub: {e}");
                        code = 1;
                        break;
                    }
                }
            }
        }
        let _ = client.disconnect().await;
        Ok::<i32, CliError>(code)
    })?;
    Ok(code.max(super::mqtt_client::audit_exit(&ledger)))
}
