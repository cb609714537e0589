//! `mqtls zoo`: the bug zoo.

use super::CliError;
use crate::faults::Fault;

/// Options of `mqtls zoo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each fault with its source and the mistake it reintroduces.
    #[arg(long)]
    pub list: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<i32, CliError> {
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
