//! Where the `tracing` events of a command go: stderr (so that `mqtls sub`
//! keeps stdout for messages), as text or as one JSON object a line, at a
//! level set by the command's default, `-v`/`-vv`, or `RUST_LOG`.

use std::io::IsTerminal;
use tracing::Level;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `message` and the
    /// event's fields), for log collectors.
    Json,
}

/// The logging flags of a long-running command (`mqtls broker`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// More log detail: -v adds debug events, -vv everything (rustls
    /// included). `RUST_LOG`, when set, replaces this (e.g.
    /// `RUST_LOG=mqtls_harness=trace,rustls=debug`).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// What a command logs when the user asked for nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// A server: one line per connection event (`info`).
    Events,
    /// A client or a batch job: only warnings and errors.
    Quiet,
}

/// The filter directives for `baseline` raised by `verbose` (0, 1, 2+).
/// Other crates stay at `warn` (rustls at `error`) until `-vv`.
pub fn directives(baseline: Baseline, verbose: u8) -> String {
    let ours = match (baseline, verbose) {
        (Baseline::Events, 0) => Level::INFO,
        (Baseline::Quiet, 0) => Level::WARN,
        (_, 1) => Level::DEBUG,
        _ => Level::TRACE,
    };
    let ours = ours.as_str().to_ascii_lowercase();
    if verbose >= 2 {
        format!("debug,mqtls_harness={ours}")
    } else {
        // rustls warns about every IP address a client sends as SNI (as
        // mosquitto_sub does); its refusals reach us as errors anyway.
        format!("warn,rustls=error,mqtls_harness={ours}")
    }
}

/// Installs the process's subscriber: `RUST_LOG` when it is set (a bad
/// value is reported and ignored), otherwise [`directives`]. Writes to
/// stderr, coloured only on a terminal. A second call does nothing.
pub fn init(baseline: Baseline, verbose: u8, format: LogFormat) {
    let fallback = directives(baseline, verbose);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("mqtls: ignoring RUST_LOG={v:?} ({e}); using {fallback}");
                tracing_subscriber::EnvFilter::new(&fallback)
            }
        },
        _ => tracing_subscriber::EnvFilter::new(&fallback),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 0);
    // Only fails when a subscriber is already installed (a test harness
    // calling in twice): the first one stays.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_logs_events_by_default_and_more_with_each_v() {
        let quiet_deps = "warn,rustls=error";
        assert_eq!(
            directives(Baseline::Events, 0),
            format!("{quiet_deps},mqtls_harness=info")
        );
        assert_eq!(
            directives(Baseline::Events, 1),
            format!("{quiet_deps},mqtls_harness=debug")
        );
        assert_eq!(directives(Baseline::Events, 2), "debug,mqtls_harness=trace");
        assert_eq!(
            directives(Baseline::Quiet, 0),
            format!("{quiet_deps},mqtls_harness=warn")
        );
        assert_eq!(
            directives(Baseline::Quiet, 1),
            format!("{quiet_deps},mqtls_harness=debug")
        );
    }
}
