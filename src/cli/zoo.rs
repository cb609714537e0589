//! `mqtls zoo`: the bug zoo.

use super::CliError;
use crate::faults::{Fault, FaultSet};
use crate::zoo::recipes;

/// Options of `mqtls zoo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each fault with its source and the mistake it reintroduces.
    #[arg(long)]
    pub list: bool,
    /// Run FAULT's reproduction (its ZOO.md sequence over the in-memory
    /// transport) with the fault on, and print what the ledger reports.
    #[arg(long, value_name = "FAULT")]
    pub show: Option<Fault>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<i32, CliError> {
    if let Some(f) = args.show {
        return show(f);
    }
    if !args.list {
        return Err(CliError::Usage(
            "the detection matrix is not part of this build yet; use `mqtls zoo --list`".into(),
        ));
    }
    for f in Fault::ALL {
        println!(
            "{:<22} {}\n{:<22} {}\n",
            f.name(),
            f.source(),
            "",
            f.mistake()
        );
    }
    Ok(0)
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
