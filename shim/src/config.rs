//! The shim's settings: environment variables of the target process.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MQTLS_SHIM_REPORT` | the JSON report's path; a `.html` page of timelines is written next to it | none: one summary line on stderr |
//! | `MQTLS_SHIM` | `off`: watch nothing (the wrappers only call through) | on |
//! | `MQTLS_SHIM_MODE` | `full` (histories) or `counting` (counts only, cheaper) | `full` |
//! | `MQTLS_SHIM_SUPPRESSIONS` | a suppressions file: findings explained, with their reasons (see [`crate::suppress`]) | none |
//! | `MQTLS_SHIM_STOP_SIGNALS` | signal numbers that write the report before the process dies of them (comma-separated), or `none` | `15,2` (SIGTERM, SIGINT) |

use crate::suppress::Suppressions;
use mqtls_harness::ledger::Mode;
use std::path::PathBuf;

/// Settings read once, at the target's start.
#[derive(Debug, Clone)]
pub struct Config {
    /// False with `MQTLS_SHIM=off`.
    pub enabled: bool,
    /// The ledger's mode.
    pub mode: Mode,
    /// Where the report goes.
    pub report: Option<PathBuf>,
    /// Signals that write the report.
    pub stop_signals: Vec<i32>,
    /// Findings explained.
    pub suppressions: Suppressions,
    /// What was wrong with the settings, for the report.
    pub notes: Vec<String>,
}

impl Config {
    /// From the process's environment.
    pub fn from_env() -> Config {
        Config::parse(
            |k| std::env::var(k).ok(),
            |path| std::fs::read_to_string(path),
        )
    }

    /// From `get` (an environment) and `read` (a file's text); bad values
    /// fall back to the defaults with a warning on stderr and a note in the
    /// report, so that a typo never stops the target.
    pub fn parse(
        get: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Config {
        let mut notes = Vec::new();
        let enabled = !matches!(
            get("MQTLS_SHIM").as_deref().map(str::trim),
            Some("off" | "0" | "no" | "false")
        );
        let mode = match get("MQTLS_SHIM_MODE").as_deref().map(str::trim) {
            None | Some("" | "full") => Mode::Full,
            Some("counting") => Mode::Counting,
            Some(other) => {
                eprintln!(
                    "mqtls-shim: MQTLS_SHIM_MODE={other} is neither full nor counting; using full"
                );
                Mode::Full
            }
        };
        let report = get("MQTLS_SHIM_REPORT")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        let stop_signals = match get("MQTLS_SHIM_STOP_SIGNALS").as_deref().map(str::trim) {
            None | Some("") => vec![libc::SIGTERM, libc::SIGINT],
            Some("none") => Vec::new(),
            Some(list) => {
                let parsed: Result<Vec<i32>, _> =
                    list.split(',').map(|s| s.trim().parse::<i32>()).collect();
                match parsed {
                    Ok(v) if v.iter().all(|s| (1..64).contains(s)) => v,
                    _ => {
                        eprintln!(
                            "mqtls-shim: MQTLS_SHIM_STOP_SIGNALS={list} is not a list of signal numbers; using 15,2"
                        );
                        vec![libc::SIGTERM, libc::SIGINT]
                    }
                }
            }
        };
        let suppressions = match get("MQTLS_SHIM_SUPPRESSIONS").filter(|p| !p.trim().is_empty()) {
            None => Suppressions::default(),
            Some(path) => match read(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| Suppressions::parse(&t))
            {
                Ok(s) => s,
                Err(e) => {
                    let note =
                        format!("MQTLS_SHIM_SUPPRESSIONS={path}: {e}; nothing is suppressed");
                    eprintln!("mqtls-shim: {note}");
                    notes.push(note);
                    Suppressions::default()
                }
            },
        };
        Config {
            enabled,
            mode,
            report,
            stop_signals,
            suppressions,
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn no_file(path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{path}: no such file"),
        ))
    }

    #[test]
    fn defaults_watch_in_full_mode_and_report_on_term_and_int() {
        let c = Config::parse(env(&[]), no_file);
        assert!(c.enabled);
        assert_eq!(c.mode, Mode::Full);
        assert_eq!(c.report, None);
        assert_eq!(c.stop_signals, vec![15, 2]);
    }

    #[test]
    fn every_setting_is_read_and_bad_ones_fall_back() {
        let c = Config::parse(
            env(&[
                ("MQTLS_SHIM", "off"),
                ("MQTLS_SHIM_MODE", "counting"),
                ("MQTLS_SHIM_REPORT", "/tmp/r.json"),
                ("MQTLS_SHIM_STOP_SIGNALS", "10, 12"),
                ("MQTLS_SHIM_SUPPRESSIONS", "supp"),
            ]),
            |_| Ok("OpNeverFinished origin=f # why\n".into()),
        );
        assert!(!c.enabled);
        assert_eq!(c.mode, Mode::Counting);
        assert_eq!(c.report, Some(PathBuf::from("/tmp/r.json")));
        assert_eq!(c.stop_signals, vec![10, 12]);
        assert_eq!(c.suppressions.rules.len(), 1);
        assert!(c.notes.is_empty());
        let bad = Config::parse(
            env(&[
                ("MQTLS_SHIM_MODE", "loud"),
                ("MQTLS_SHIM_STOP_SIGNALS", "TERM"),
                ("MQTLS_SHIM_SUPPRESSIONS", "missing.supp"),
            ]),
            no_file,
        );
        assert_eq!(bad.mode, Mode::Full);
        assert_eq!(bad.stop_signals, vec![15, 2]);
        assert!(bad.suppressions.rules.is_empty());
        assert!(
            bad.notes[0].contains("missing.supp") && bad.notes[0].contains("nothing is suppressed"),
            "{:?}",
            bad.notes
        );
        assert!(
            Config::parse(env(&[("MQTLS_SHIM_STOP_SIGNALS", "none")]), no_file)
                .stop_signals
                .is_empty()
        );
    }
}
