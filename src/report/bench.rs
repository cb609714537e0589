//! Comparing two criterion baselines (`cargo bench -- --save-baseline NAME`)
//! benchmark by benchmark.
//!
//! Criterion keeps, per benchmark, `<id>/<baseline>/estimates.json` under
//! `target/criterion`. A change is *beyond noise* when the two 95 %
//! confidence intervals of the mean do not overlap, and a *regression* when
//! it is beyond noise and slower by more than the threshold.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why two baselines could not be compared.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The criterion directory does not exist.
    #[error("no criterion results under {0}: run `cargo bench -- --save-baseline NAME` first")]
    NoResults(PathBuf),
    /// Neither baseline name was found for any benchmark.
    #[error(
        "no benchmark has both baselines `{old}` and `{new}` under {dir}; saved baselines: {found}"
    )]
    NoCommonBaseline {
        /// The old baseline's name.
        old: String,
        /// The new baseline's name.
        new: String,
        /// Where we looked.
        dir: PathBuf,
        /// Baseline names that exist.
        found: String,
    },
    /// A results file could not be read or parsed.
    #[error("cannot read {path}: {why}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Debug, Deserialize)]
struct Estimate {
    confidence_interval: Interval,
    point_estimate: f64,
}

#[derive(Debug, Deserialize)]
struct Estimates {
    mean: Estimate,
}

/// One benchmark in both baselines.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Benchmark id (group/function/parameter).
    pub id: String,
    /// Mean time per iteration in the old baseline, ns.
    pub old_ns: f64,
    /// Mean time per iteration in the new baseline, ns.
    pub new_ns: f64,
    /// Relative change of the mean time (+0.10: 10 % slower).
    pub change: f64,
    /// True when the confidence intervals do not overlap.
    pub beyond_noise: bool,
    /// True when slower beyond noise and beyond the threshold.
    pub regressed: bool,
}

/// Every benchmark that has both baselines.
#[derive(Debug, Clone, Serialize)]
pub struct BenchComparison {
    /// The old baseline's name.
    pub old: String,
    /// The new baseline's name.
    pub new: String,
    /// Threshold in percent.
    pub threshold_pct: f64,
    /// One entry per benchmark, sorted by id.
    pub rows: Vec<Comparison>,
}

fn read_estimates(path: &Path) -> Result<Estimates, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::Unreadable {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| BenchError::Unreadable {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Collects every benchmark directory (one holding `<baseline>/estimates.json`)
/// below `dir`, and every baseline name seen.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, names: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() || p.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        if p.join("estimates.json").is_file() {
            if let Some(parent) = p.parent()
                && !out.iter().any(|o| o == parent)
            {
                out.push(parent.to_path_buf());
            }
            if let Some(n) = p.file_name().and_then(|n| n.to_str())
                && !names.iter().any(|x| x == n)
            {
                names.push(n.to_string());
            }
        } else {
            walk(&p, out, names);
        }
    }
}

/// Compares baseline `old` with `new` for every benchmark under `dir`
/// (normally `target/criterion`).
pub fn compare(
    dir: &Path,
    old: &str,
    new: &str,
    threshold_pct: f64,
) -> Result<BenchComparison, BenchError> {
    if !dir.is_dir() {
        return Err(BenchError::NoResults(dir.to_path_buf()));
    }
    let mut benches = Vec::new();
    let mut names = Vec::new();
    walk(dir, &mut benches, &mut names);
    let mut rows = Vec::new();
    for b in benches {
        let (o, n) = (
            b.join(old).join("estimates.json"),
            b.join(new).join("estimates.json"),
        );
        if !o.is_file() || !n.is_file() {
            continue;
        }
        let (eo, en) = (read_estimates(&o)?, read_estimates(&n)?);
        let (old_ns, new_ns) = (eo.mean.point_estimate, en.mean.point_estimate);
        let change = if old_ns > 0.0 {
            new_ns / old_ns - 1.0
        } else {
            0.0
        };
        let beyond_noise = en.mean.confidence_interval.lower_bound
            > eo.mean.confidence_interval.upper_bound
            || en.mean.confidence_interval.upper_bound < eo.mean.confidence_interval.lower_bound;
        let id = b
            .strip_prefix(dir)
            .unwrap_or(&b)
            .to_string_lossy()
            .replace('\\', "/");
        rows.push(Comparison {
            id,
            old_ns,
            new_ns,
            change,
            beyond_noise,
            regressed: beyond_noise && change * 100.0 > threshold_pct,
        });
    }
    if rows.is_empty() {
        names.sort();
        return Err(BenchError::NoCommonBaseline {
            old: old.into(),
            new: new.into(),
            dir: dir.to_path_buf(),
            found: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        });
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(BenchComparison {
        old: old.into(),
        new: new.into(),
        threshold_pct,
        rows,
    })
}

fn human_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.3} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.3} µs", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

impl BenchComparison {
    /// Benchmarks that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Comparison> {
        self.rows.iter().filter(|r| r.regressed)
    }

    /// The Markdown report: one table per benchmark group.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Benchmarks: `{}` -> `{}`\n\nThreshold {:.1} %. A change is beyond noise when the 95 % \
             confidence intervals of the means do not overlap.\n",
            self.old, self.new, self.threshold_pct
        );
        let mut group = "";
        for r in &self.rows {
            let g = r.id.split('/').next().unwrap_or("");
            if g != group {
                group = g;
                s.push_str(&format!(
                    "\n## {g}\n\n| benchmark | old | new | change | beyond noise | verdict |\n|---|---|---|---|---|---|\n"
                ));
            }
            let verdict = if r.regressed {
                "**REGRESSED**"
            } else if r.beyond_noise && r.change < 0.0 {
                "faster"
            } else {
                "ok"
            };
            s.push_str(&format!(
                "| {} | {} | {} | {:+.1} % | {} | {} |\n",
                r.id,
                human_ns(r.old_ns),
                human_ns(r.new_ns),
                r.change * 100.0,
                if r.beyond_noise { "yes" } else { "no" },
                verdict
            ));
        }
        s
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn write_est(dir: &Path, id: &str, baseline: &str, mean: f64, half: f64) {
        let d = dir.join(id).join(baseline);
        std::fs::create_dir_all(&d).unwrap();
        let json = format!(
            r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{},"upper_bound":{}}},"point_estimate":{},"standard_error":1.0}}}}"#,
            mean - half,
            mean + half,
            mean
        );
        std::fs::write(d.join("estimates.json"), json).unwrap();
    }

    #[test]
    fn flags_a_slowdown_beyond_noise_and_passes_noise() {
        let t = tempfile::tempdir().unwrap();
        write_est(t.path(), "codec/decode/16", "old", 100.0, 2.0);
        write_est(t.path(), "codec/decode/16", "new", 130.0, 2.0);
        write_est(t.path(), "ledger/counting", "old", 10.0, 1.0);
        write_est(t.path(), "ledger/counting", "new", 10.5, 1.0);
        let c = compare(t.path(), "old", "new", 5.0).unwrap();
        assert_eq!(c.rows.len(), 2);
        let slow: Vec<_> = c.regressions().map(|r| r.id.as_str()).collect();
        assert_eq!(slow, ["codec/decode/16"]);
        assert!(c.to_markdown().contains("**REGRESSED**"));
        let same = compare(t.path(), "old", "old", 5.0).unwrap();
        assert_eq!(same.regressions().count(), 0);
    }

    #[test]
    fn missing_baseline_names_what_exists() {
        let t = tempfile::tempdir().unwrap();
        write_est(t.path(), "x/y", "main", 1.0, 0.1);
        let e = compare(t.path(), "v1", "v2", 5.0).unwrap_err().to_string();
        assert!(e.contains("main"), "{e}");
    }
}
