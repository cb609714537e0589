//! What the harness writes for people and for CI: `summary.json` and
//! `summary.md` under the report directory (default `reports/latest`).

pub mod bench;
pub mod detection;
pub mod shim;
pub mod soak;
pub mod timeline;

use crate::cli::CliError;
use crate::ledger::{Stats, Violation};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One part of a run (a self-check, a scenario, an engine) and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Short name.
    pub name: String,
    /// True when the part did what it must (clean when it must be clean,
    /// detected when it must detect).
    pub passed: bool,
    /// One line on what was checked and what came out.
    pub detail: String,
}

/// The summary of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What ran.
    pub job: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Ledger counts of the clean runs, added up.
    pub ledger: Stats,
    /// Unexpected violations (0 when clean).
    pub violations: usize,
    /// The unexpected violations themselves.
    pub violation_reports: Vec<Violation>,
    /// Every part, in order.
    pub sections: Vec<Section>,
}

impl Summary {
    /// True when every section passed and nothing unexpected was found.
    pub fn passed(&self) -> bool {
        self.violations == 0 && self.sections.iter().all(|s| s.passed)
    }

    /// The Markdown rendering.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# mqtls {}: {}\n\n{:.1} s. Ledger: {} messages allocated, {} freed, {} live; \
             {} operations begun, {} finished. Unexpected violations: **{}**.\n\n\
             | part | result | detail |\n|---|---|---|\n",
            self.job,
            if self.passed() { "PASS" } else { "FAIL" },
            self.seconds,
            self.ledger.allocated,
            self.ledger.freed,
            self.ledger.live,
            self.ledger.ops_begun,
            self.ledger.ops_finished,
            self.violations
        );
        for sec in &self.sections {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                sec.name,
                if sec.passed { "ok" } else { "FAIL" },
                sec.detail.replace('|', "\\|")
            ));
        }
        for v in &self.violation_reports {
            s.push_str(&format!(
                "\n## {}\n\n{}\n\n```\n{}```\n",
                v.kind,
                v.diagnosis(),
                v.timeline()
            ));
        }
        s
    }

    /// Writes `summary.json` and `summary.md` into `dir` (created if need
    /// be) and returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
        let json = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"summary could not be serialised: {e}\"}}"));
        write_file(dir, "summary.json", &json)?;
        write_file(dir, "summary.md", &self.to_markdown())?;
        Ok(vec![dir.join("summary.json"), dir.join("summary.md")])
    }
}

/// Writes `name` under `dir`, creating the directory first.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|source| CliError::Write { path, source })
}
