#![cfg(not(feature = "loom"))]
//! Replays the fuzzer's files through the same entry points the cargo-fuzz
//! targets call, on stable, so that every crash ever found stays a test:
//!
//! - `fuzz/regressions/<target>/*`: inputs that once crashed a target with
//!   the faults off (a bug since fixed) must now run clean;
//! - `fuzz/corpus/<target>/*`: the committed seeds must run clean and match
//!   what `cargo run --example fuzz_seeds` writes;
//! - `fuzz/detections/<target>/<fault>[-anything]`: the first input the
//!   fuzzer found for a historic fault must still find it with that fault
//!   on, and run clean with it off.

use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::fuzzing::{FaultPolicy, Target, seeds};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn files(kind: &str, t: Target) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(t.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn replay_clean(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for t in Target::ALL {
        for (name, data) in files(kind, t) {
            n += 1;
            if let Err(f) = t.run(&data) {
                failures.push(format!("fuzz/{kind}/{}/{name}:\n{f}", t.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    n
}

#[test]
fn regressions_run_clean() {
    let n = replay_clean("regressions");
    assert!(n > 0, "fuzz/regressions/ holds no input");
}

#[test]
fn corpus_runs_clean() {
    let n = replay_clean("corpus");
    assert!(n >= 5 * 8, "fuzz/corpus/ holds only {n} inputs");
}

#[test]
fn committed_corpus_holds_every_generated_seed() {
    for t in Target::ALL {
        let committed = files("corpus", t);
        for s in seeds::seeds(t) {
            let found = committed.iter().find(|(name, _)| *name == s.name);
            assert_eq!(
                found.map(|(_, d)| d),
                Some(&s.data),
                "fuzz/corpus/{}/{} is missing or stale: run `cargo run --example fuzz_seeds`",
                t.name(),
                s.name
            );
        }
    }
}

#[test]
fn detections_still_detect_and_run_clean_without_the_fault() {
    let mut n = 0;
    for t in Target::ALL {
        for (name, data) in files("detections", t) {
            let fault: Fault = Fault::ALL
                .into_iter()
                .filter(|f| name.starts_with(f.name()))
                .max_by_key(|f| f.name().len())
                .unwrap_or_else(|| panic!("fuzz/detections/{}/{name}: no fault name", t.name()));
            let policy = FaultPolicy::Fixed(FaultSet::only(fault));
            assert!(
                t.run_with(&data, &policy).is_err(),
                "fuzz/detections/{}/{name} no longer finds {fault}",
                t.name()
            );
            if let Err(f) = t.run(&data) {
                panic!(
                    "fuzz/detections/{}/{name} is not clean with faults off:\n{f}",
                    t.name()
                );
            }
            n += 1;
        }
    }
    assert!(n > 0, "fuzz/detections/ holds no input");
}
