//! `mqtls bench compare OLD NEW`: compares two criterion baselines.

use super::CliError;
use crate::report::{bench, write_file};
use std::path::PathBuf;

/// Options of `mqtls bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `mqtls bench` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Compare two saved baselines (`cargo bench -- --save-baseline NAME`);
    /// exits 1 when a benchmark is slower beyond noise and the threshold.
    Compare {
        /// The reference baseline (e.g. the last release).
        old: String,
        /// The baseline to judge.
        new: String,
        /// Slowdown, in percent, that counts as a regression once it is
        /// beyond noise (two runs of the same code on a shared 2-core
        /// machine differed by up to 11 % beyond their intervals).
        #[arg(long, default_value_t = 10.0)]
        threshold: f64,
        /// Criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// Where to write bench.md.
        #[arg(long, default_value = "reports/latest")]
        report_dir: PathBuf,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<i32, CliError> {
    let Action::Compare {
        old,
        new,
        threshold,
        criterion_dir,
        report_dir,
    } = args.action;
    let cmp = bench::compare(&criterion_dir, &old, &new, threshold)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let md = cmp.to_markdown();
    write_file(&report_dir, "bench.md", &md)?;
    print!("{md}");
    println!("\nwrote {}", report_dir.join("bench.md").display());
    let regressed = cmp.regressions().count();
    if regressed > 0 {
        println!("{regressed} benchmark(s) regressed beyond {threshold} %");
        return Ok(1);
    }
    Ok(0)
}
