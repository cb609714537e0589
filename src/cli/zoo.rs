//! `mqtls zoo`: the bug zoo and the detection matrix.

use super::CliError;
use crate::faults::{Fault, FaultSet};
use crate::report::detection;
use crate::zoo::matrix::{Engine, Matrix, Verdict};
use crate::zoo::{engines, loom_results, recipes};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `mqtls zoo`. Without `--list` or `--show` it runs the
/// detection matrix: every fault against every engine, and every engine with
/// all faults off, then writes detection.md, detection.svg, detection.json
/// and violations.html.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each fault with its source and the mistake it reintroduces.
    #[arg(long)]
    pub list: bool,
    /// Run FAULT's reproduction (its ZOO.md sequence over the in-memory
    /// transport) with the fault on, and print what the ledger reports.
    #[arg(long, value_name = "FAULT")]
    pub show: Option<Fault>,
    /// Only these faults (repeatable; default: all).
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<Fault>,
    /// Time budget per cell, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub budget: f64,
    /// Where to write the reports.
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
    /// Output of `cargo test --features loom` to add as the loom column.
    #[arg(long, value_name = "FILE")]
    pub loom_output: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<i32, CliError> {
    if let Some(f) = args.show {
        return show(f);
    }
    if args.list {
        for f in Fault::ALL {
            println!(
                "{:<22} {}\n{:<22} {}\n",
                f.name(),
                f.source(),
                "",
                f.mistake()
            );
        }
        return Ok(0);
    }
    if !(args.budget > 0.0 && args.budget.is_finite()) {
        return Err(CliError::Usage(
            "--budget must be a positive number of seconds".into(),
        ));
    }
    let faults = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let mut matrix = run_matrix(&faults, Duration::from_secs_f64(args.budget));
    if let Some(path) = &args.loom_output {
        add_loom(&mut matrix, path)?;
    }
    for p in detection::write(&matrix, &args.report_dir)? {
        println!("wrote {}", p.display());
    }
    print!("\n{}", detection::markdown(&matrix));
    Ok(if matrix.passed() { 0 } else { 1 })
}

/// Runs every engine against `faults` and the control row, printing a
/// progress line per cell.
pub fn run_matrix(faults: &[Fault], budget: Duration) -> Matrix {
    let engines = engines();
    let refs: Vec<&dyn crate::zoo::matrix::DetectionEngine> =
        engines.iter().map(|e| e.as_ref()).collect();
    let total = (faults.len() + 1) * refs.len();
    let mut done = 0;
    Matrix::run(&refs, faults, budget, |c| {
        done += 1;
        let row = c.fault.map_or("none (control)", |f| f.name());
        // A miss fails nothing by itself: the run fails when no engine
        // detects a fault, which the summary after the matrix says.
        let mark = match c.verdict {
            Verdict::Detected | Verdict::Clean => "ok",
            Verdict::NotApplicable => "--",
            Verdict::Missed => "miss",
            Verdict::FalsePositive => "FAIL",
        };
        eprintln!(
            "[zoo {done:>3}/{total}] {mark:<4} {row:<22} {:<22} {}",
            c.engine.title(),
            c.label()
        );
    })
}

/// Adds the loom column from a saved `cargo test --features loom` output,
/// for the rows the matrix has (a `--fault` run has only those).
pub fn add_loom(matrix: &mut Matrix, path: &std::path::Path) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        what: path.display().to_string(),
        source,
    })?;
    let cells = loom_results::cells(&text)
        .into_iter()
        .filter(|c| matrix.cells.iter().any(|m| m.fault == c.fault))
        .collect();
    matrix.add(Engine::Loom, cells);
    Ok(())
}

fn show(f: Fault) -> Result<i32, CliError> {
    println!("{f}: {}\n  {}\n", f.source(), f.mistake());
    let Some(audit) = recipes::reproduce(f, FaultSet::only(f)) else {
        println!("No sequential reproduction: this bug needs an interleaving.");
        println!(
            "Run its loom model: cargo test --features loom {}",
            f.name().replace('-', "_")
        );
        return Ok(0);
    };
    if audit.is_clean() {
        println!("NOT detected: the ledger reported nothing.");
        return Ok(1);
    }
    for v in &audit.violations {
        println!("{v}");
    }
    Ok(0)
}
