//! `mqtls pub`: publish one message (like `nanomq_cli pub` and
//! `mosquitto_pub`).

use super::CliError;
use super::mqtt_client::{ConnectArgs, qos, runtime};
use crate::ledger::{Ledger, Mode};
use crate::net::Client;

/// Options of `mqtls pub`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct Args {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// The message.
    #[arg(short = 'm', long = "message", default_value = "")]
    pub message: String,
    /// QoS of the publish.
    #[arg(short = 'q', long = "qos", default_value_t = 0)]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,
    /// Publish it this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Runs it: 0 when every publish completed and the client's ledger is
/// clean.
pub fn run(args: Args) -> Result<i32, CliError> {
    let opts = args.connect.options("pub")?;
    let q = qos(args.qos)?;
    let ledger = Ledger::new(Mode::Counting);
    runtime()?.block_on(async {
        let client = Client::connect(opts, ledger.clone())
            .await
            .map_err(|e| CliError::Net(e.to_string()))?;
        for _ in 0..args.repeat {
            client
                .publish(
                    &args.topic,
                    args.message.clone().into_bytes(),
                    q,
                    args.retain,
                )
                .await
                .map_err(|e| CliError::Net(e.to_string()))?;
        }
        client
            .disconnect()
            .await
            .map_err(|e| CliError::Net(e.to_string()))
    })?;
    Ok(super::mqtt_client::audit_exit(&ledger))
}
