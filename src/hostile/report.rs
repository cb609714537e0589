//! The hostile peers' reports: a table per run, for the terminal and as
//! `hostile-broker.md`/`.json` and `probe.md`/`.json`.

use super::campaign::ScenarioResult;
use super::probe::ProbeResult;
use crate::cli::CliError;
use crate::report::write_file;
use serde::Serialize;
use std::path::{Path, PathBuf};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The hostile-broker table.
pub fn broker_markdown(client_cmd: Option<&str>, results: &[ScenarioResult]) -> String {
    let findings = results.iter().filter(|r| r.is_finding()).count();
    let mut s = String::from("# mqtls hostile-broker\n\n");
    match client_cmd {
        Some(cmd) => s.push_str(&format!(
            "Client under test: `{}`. Findings (crash, sanitizer report, hang): **{findings}**.\n\n",
            cell(cmd)
        )),
        None => s.push_str("No client command: each scenario served whoever connected.\n\n"),
    }
    s.push_str("| scenario | client outcome | s | connections | broker misbehaved | client reaction |\n|---|---|---|---|---|---|\n");
    for r in results {
        let (outcome, secs) = match &r.client {
            Some(c) => (c.outcome.label(), format!("{:.1}", c.seconds)),
            None => ("(no client command)".to_owned(), "-".to_owned()),
        };
        let reaction = r
            .server
            .connections
            .iter()
            .find_map(|c| c.reaction.clone())
            .unwrap_or_else(|| "-".to_owned());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            cell(&outcome),
            secs,
            r.server.connections.len(),
            if r.server.misbehaved() { "yes" } else { "no" },
            cell(&reaction)
        ));
    }
    s.push_str("\n## Scenarios\n\n");
    for r in results {
        s.push_str(&format!("- `{}`: {}\n", r.scenario, r.description));
    }
    for r in results.iter().filter(|r| r.is_finding()) {
        if let Some(c) = &r.client {
            s.push_str(&format!(
                "\n## {}: {}\n\n```\n$ {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}\n```\n",
                r.scenario,
                c.outcome.label(),
                c.command,
                c.stdout_tail,
                c.stderr_tail
            ));
        }
    }
    s
}

#[derive(Serialize)]
struct BrokerJson<'a> {
    client_cmd: Option<&'a str>,
    findings: usize,
    scenarios: &'a [ScenarioResult],
}

/// Writes `hostile-broker.md` and `hostile-broker.json` into `dir`.
pub fn write_broker(
    dir: &Path,
    client_cmd: Option<&str>,
    results: &[ScenarioResult],
) -> Result<Vec<PathBuf>, CliError> {
    let json = BrokerJson {
        client_cmd,
        findings: results.iter().filter(|r| r.is_finding()).count(),
        scenarios: results,
    };
    write_pair(
        dir,
        "hostile-broker",
        &json,
        &broker_markdown(client_cmd, results),
    )
}

/// The probe table.
pub fn probe_markdown(broker: &str, results: &[ProbeResult]) -> String {
    let stopped = results.iter().filter(|r| r.verdict.stopped()).count();
    let mut s = format!(
        "# mqtls probe\n\nBroker under test: {broker}. Scenarios after which it stopped serving: **{stopped}**.\n\n\
         | scenario | verdict | broker's answer | liveness | s |\n|---|---|---|---|---|\n"
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} |\n",
            r.name,
            r.verdict.label(),
            cell(&r.answer),
            cell(&r.liveness),
            r.seconds
        ));
    }
    s.push_str("\n## Scenarios\n\n");
    for r in results {
        s.push_str(&format!("- `{}`: {}\n", r.name, r.description));
    }
    s
}

#[derive(Serialize)]
struct ProbeJson<'a> {
    broker: &'a str,
    stopped_serving: usize,
    scenarios: &'a [ProbeResult],
}

/// Writes `probe.md` and `probe.json` into `dir`.
pub fn write_probe(
    dir: &Path,
    broker: &str,
    results: &[ProbeResult],
) -> Result<Vec<PathBuf>, CliError> {
    let json = ProbeJson {
        broker,
        stopped_serving: results.iter().filter(|r| r.verdict.stopped()).count(),
        scenarios: results,
    };
    write_pair(dir, "probe", &json, &probe_markdown(broker, results))
}

fn write_pair<T: Serialize>(
    dir: &Path,
    stem: &str,
    json: &T,
    markdown: &str,
) -> Result<Vec<PathBuf>, CliError> {
    let json = serde_json::to_string_pretty(json)
        .unwrap_or_else(|e| format!("{{\"error\": \"report could not be serialised: {e}\"}}"));
    let (j, m) = (format!("{stem}.json"), format!("{stem}.md"));
    write_file(dir, &j, &json)?;
    write_file(dir, &m, markdown)?;
    Ok(vec![dir.join(j), dir.join(m)])
}
