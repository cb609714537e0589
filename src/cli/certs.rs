//! `mqtls certs`: writes a test PKI as PEM files (the same as the
//! `certs-gen` binary).

use super::CliError;

/// Write a test PKI (CA, server, client, and broken certificates for
/// negative tests) as PEM files that OpenSSL-based programs accept.
#[derive(Debug, clap::Args)]
// Both structs are called `Args`: clap's default group ids would clash.
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    inner: certs_gen::cli::Args,
}

/// Generates and writes the files, listing each one; exit status 0.
pub fn run(args: Args) -> Result<i32, CliError> {
    for file in certs_gen::cli::run(&args.inner)? {
        println!("wrote {file}");
    }
    Ok(0)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};

    #[test]
    fn certs_subcommand_parses_and_writes_the_pki() {
        Cli::command().debug_assert();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let cli = Cli::try_parse_from([
            "mqtls".as_ref(),
            "certs".as_ref(),
            "--san".as_ref(),
            "broker.test".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .unwrap();
        let Command::Certs(args) = cli.command else {
            panic!("parsed as another subcommand");
        };
        assert_eq!(args.inner.extra_server_names, ["broker.test"]);
        assert_eq!(super::run(args).unwrap(), 0);
        assert!(out.join("ca.pem").is_file());
        assert!(out.join("broken/rogue-ca.pem").is_file());
    }
}
