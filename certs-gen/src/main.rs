//! `certs-gen --out DIR`: writes a test PKI as PEM files.

use clap::Parser;
use std::process::ExitCode;

/// Writes a test PKI (CA, server, client, and broken certificates for
/// negative tests) as PEM files that OpenSSL-based programs accept.
#[derive(Debug, Parser)]
#[command(name = "certs-gen", version, about)]
struct Cli {
    #[command(flatten)]
    args: certs_gen::cli::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match certs_gen::cli::run(&cli.args) {
        Ok(written) => {
            for file in written {
                println!("wrote {file}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certs-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
