//! Loom results, read from the output of `cargo test --features loom`.
//!
//! Loom models run in their own build, so the detection matrix takes their
//! verdicts from the test output: a model named `<fault>_..._detected` that
//! passed found the fault's violation; a model named `..._clean` that
//! failed is a false positive of the fixed protocol.

use super::matrix::{Cell, Engine, Verdict};
use crate::faults::Fault;

/// One `test NAME ... ok|FAILED` line.
fn parse_line(line: &str) -> Option<(&str, bool)> {
    let rest = line.trim().strip_prefix("test ")?;
    let (name, result) = rest.split_once(" ... ")?;
    match result.trim() {
        "ok" => Some((name.trim(), true)),
        "FAILED" => Some((name.trim(), false)),
        _ => None,
    }
}

/// The loom column of the matrix from `output`: per fault, detected when a
/// passing `*_detected` test names it; the control row clean unless a
/// `*_clean` test failed.
pub fn cells(output: &str) -> Vec<Cell> {
    let tests: Vec<(&str, bool)> = output.lines().filter_map(parse_line).collect();
    let mut cells = Vec::new();
    for f in Fault::ALL {
        let key = f.name().replace('-', "_");
        let mine: Vec<&(&str, bool)> = tests
            .iter()
            .filter(|(n, _)| n.rsplit("::").next().is_some_and(|t| t.starts_with(&key)))
            .collect();
        let detected: Vec<&str> = mine
            .iter()
            .filter(|(n, ok)| *ok && n.ends_with("_detected"))
            .map(|(n, _)| *n)
            .collect();
        let verdict = if detected.is_empty() {
            if mine.is_empty() {
                Verdict::NotApplicable
            } else {
                Verdict::Missed
            }
        } else {
            Verdict::Detected
        };
        cells.push(Cell {
            fault: Some(f),
            engine: Engine::Loom,
            verdict,
            kind: None,
            seconds: 0.0,
            iterations: mine.len() as u64,
            reproduction: detected.first().map(|n| format!("loom model `{n}`")),
            failure: detected.first().map(|n| format!("{n} passed")),
            violation: None,
        });
    }
    let failed_clean: Vec<&str> = tests
        .iter()
        .filter(|(n, ok)| !ok && n.ends_with("_clean"))
        .map(|(n, _)| *n)
        .collect();
    let cleans = tests.iter().filter(|(n, _)| n.ends_with("_clean")).count();
    cells.push(Cell {
        fault: None,
        engine: Engine::Loom,
        verdict: if failed_clean.is_empty() {
            Verdict::Clean
        } else {
            Verdict::FalsePositive
        },
        kind: None,
        seconds: 0.0,
        iterations: cleans as u64,
        reproduction: None,
        failure: (!failed_clean.is_empty()).then(|| failed_clean.join(", ")),
        violation: None,
    });
    cells
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn reads_detected_and_clean_models() {
        let out = "running 3 tests\n\
            test nanomq_1766_write_complete_detected ... ok\n\
            test nanomq_1766_write_complete_clean ... ok\n\
            test nng_355_cancel_vs_ack_detected ... FAILED\n";
        let c = cells(out);
        let get = |f: Fault| c.iter().find(|x| x.fault == Some(f)).map(|x| x.verdict);
        assert_eq!(get(Fault::Nanomq1766), Some(Verdict::Detected));
        assert_eq!(get(Fault::Nng355), Some(Verdict::Missed));
        assert_eq!(get(Fault::Nanonng1505), Some(Verdict::NotApplicable));
        let control = c.iter().find(|x| x.fault.is_none()).map(|x| x.verdict);
        assert_eq!(control, Some(Verdict::Clean));
    }
}
