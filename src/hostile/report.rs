//! The hostile peers' reports: a table per run, for the terminal and as
//! `hostile-broker.md`/`.json` and `probe.md`/`.json`.

use super::campaign::ScenarioResult;
use super::finding::{Finding, FindingKind};
use super::outcome::Outcome;
use super::probe::ProbeResult;
use super::verdict::{ScenarioVerdict, Verdict};
use crate::cli::CliError;
use crate::report::write_file;
use serde::Serialize;
use std::path::{Path, PathBuf};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The verdict of a hostile-broker run, from its results.
pub fn broker_verdict(
    client_cmd: Option<&str>,
    repeat: usize,
    results: &[ScenarioResult],
) -> Verdict {
    let mut v = Verdict::new(
        "hostile-broker",
        client_cmd.unwrap_or("(no client command)"),
        repeat,
    );
    for r in results {
        for run in &r.runs {
            v.add_run(
                r.scenario.name(),
                r.description,
                run.outcome.as_ref().map(Outcome::label),
                &run.findings,
            );
        }
    }
    v
}

/// A scenario's outcomes and finding rates in one cell.
fn rates(v: &Verdict, s: &ScenarioVerdict) -> (String, String) {
    let outcomes = s
        .outcomes
        .iter()
        .map(|o| format!("{} {}/{}", o.label, o.count, s.runs))
        .collect::<Vec<_>>()
        .join(", ");
    let findings = s
        .findings
        .iter()
        .map(|c| {
            let what = v.finding(&c.label).map_or_else(
                || "?".to_owned(),
                |f| format!("{} {}", f.finding.kind, f.finding.bug_type),
            );
            format!("{}/{} {what} `{}`", c.count, s.runs, c.label)
        })
        .collect::<Vec<_>>()
        .join("<br>");
    (
        if outcomes.is_empty() {
            "-".into()
        } else {
            outcomes
        },
        if findings.is_empty() {
            "-".into()
        } else {
            findings
        },
    )
}

/// Every finding once, with its evidence quoted whole (`quotes`) or only
/// named (for the terminal: the files have the quotes).
pub fn findings_markdown(v: &Verdict, quotes: bool) -> String {
    let mut s = String::new();
    if v.findings.is_empty() {
        return s;
    }
    s.push_str(
        "\n## Findings\n\nEach finding once, by signature, with its first report quoted whole.\n",
    );
    let mut heading = "";
    for (i, f) in v.findings.iter().enumerate() {
        let x = &f.finding;
        let class = match x.kind {
            FindingKind::Sanitizer | FindingKind::Leak => {
                "Memory and undefined behaviour (sanitizers)"
            }
            FindingKind::Protocol => "Protocol (normative statements broken)",
            _ => "Liveness (stuck, crashed, stopped serving)",
        };
        if class != heading {
            heading = class;
            s.push_str(&format!("\n### {class}\n"));
        }
        s.push_str(&format!(
            "\n#### {}. {} `{}`: {}\n\n- signature: `{}`\n- seen in: {}\n",
            i + 1,
            x.kind,
            x.signature.id,
            x.title,
            x.signature.text,
            f.seen_text()
        ));
        if let Some(rule) = &x.rule {
            s.push_str(&format!(
                "- rule broken: **{}**: {}\n",
                rule.id, rule.statement
            ));
        }
        if quotes {
            s.push_str(&format!("\n```\n{}\n```\n", x.report.trim_end()));
        }
    }
    s
}

/// How many of the verdict's findings are memory (sanitizer and leak) and
/// protocol findings.
fn memory_and_protocol(v: &Verdict) -> (usize, usize) {
    let count =
        |keep: fn(FindingKind) -> bool| v.findings.iter().filter(|f| keep(f.finding.kind)).count();
    (
        count(FindingKind::is_memory),
        count(|k| k == FindingKind::Protocol),
    )
}

/// The hostile-broker report as markdown (`quotes`: with every finding's
/// evidence quoted whole).
pub fn broker_markdown(v: &Verdict, results: &[ScenarioResult], quotes: bool) -> String {
    let mut s = String::from("# mqtls hostile-broker\n\n");
    let (memory, protocol) = memory_and_protocol(v);
    if results
        .iter()
        .all(|r| r.runs.iter().all(|run| run.client.is_none()))
    {
        s.push_str("No client command: each scenario served whoever connected.\n\n");
    } else {
        s.push_str(&format!(
            "Client under test: `{}`, {} run(s) per scenario. Findings: **{}** (sanitizer and leak: {memory}, protocol: {protocol}, stuck or crashed: {}).\n\n\
             RECOVERED (received the message after the misbehaviour) and GAVE UP (exited with an error, no crash) are passes; STUCK, CRASHED, every sanitizer report, leak and broken protocol rule are findings.\n\n",
            cell(&v.target),
            v.repeat,
            v.finding_count(),
            v.finding_count() - memory - protocol
        ));
    }
    s.push_str("| scenario | outcome | findings | connections | broker misbehaved | client reaction |\n|---|---|---|---|---|---|\n");
    for (r, sv) in results.iter().zip(&v.scenarios) {
        let (outcomes, findings) = rates(v, sv);
        let first = r.runs.first();
        let connections = first.map_or(0, |run| run.server.connections.len());
        let misbehaved = r.runs.iter().filter(|run| run.server.misbehaved()).count();
        let reaction = first
            .and_then(|run| {
                run.server
                    .connections
                    .iter()
                    .find_map(|c| c.reaction.clone())
            })
            .unwrap_or_else(|| "-".to_owned());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {}/{} | {} |\n",
            r.scenario,
            cell(&outcomes),
            cell(&findings).replace("\\|", "/"),
            connections,
            misbehaved,
            r.runs.len(),
            cell(&reaction)
        ));
    }
    s.push_str(&findings_markdown(v, quotes));
    if quotes {
        s.push_str("\n## Scenarios\n\n");
        for r in results {
            s.push_str(&format!("- `{}`: {}\n", r.scenario, r.description));
        }
    }
    s
}

#[derive(Serialize)]
struct BrokerJson<'a> {
    #[serde(flatten)]
    verdict: &'a Verdict,
    runs: &'a [ScenarioResult],
}

/// Writes `hostile-broker.md` and `hostile-broker.json` into `dir`.
pub fn write_broker(
    dir: &Path,
    verdict: &Verdict,
    results: &[ScenarioResult],
) -> Result<Vec<PathBuf>, CliError> {
    let json = BrokerJson {
        verdict,
        runs: results,
    };
    write_pair(
        dir,
        "hostile-broker",
        &json,
        &broker_markdown(verdict, results, true),
    )
}

/// The verdict of a probe run: each scenario's verdict label and findings
/// (protocol deviations, the broker's sanitizer reports, stopping serving),
/// and the findings of the broker's stop (`at-stop`: leaks reported on the
/// stop signal or at exit).
pub fn probe_verdict(broker: &str, results: &[ProbeResult], at_stop: &[Finding]) -> Verdict {
    let mut v = Verdict::new("probe", broker, 1);
    for r in results {
        v.add_run(
            &r.name,
            &r.description,
            Some(r.verdict.label()),
            &r.findings,
        );
    }
    if !at_stop.is_empty() {
        v.add_run(
            "at-stop",
            "the broker is stopped by the stop signal at the end of the probe",
            None,
            at_stop,
        );
    }
    v
}

/// The probe report as markdown (`quotes`: with every finding's evidence
/// quoted whole).
pub fn probe_markdown(v: &Verdict, results: &[ProbeResult], quotes: bool) -> String {
    let stopped = results.iter().filter(|r| r.verdict.stopped()).count();
    let (memory, protocol) = memory_and_protocol(v);
    let mut s = format!(
        "# mqtls probe\n\nBroker under test: {}. Scenarios after which it stopped serving: **{stopped}**. \
         Findings: **{}** (protocol: {protocol}, sanitizer and leak: {memory}).\n\n\
         | scenario | verdict | findings | broker's answer | liveness | s |\n|---|---|---|---|---|---|\n",
        cell(&v.target),
        v.finding_count()
    );
    for r in results {
        let findings = r
            .findings
            .iter()
            .map(|f| format!("{} {} `{}`", f.kind, f.bug_type, f.signature.id))
            .collect::<Vec<_>>();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} |\n",
            r.name,
            r.verdict.label(),
            if findings.is_empty() {
                "-".to_owned()
            } else {
                cell(&findings.join("<br>"))
            },
            cell(&r.answer),
            cell(&r.liveness),
            r.seconds
        ));
    }
    s.push_str(&findings_markdown(v, quotes));
    if quotes {
        s.push_str("\n## Scenarios\n\n");
        for r in results {
            s.push_str(&format!("- `{}`: {}\n", r.name, r.description));
        }
    }
    s
}

#[derive(Serialize)]
struct ProbeJson<'a> {
    #[serde(flatten)]
    verdict: &'a Verdict,
    stopped_serving: usize,
    runs: &'a [ProbeResult],
}

/// Writes `probe.md` and `probe.json` into `dir`.
pub fn write_probe(
    dir: &Path,
    verdict: &Verdict,
    results: &[ProbeResult],
) -> Result<Vec<PathBuf>, CliError> {
    let json = ProbeJson {
        verdict,
        stopped_serving: results.iter().filter(|r| r.verdict.stopped()).count(),
        runs: results,
    };
    write_pair(dir, "probe", &json, &probe_markdown(verdict, results, true))
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
