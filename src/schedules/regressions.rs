//! The committed failing schedules (`tests/schedules.regressions`), each
//! replayed exactly by `cargo test`.
//!
//! One schedule a line: `<fault> <scenario> <finding> <schedule>`, where the
//! finding is the ledger's violation kind (`DoubleRelease`, ...) or
//! `broken-promise` for an oracle. `#` starts a comment. The explorer prints
//! the line to add when it finds something new.

use super::explore::Finding;
use super::scenario::Scenario;
use crate::faults::Fault;

/// One committed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regression {
    /// The fault it reproduces.
    pub fault: Fault,
    /// The scenario it schedules.
    pub scenario: Scenario,
    /// What it must show: a violation kind, or `broken-promise`.
    pub finding: String,
    /// The schedule, text form.
    pub schedule: String,
    /// Line number in the file (1-based).
    pub line: usize,
}

/// The finding column for `f`.
pub fn finding_name(f: &Finding) -> String {
    match &f.violation {
        Some(v) => v.kind.to_string(),
        None => "broken-promise".into(),
    }
}

/// The line to commit for `finding`, found with `fault` on.
pub fn line(fault: Fault, finding: &Finding) -> String {
    format!(
        "{fault} {} {} {}",
        finding.scenario,
        finding_name(finding),
        finding.schedule
    )
}

/// Parses the file's text; an error names the line.
pub fn parse(text: &str) -> Result<Vec<Regression>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {raw:?}", i + 1);
        let mut parts = l.split_whitespace();
        let (Some(fault), Some(scenario), Some(finding), Some(schedule), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("expected `<fault> <scenario> <finding> <schedule>`"));
        };
        out.push(Regression {
            fault: fault.parse().map_err(|_| bad("unknown fault"))?,
            scenario: Scenario::from_name(scenario).ok_or_else(|| bad("unknown scenario"))?,
            finding: finding.to_string(),
            schedule: schedule.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_names_bad_ones() {
        let text = "# comment\n\nnanomq-1766 subscribe-close DoubleRelease 1f:0*3.1\n";
        let r = parse(text).expect("parses");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].fault, Fault::Nanomq1766);
        assert_eq!(r[0].scenario, Scenario::SubscribeClose);
        assert_eq!(r[0].line, 3);
        let err = parse("nanomq-1766 nowhere DoubleRelease 1f:0").unwrap_err();
        assert!(err.contains("line 1") && err.contains("scenario"), "{err}");
        assert!(parse("nanomq-1766 subscribe-close").is_err());
    }
}
