//! `mqtls compare`: what changed between two reports, by finding
//! signature, or a table of several (scenario x build) checked against an
//! expected verdict.

use super::CliError;
use crate::hostile::compare::{self, Comparison};
use crate::hostile::verdict::Verdict;
use crate::report::write_file;
use std::path::{Path, PathBuf};

/// Compare hostile-broker or probe reports by finding signature.
///
/// With two reports (a baseline and a candidate, each a report directory
/// or its JSON file): the findings the candidate has and the baseline has
/// not (new), the other way round (fixed), and those in both (unchanged),
/// with their rates. Exit status 1 when there is a new finding: run it
/// before a release, with the last release's report as the baseline.
///
/// With --table NAME=REPORT...: one table, scenario x report, with each
/// cell's outcomes and finding rates; with --expect FILE the table is
/// checked against an expected verdict and the exit status is 1 when an
/// expectation fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// BASELINE CANDIDATE, or with --table: NAME=REPORT for each column.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<String>,
    /// Make a table of the reports (NAME=REPORT each) instead of comparing two.
    #[arg(long)]
    pub table: bool,
    /// With --table: the expected verdict to check (lines of
    /// `NAME<TAB>scenario<TAB>outcome LABEL n/m`, `finding SIGNATURE n/m` or
    /// `none KIND-OR-TOOL`).
    #[arg(long, value_name = "FILE", requires = "table")]
    pub expect: Option<PathBuf>,
    /// A new finding with this signature (id or text) is listed as
    /// accepted and does not fail the comparison (repeatable): for a known
    /// finding a release ships with.
    #[arg(long, value_name = "SIGNATURE")]
    pub accept: Vec<String>,
    /// Where to write compare.md (or table.md).
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
}

fn read(path: &str) -> Result<Verdict, CliError> {
    Ok(Verdict::read(Path::new(path))?)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<i32, CliError> {
    if args.table {
        return table(&args);
    }
    let [baseline, candidate] = args.reports.as_slice() else {
        return Err(CliError::Usage(
            "give two reports, BASELINE and CANDIDATE (or --table NAME=REPORT...)".into(),
        ));
    };
    let c: Comparison = compare::compare(&read(baseline)?, &read(candidate)?, &args.accept);
    let md = compare::markdown(baseline, candidate, &c);
    write_file(&args.report_dir, "compare.md", &md)?;
    let json = serde_json::to_string_pretty(&c)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise: {e}\"}}"));
    write_file(&args.report_dir, "compare.json", &json)?;
    print!("{md}");
    println!(
        "\nwrote {} and compare.json",
        args.report_dir.join("compare.md").display()
    );
    Ok(if c.new.is_empty() { 0 } else { 1 })
}

fn table(args: &Args) -> Result<i32, CliError> {
    let mut columns = Vec::new();
    for spec in &args.reports {
        let (name, path) = spec.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--table takes NAME=REPORT for each column, e.g. old=reports/nanomq/old (got `{spec}`)"
            ))
        })?;
        columns.push((name.to_owned(), read(path)?));
    }
    let mut md = format!("# mqtls compare --table\n\n{}", compare::table(&columns));
    let mut failed = 0;
    if let Some(file) = &args.expect {
        let text = std::fs::read_to_string(file).map_err(|source| CliError::Read {
            what: file.display().to_string(),
            source,
        })?;
        let expectations = compare::parse_expectations(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        md.push_str(&format!("\n## Expected verdict ({})\n\n", file.display()));
        for r in compare::check(&expectations, &columns) {
            match r {
                Ok(line) => md.push_str(&format!("- ok: {line}\n")),
                Err(line) => {
                    failed += 1;
                    md.push_str(&format!("- **FAILED**: {line}\n"));
                }
            }
        }
        md.push_str(&format!(
            "\n{} of {} expectations hold.\n",
            expectations.len() - failed,
            expectations.len()
        ));
    }
    write_file(&args.report_dir, "table.md", &md)?;
    print!("{md}");
    println!("\nwrote {}", args.report_dir.join("table.md").display());
    Ok(if failed == 0 { 0 } else { 1 })
}
