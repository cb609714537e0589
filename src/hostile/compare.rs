//! Comparing verdicts: a baseline and a candidate (what a change fixed,
//! what it introduced), a table of several (scenario x build), and the
//! expected verdict of a target recipe checked against them.

use super::finding::{FindingKind, Signature};
use super::verdict::{Seen, Verdict};
use serde::Serialize;

/// A finding in the comparison of two verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Its signature.
    pub signature: Signature,
    /// Its kind.
    pub kind: FindingKind,
    /// Its one-line description (from the candidate when it has it).
    pub title: String,
    /// Where the baseline saw it.
    pub baseline: Vec<Seen>,
    /// Where the candidate saw it.
    pub candidate: Vec<Seen>,
}

/// What changed between a baseline and a candidate, by signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// In the candidate only: introduced (or newly reached).
    pub new: Vec<Change>,
    /// In the candidate only, but accepted (known, judged harmless for
    /// now): listed, not failing.
    pub accepted: Vec<Change>,
    /// In the baseline only: fixed (or no longer reached).
    pub fixed: Vec<Change>,
    /// In both.
    pub unchanged: Vec<Change>,
}

/// Compares `candidate` with `baseline`; new findings whose signature (id
/// or text) is in `accept` go to [`Comparison::accepted`].
pub fn compare(baseline: &Verdict, candidate: &Verdict, accept: &[String]) -> Comparison {
    let mut c = Comparison::default();
    for v in &candidate.findings {
        let base = baseline.finding(&v.finding.signature.id);
        let change = Change {
            signature: v.finding.signature.clone(),
            kind: v.finding.kind,
            title: v.finding.title.clone(),
            baseline: base.map(|b| b.seen.clone()).unwrap_or_default(),
            candidate: v.seen.clone(),
        };
        let accepted = accept
            .iter()
            .any(|a| *a == change.signature.id || *a == change.signature.text);
        if base.is_some() {
            c.unchanged.push(change);
        } else if accepted {
            c.accepted.push(change);
        } else {
            c.new.push(change);
        }
    }
    for v in &baseline.findings {
        if candidate.finding(&v.finding.signature.id).is_none() {
            c.fixed.push(Change {
                signature: v.finding.signature.clone(),
                kind: v.finding.kind,
                title: v.finding.title.clone(),
                baseline: v.seen.clone(),
                candidate: Vec::new(),
            });
        }
    }
    c
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn seen(list: &[Seen]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter()
        .map(|s| format!("{} {}/{}", s.scenario, s.runs, s.of))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The comparison as markdown.
pub fn markdown(baseline: &str, candidate: &str, c: &Comparison) -> String {
    let mut s = format!(
        "# mqtls compare\n\nBaseline: `{}`. Candidate: `{}`.\n\n**{} new, {} fixed, {} unchanged{}.**\n",
        cell(baseline),
        cell(candidate),
        c.new.len(),
        c.fixed.len(),
        c.unchanged.len(),
        if c.accepted.is_empty() {
            String::new()
        } else {
            format!(", {} new but accepted", c.accepted.len())
        }
    );
    let mut sections = vec![
        ("New (in the candidate only)", &c.new),
        ("Fixed (in the baseline only)", &c.fixed),
        ("Unchanged", &c.unchanged),
    ];
    if !c.accepted.is_empty() {
        sections.insert(1, ("New but accepted (--accept)", &c.accepted));
    }
    for (title, list) in sections {
        s.push_str(&format!("\n## {title}\n\n"));
        if list.is_empty() {
            s.push_str("none\n");
            continue;
        }
        s.push_str(
            "| signature | kind | finding | baseline | candidate |\n|---|---|---|---|---|\n",
        );
        for ch in list {
            s.push_str(&format!(
                "| `{}` | {} | {}<br>`{}` | {} | {} |\n",
                ch.signature.id,
                ch.kind,
                cell(&ch.title),
                cell(&ch.signature.text),
                cell(&seen(&ch.baseline)),
                cell(&seen(&ch.candidate))
            ));
        }
    }
    s
}

/// A table of several verdicts: one row per scenario, one column per
/// verdict (a build, a state), each cell the outcomes and finding rates;
/// the signatures are listed below it.
pub fn table(columns: &[(String, Verdict)]) -> String {
    let mut scenarios: Vec<String> = Vec::new();
    for (_, v) in columns {
        for s in &v.scenarios {
            if !scenarios.contains(&s.name) {
                scenarios.push(s.name.clone());
            }
        }
    }
    let mut out = String::from("| scenario |");
    for (name, _) in columns {
        out.push_str(&format!(" {} |", cell(name)));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for name in &scenarios {
        out.push_str(&format!("| {name} |"));
        for (_, v) in columns {
            let text = match v.scenario(name) {
                None => "-".to_owned(),
                Some(s) => {
                    let mut parts: Vec<String> = s
                        .outcomes
                        .iter()
                        .map(|o| format!("{} {}/{}", o.label, o.count, s.runs))
                        .collect();
                    for f in &s.findings {
                        let what = v.finding(&f.label).map_or_else(
                            || "?".to_owned(),
                            |fv| format!("{} {}", fv.finding.kind, fv.finding.bug_type),
                        );
                        parts.push(format!("{what} `{}` {}/{}", f.label, f.count, s.runs));
                    }
                    if parts.is_empty() {
                        "no finding".to_owned()
                    } else {
                        parts.join("<br>")
                    }
                }
            };
            out.push_str(&format!(" {} |", cell(&text).replace("\\|", "/")));
        }
        out.push('\n');
    }
    let mut listed: Vec<&str> = Vec::new();
    out.push_str("\n| signature | kind | finding | signature text |\n|---|---|---|---|\n");
    for (_, v) in columns {
        for f in &v.findings {
            if listed.contains(&f.finding.signature.id.as_str()) {
                continue;
            }
            listed.push(&f.finding.signature.id);
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` |\n",
                f.finding.signature.id,
                f.finding.kind,
                cell(&f.finding.title),
                cell(&f.finding.signature.text)
            ));
        }
    }
    out
}

/// One line of an expected verdict: in the verdict named `column`, the
/// scenario `scenario` must show `check` in at least `min` of its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The verdict's name (a state, a build).
    pub column: String,
    /// The scenario.
    pub scenario: String,
    /// What must (or must not) be seen.
    pub check: Check,
    /// The line it came from, for messages.
    pub line: usize,
}

/// What an expectation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The outcome label (`RECOVERED`, `GAVE UP`, ...) in at least this
    /// share of the runs.
    Outcome {
        /// The label.
        label: String,
        /// The share, as `numerator/denominator`.
        min: (usize, usize),
    },
    /// The finding with this signature (id or text) in at least this share
    /// of the runs.
    Finding {
        /// Its signature id or text.
        signature: String,
        /// The share.
        min: (usize, usize),
    },
    /// No finding of this kind (`LEAK`) or from this tool
    /// (`AddressSanitizer`) in any run.
    None {
        /// The kind label or tool name.
        what: String,
    },
}

/// Parses an expected verdict: one expectation per line, tab-separated:
/// `column  scenario  check`, where check is `outcome RECOVERED 10/10`,
/// `finding <signature id or text> 9/10` or `none AddressSanitizer` (`#`
/// starts a comment).
pub fn parse_expectations(text: &str) -> Result<Vec<Expectation>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split('\t').map(str::trim).collect();
        let err = |why: &str| format!("line {line}: {why}: `{l}`");
        let [column, scenario, what, rest @ ..] = fields.as_slice() else {
            return Err(err("expected `column<TAB>scenario<TAB>check...`"));
        };
        let rate = |s: Option<&&str>| -> Result<(usize, usize), String> {
            let s = s.ok_or_else(|| err("missing the share, e.g. 9/10"))?;
            let (a, b) = s
                .split_once('/')
                .ok_or_else(|| err("the share must read like 9/10"))?;
            match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b > 0 && a <= b => Ok((a, b)),
                _ => Err(err("the share must read like 9/10")),
            }
        };
        let check = match (*what, rest) {
            ("outcome", [label, share]) => Check::Outcome {
                label: (*label).to_owned(),
                min: rate(Some(share))?,
            },
            ("finding", [sig, share]) => Check::Finding {
                signature: (*sig).to_owned(),
                min: rate(Some(share))?,
            },
            ("none", [what]) => Check::None {
                what: (*what).to_owned(),
            },
            _ => {
                return Err(err(
                    "the check is `outcome LABEL n/m`, `finding SIGNATURE n/m` or `none KIND-OR-TOOL`",
                ));
            }
        };
        out.push(Expectation {
            column: (*column).to_owned(),
            scenario: (*scenario).to_owned(),
            check,
            line,
        });
    }
    Ok(out)
}

/// Checks `expectations` against the named verdicts; returns one line per
/// expectation, `Ok` when it holds and `Err` when it does not.
pub fn check(
    expectations: &[Expectation],
    columns: &[(String, Verdict)],
) -> Vec<Result<String, String>> {
    expectations
        .iter()
        .map(|e| {
            let Some((_, v)) = columns.iter().find(|(n, _)| *n == e.column) else {
                return Err(format!(
                    "line {}: no report named `{}` was given",
                    e.line, e.column
                ));
            };
            let Some(s) = v.scenario(&e.scenario) else {
                return Err(format!(
                    "line {}: {} did not run {}",
                    e.line, e.column, e.scenario
                ));
            };
            let at_least = |n: usize, (a, b): (usize, usize)| s.runs > 0 && n * b >= a * s.runs;
            let (holds, what) = match &e.check {
                Check::Outcome { label, min } => {
                    let n = s.outcome_count(label);
                    (
                        at_least(n, *min),
                        format!(
                            "outcome {label} in {n}/{} runs (expected at least {}/{})",
                            s.runs, min.0, min.1
                        ),
                    )
                }
                Check::Finding { signature, min } => {
                    let id = v.finding(signature).map(|f| f.finding.signature.id.clone());
                    let n = id.as_deref().map_or(0, |id| s.finding_count(id));
                    (
                        at_least(n, *min),
                        format!(
                            "finding `{signature}` in {n}/{} runs (expected at least {}/{})",
                            s.runs, min.0, min.1
                        ),
                    )
                }
                Check::None { what } => {
                    let hits: Vec<String> = s
                        .findings
                        .iter()
                        .filter_map(|c| v.finding(&c.label))
                        .filter(|f| {
                            f.finding.kind.label() == what.as_str()
                                || f.finding.tool.as_deref() == Some(what.as_str())
                        })
                        .map(|f| format!("`{}` {}", f.finding.signature.id, f.finding.title))
                        .collect();
                    (
                        hits.is_empty(),
                        if hits.is_empty() {
                            format!("no {what} finding")
                        } else {
                            format!("{what} findings: {}", hits.join("; "))
                        },
                    )
                }
            };
            let line = format!("{} {}: {what}", e.column, e.scenario);
            if holds { Ok(line) } else { Err(line) }
        })
        .collect()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::hostile::finding::Finding;

    fn verdict(runs: &[(&str, &str, &[&Finding])]) -> Verdict {
        let mut v = Verdict::new("hostile-broker", "client", 1);
        for (scenario, outcome, findings) in runs {
            let owned: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
            v.add_run(scenario, "d", Some(outcome), &owned);
        }
        v
    }

    #[test]
    fn a_fix_is_fixed_one_way_and_new_the_other() {
        let uaf = Finding::plain(FindingKind::Sanitizer, "heap-use-after-free", "uaf", "r");
        let leak = Finding::plain(FindingKind::Leak, "direct-leak", "leak", "r");
        let ub = Finding::plain(FindingKind::Sanitizer, "nonnull-attribute", "ub", "r");
        let buggy = verdict(&[("close-before-suback", "CRASHED", &[&uaf, &ub])]);
        let fixed = verdict(&[("close-before-suback", "RECOVERED", &[&leak, &ub])]);
        let c = compare(&buggy, &fixed, &[]);
        assert_eq!(c.fixed.len(), 1);
        assert_eq!(c.fixed[0].signature, uaf.signature);
        assert_eq!(c.new.len(), 1);
        assert_eq!(c.new[0].signature, leak.signature);
        assert_eq!(c.unchanged.len(), 1);
        let back = compare(&fixed, &buggy, &[]);
        assert_eq!(back.new[0].signature, uaf.signature);
        let accepted = compare(&buggy, &fixed, std::slice::from_ref(&leak.signature.text));
        assert!(accepted.new.is_empty());
        assert_eq!(accepted.accepted[0].signature, leak.signature);
        let md = markdown("buggy", "fixed", &c);
        assert!(md.contains("**1 new, 1 fixed, 1 unchanged.**"), "{md}");
        let t = table(&[
            ("old".into(), buggy.clone()),
            ("fixed".into(), fixed.clone()),
        ]);
        assert!(
            t.contains("| close-before-suback | CRASHED 1/1<br>SANITIZER heap-use-after-free"),
            "{t}"
        );
        assert!(t.contains(&uaf.signature.text), "{t}");
    }

    #[test]
    fn expectations_parse_and_hold_or_fail_with_the_counts() {
        let uaf = Finding::plain(FindingKind::Sanitizer, "heap-use-after-free", "uaf", "r");
        let v = verdict(&[
            ("s", "CRASHED", &[&uaf]),
            ("s", "CRASHED", &[&uaf]),
            ("s", "RECOVERED", &[]),
        ]);
        let text = format!(
            "# comment\nold\ts\tfinding\t{}\t2/3\nold\ts\toutcome\tCRASHED\t9/10\nold\ts\tnone\tLEAK\nold\ts\tnone\tSANITIZER\nnew\ts\tnone\tLEAK\n",
            uaf.signature.id
        );
        let e = parse_expectations(&text).unwrap();
        assert_eq!(e.len(), 5);
        let r = check(&e, &[("old".into(), v)]);
        assert!(r[0].is_ok(), "{r:?}");
        assert_eq!(
            r[1],
            Err("old s: outcome CRASHED in 2/3 runs (expected at least 9/10)".into())
        );
        assert!(r[2].is_ok());
        assert!(
            r[3].as_ref().unwrap_err().contains("SANITIZER findings"),
            "{r:?}"
        );
        assert!(r[4].as_ref().unwrap_err().contains("no report named `new`"));
        assert!(parse_expectations("a\tb\tfinding\tx\t11/10\n").is_err());
        assert!(
            parse_expectations("a b c\n")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
