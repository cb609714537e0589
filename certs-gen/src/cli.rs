//! The command line shared by the `certs-gen` binary and `mqtls certs`.

use crate::{CertsError, KeyType, Pki, PkiOptions, WrittenFile};
use std::path::PathBuf;

/// Writes a test PKI (good and broken certificates) as PEM files.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to write into (created if missing); the broken material
    /// goes to DIR/broken/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace files that already exist (otherwise nothing is written).
    #[arg(long)]
    pub force: bool,
    /// Key algorithm of every key.
    #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,
    /// Extra name for the server certificate (DNS name or IP address), on
    /// top of localhost, 127.0.0.1 and ::1. Repeatable.
    #[arg(long = "san", value_name = "NAME")]
    pub extra_server_names: Vec<String>,
    /// Days the good certificates stay valid.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    pub days: u32,
}

impl Args {
    /// The generation options these arguments ask for.
    pub fn pki_options(&self) -> PkiOptions {
        let mut options = PkiOptions::default()
            .with_key_type(self.key_type)
            .with_validity_days(self.days);
        for name in &self.extra_server_names {
            options = options.with_extra_server_name(name.clone());
        }
        options
    }
}

/// Generates the PKI and writes it; returns what was written, in order.
pub fn run(args: &Args) -> Result<Vec<WrittenFile>, CertsError> {
    let pki = Pki::generate(&args.pki_options())?;
    pki.write_pem(&args.out, args.force)
}
