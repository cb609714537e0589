//! The connection flags `mqtls sub` and `mqtls pub` share, spelled as
//! nanomq_cli and mosquitto_sub/pub spell them.

use super::CliError;
use crate::client::ClientConfig;
use crate::net::{ClientOptions, client::version_from_flag};
use crate::tls::ClientTlsOptions;
use std::path::PathBuf;
use std::time::Duration;

/// Broker address, protocol version, TLS and client id.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Broker host.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub host: String,
    /// Broker port (default 8883 with TLS, 1883 without).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "version", default_value_t = 4)]
    pub version: u8,
    /// Use TLS (implied by --cafile).
    #[arg(short = 's', long = "secure")]
    pub secure: bool,
    /// CA certificate the broker's certificate must chain to.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Private key of --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Client identifier (default: let the broker assign one).
    #[arg(short = 'i', long = "id", default_value = "")]
    pub client_id: String,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keep_alive: u16,
    /// Seconds to wait for the connection and for each acknowledgement.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// Log what the client does (debug events) on stderr; `RUST_LOG` gives
    /// finer control.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

impl ConnectArgs {
    /// The client options these flags describe; `name` labels the ledger
    /// actors.
    pub fn options(&self, name: &str) -> Result<ClientOptions, CliError> {
        let version = version_from_flag(self.version).ok_or_else(|| {
            CliError::Usage(format!(
                "-V {}: use 4 (MQTT 3.1.1) or 5 (MQTT 5.0)",
                self.version
            ))
        })?;
        let secure = self.secure || self.cafile.is_some();
        let tls = if secure {
            let ca = self.cafile.as_ref().ok_or_else(|| {
                CliError::Usage(
                    "-s needs --cafile CA.pem, the CA that signed the broker's certificate".into(),
                )
            })?;
            let mut o = ClientTlsOptions::from_files(ca.clone(), self.host.clone());
            match (&self.cert, &self.key) {
                (Some(c), Some(k)) => o = o.with_client_cert(c.clone(), k.clone()),
                (None, None) => {}
                _ => {
                    return Err(CliError::Usage(
                        "--cert and --key go together: pass both for mutual TLS".into(),
                    ));
                }
            }
            Some(
                o.build()
                    .map_err(|e| CliError::Usage(format!("TLS: {e}")))?,
            )
        } else {
            None
        };
        let limit = Duration::from_secs(self.timeout.max(1));
        Ok(ClientOptions {
            host: self.host.clone(),
            port: self.port.unwrap_or(if secure { 8883 } else { 1883 }),
            tls,
            mqtt: ClientConfig {
                version,
                client_id: self.client_id.clone(),
                keep_alive_secs: self.keep_alive,
                request_timeout_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                ..ClientConfig::default()
            },
            connect_timeout: limit,
            name: name.into(),
        })
    }
}

/// A QoS flag value.
pub fn qos(q: u8) -> Result<crate::codec::QoS, CliError> {
    crate::codec::QoS::from_u8(q)
        .ok_or_else(|| CliError::Usage(format!("-q {q}: QoS is 0, 1 or 2")))
}

/// A current-thread runtime for a command-line client.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))
}

/// Audits a command-line client's ledger after it disconnected: prints any
/// violation and returns the exit status (1 when there was one).
pub fn audit_exit(ledger: &crate::ledger::Ledger) -> i32 {
    let audit = ledger.audit();
    for v in &audit.violations {
        eprintln!("mqtls: ledger violation: {}", v.diagnosis());
    }
    i32::from(!audit.is_clean())
}
