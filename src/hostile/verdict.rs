//! The verdict of a run over a peer: every finding once, by signature, with
//! where and how often it was seen, and each scenario's outcomes and
//! finding rates. It is the top of the JSON reports of `hostile-broker` and
//! `probe`, and what `mqtls compare` reads back.

use super::HostileError;
use super::finding::{Finding, FindingKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A label and how many runs had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// An outcome label (`RECOVERED`) or a signature id.
    pub label: String,
    /// In how many runs.
    pub count: usize,
}

/// One scenario over all its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioVerdict {
    /// The scenario's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// How many runs it had.
    pub runs: usize,
    /// Outcome labels and their counts, most frequent first.
    pub outcomes: Vec<Count>,
    /// Signature ids and the number of runs that found each.
    pub findings: Vec<Count>,
}

impl ScenarioVerdict {
    /// In how many runs the outcome `label` came out.
    pub fn outcome_count(&self, label: &str) -> usize {
        count_of(&self.outcomes, label)
    }

    /// In how many runs the finding with signature `id` was seen.
    pub fn finding_count(&self, id: &str) -> usize {
        count_of(&self.findings, id)
    }
}

fn count_of(counts: &[Count], label: &str) -> usize {
    counts
        .iter()
        .find(|c| c.label == label)
        .map_or(0, |c| c.count)
}

fn bump(counts: &mut Vec<Count>, label: &str) {
    match counts.iter_mut().find(|c| c.label == label) {
        Some(c) => c.count += 1,
        None => counts.push(Count {
            label: label.to_owned(),
            count: 1,
        }),
    }
}

/// Where a finding was seen: in `runs` of the `of` runs of `scenario`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The scenario.
    pub scenario: String,
    /// Runs that found it.
    pub runs: usize,
    /// Runs of the scenario.
    pub of: usize,
}

/// A finding, once, with everywhere it was seen. Its evidence is that of
/// its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingVerdict {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The scenarios and rates.
    pub seen: Vec<Seen>,
}

impl FindingVerdict {
    /// `close-before-suback 10/10, cut-mid-record 9/10`.
    pub fn seen_text(&self) -> String {
        self.seen
            .iter()
            .map(|s| format!("{} {}/{}", s.scenario, s.runs, s.of))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The verdict of one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// What produced it: `hostile-broker` or `probe`.
    pub tool: String,
    /// The peer under test: the client command, or the broker's address.
    pub target: String,
    /// Runs per scenario asked for.
    pub repeat: usize,
    /// Every finding once, memory findings first.
    pub findings: Vec<FindingVerdict>,
    /// Every scenario, in the order run.
    pub scenarios: Vec<ScenarioVerdict>,
}

impl Verdict {
    /// An empty verdict.
    pub fn new(tool: &str, target: &str, repeat: usize) -> Self {
        Verdict {
            tool: tool.to_owned(),
            target: target.to_owned(),
            repeat,
            findings: Vec::new(),
            scenarios: Vec::new(),
        }
    }

    /// Adds one run of `scenario`: its outcome label (when it has one) and
    /// its findings (a signature counts once per run).
    pub fn add_run(
        &mut self,
        scenario: &str,
        description: &str,
        outcome: Option<&str>,
        findings: &[Finding],
    ) {
        let index = match self.scenarios.iter().position(|s| s.name == scenario) {
            Some(i) => i,
            None => {
                self.scenarios.push(ScenarioVerdict {
                    name: scenario.to_owned(),
                    description: description.to_owned(),
                    runs: 0,
                    outcomes: Vec::new(),
                    findings: Vec::new(),
                });
                self.scenarios.len() - 1
            }
        };
        let mut ids: Vec<&str> = Vec::new();
        for f in findings {
            if !ids.contains(&f.signature.id.as_str()) {
                ids.push(&f.signature.id);
            }
        }
        let Some(s) = self.scenarios.get_mut(index) else {
            return;
        };
        s.runs += 1;
        if let Some(o) = outcome {
            bump(&mut s.outcomes, o);
            s.outcomes.sort_by_key(|c| std::cmp::Reverse(c.count));
        }
        for id in &ids {
            bump(&mut s.findings, id);
        }
        let of = s.runs;
        for f in findings {
            if !ids.contains(&f.signature.id.as_str()) {
                continue;
            }
            ids.retain(|i| *i != f.signature.id);
            let entry = match self
                .findings
                .iter_mut()
                .position(|v| v.finding.signature == f.signature)
            {
                Some(i) => self.findings.get_mut(i),
                None => {
                    self.findings.push(FindingVerdict {
                        finding: f.clone(),
                        seen: Vec::new(),
                    });
                    self.findings.last_mut()
                }
            };
            let Some(entry) = entry else { continue };
            match entry.seen.iter_mut().find(|s| s.scenario == scenario) {
                Some(s) => s.runs += 1,
                None => entry.seen.push(Seen {
                    scenario: scenario.to_owned(),
                    runs: 1,
                    of,
                }),
            }
        }
        // Every rate of this scenario is out of its runs so far.
        for v in &mut self.findings {
            for seen in v.seen.iter_mut().filter(|s| s.scenario == scenario) {
                seen.of = of;
            }
        }
        self.findings.sort_by_key(|v| kind_order(v.finding.kind));
    }

    /// How many distinct findings (signatures) there are.
    pub fn finding_count(&self) -> usize {
        self.findings.len()
    }

    /// The finding with signature `id` (or signature text `id`).
    pub fn finding(&self, id: &str) -> Option<&FindingVerdict> {
        self.findings
            .iter()
            .find(|v| v.finding.signature.id == id || v.finding.signature.text == id)
    }

    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioVerdict> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Reads the verdict of a report: a `hostile-broker.json` or
    /// `probe.json` file, or a directory holding one (hostile-broker first).
    pub fn read(path: &Path) -> Result<Verdict, HostileError> {
        let file = if path.is_dir() {
            ["hostile-broker.json", "probe.json"]
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| HostileError::Report {
                    path: path.to_path_buf(),
                    reason: "the directory holds neither hostile-broker.json nor probe.json".into(),
                })?
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| HostileError::Report {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| HostileError::Report {
            path: file,
            reason: format!(
                "not a report of this mqtls version ({e}); rerun the campaign that wrote it"
            ),
        })
    }
}

/// Memory findings first, then protocol, then liveness.
fn kind_order(kind: FindingKind) -> u8 {
    match kind {
        FindingKind::Sanitizer => 0,
        FindingKind::Leak => 1,
        FindingKind::Protocol => 2,
        FindingKind::Stuck => 3,
        FindingKind::Crash => 4,
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn f(kind: FindingKind, sig: &str) -> Finding {
        Finding::plain(kind, sig, sig, "evidence")
    }

    #[test]
    fn findings_are_counted_once_per_signature_with_rates_per_scenario() {
        let uaf = f(FindingKind::Sanitizer, "uaf");
        let leak = f(FindingKind::Leak, "leak");
        let mut v = Verdict::new("hostile-broker", "client", 3);
        v.add_run("a", "A", Some("CRASHED"), &[uaf.clone(), uaf.clone()]);
        v.add_run("a", "A", Some("CRASHED"), std::slice::from_ref(&uaf));
        v.add_run("a", "A", Some("RECOVERED"), std::slice::from_ref(&leak));
        v.add_run("b", "B", Some("CRASHED"), std::slice::from_ref(&uaf));
        assert_eq!(v.finding_count(), 2);
        let a = v.scenario("a").unwrap();
        assert_eq!(a.runs, 3);
        assert_eq!(a.outcome_count("CRASHED"), 2);
        assert_eq!(a.finding_count(&uaf.signature.id), 2);
        let seen = &v.finding(&uaf.signature.id).unwrap().seen;
        assert_eq!(
            seen[0],
            Seen {
                scenario: "a".into(),
                runs: 2,
                of: 3
            }
        );
        assert_eq!(
            seen[1],
            Seen {
                scenario: "b".into(),
                runs: 1,
                of: 1
            }
        );
        assert_eq!(
            v.finding(&leak.signature.text).unwrap().seen_text(),
            "a 1/3"
        );
        // It reads back from its JSON.
        let back: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }
}
