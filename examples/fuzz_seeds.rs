//! Writes the seed corpora of the fuzz targets to `fuzz/corpus/<target>/`
//! (or under the folder given as the first argument):
//!
//! ```sh
//! cargo run --example fuzz_seeds            # regenerates fuzz/corpus/
//! ```
//!
//! The seeds come from `mqtls_harness::fuzzing::seeds`; files of the same
//! name are overwritten, other files are left alone.

use mqtls_harness::fuzzing::{Target, seeds};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"));
    for t in Target::ALL {
        let dir = root.join(t.name());
        let written = std::fs::create_dir_all(&dir).and_then(|_| {
            let all = seeds::seeds(t);
            for s in &all {
                std::fs::write(dir.join(&s.name), &s.data)?;
            }
            Ok(all.len())
        });
        match written {
            Ok(n) => println!("{}: {n} seeds in {}", t.name(), dir.display()),
            Err(e) => {
                eprintln!("cannot write the seeds to {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
