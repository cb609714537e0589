//! The fuzz engine: a bounded, deterministic random run through the
//! fuzzing entry points (the same functions the cargo-fuzz targets call).
//!
//! libFuzzer needs the nightly build; this engine runs in the release
//! binary. It mutates the generated seed sessions (byte flips, inserts,
//! deletions, splices), runs them through the kernel targets, and on a
//! finding shrinks the input greedily before reporting it.

use super::matrix::{DetectionEngine, Engine, EngineRun};
use crate::faults::{Fault, FaultSet};
use crate::fuzzing::seeds::seeds;
use crate::fuzzing::{FaultPolicy, Finding, Target};
use std::time::{Duration, Instant};

/// The targets that drive the kernels (the codec targets cannot reach a
/// lifecycle fault).
const KERNEL_TARGETS: [Target; 3] = [
    Target::BrokerStream,
    Target::ClientStream,
    Target::LifecycleOps,
];

/// Replays spent shrinking one finding.
const MAX_SHRINK_RUNS: usize = 2_000;

/// xorshift64*: deterministic, so a run can be repeated exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(6) {
            0 if len > 1 => {
                let i = 1 + rng.below(len - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = 1 + rng.below(len.max(1));
                input.insert(i.min(input.len()), rng.next() as u8);
            }
            2 if len > 2 => {
                let i = 1 + rng.below(len - 1);
                let n = 1 + rng.below((len - i).min(8));
                input.drain(i..i + n);
            }
            3 if len > 2 => {
                let i = 1 + rng.below(len - 1);
                let n = 1 + rng.below((len - i).min(16));
                let chunk: Vec<u8> = input[i..i + n].to_vec();
                let at = 1 + rng.below(input.len() - 1);
                input.splice(at..at, chunk);
            }
            4 if other.len() > 1 => {
                // Splice the tail of another seed onto this one.
                let cut = 1 + rng.below(input.len().max(2) - 1);
                let from = 1 + rng.below(other.len() - 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.push(rng.next() as u8),
        }
    }
}

/// Removes chunks of `input` while `fails` still holds.
fn shrink(mut input: Vec<u8>, fails: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut runs = 0;
    let mut chunk = input.len() / 2;
    while chunk >= 1 && runs < MAX_SHRINK_RUNS {
        let mut i = 1;
        while i + chunk <= input.len() && runs < MAX_SHRINK_RUNS {
            let mut candidate = input.clone();
            candidate.drain(i..i + chunk);
            runs += 1;
            if fails(&candidate) {
                input = candidate;
            } else {
                i += chunk;
            }
        }
        chunk /= 2;
    }
    input
}

/// The fuzz engine for the detection matrix.
pub struct FuzzEngine;

impl DetectionEngine for FuzzEngine {
    fn engine(&self) -> Engine {
        Engine::FuzzRandom
    }

    fn run(&self, faults: FaultSet, target: Option<Fault>, budget: Duration) -> EngineRun {
        let policy = if faults == FaultSet::NONE {
            FaultPolicy::Off
        } else {
            FaultPolicy::Fixed(faults)
        };
        // The 83430191f race needs two threads in one instant; an input
        // runs its steps one at a time.
        if target == Some(Fault::Nanonng83430191f) {
            return EngineRun::default();
        }
        let corpora: Vec<(Target, Vec<Vec<u8>>)> = KERNEL_TARGETS
            .iter()
            .map(|t| (*t, seeds(*t).into_iter().map(|s| s.data).collect()))
            .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let started = Instant::now();
        let mut iterations = 0;
        while started.elapsed() < budget {
            let (t, inputs) = &corpora[rng.below(corpora.len())];
            if inputs.is_empty() {
                continue;
            }
            let mut input = inputs[rng.below(inputs.len())].clone();
            let other = &inputs[rng.below(inputs.len())];
            // Every other input runs unmutated first: the seeds are valid
            // sessions, and mutation alone rarely rebuilds one.
            if iterations % 2 == 1 {
                mutate(&mut rng, &mut input, other);
            }
            iterations += 1;
            let Err(finding) = t.run_with(&input, &policy) else {
                continue;
            };
            let fails = |d: &[u8]| t.run_with(d, &policy).is_err();
            let small = shrink(input, fails);
            let finding: Finding = t.run_with(&small, &policy).err().unwrap_or(finding);
            return EngineRun {
                applicable: true,
                violation: None,
                kind: finding.kinds().first().copied(),
                failure: Some(finding.to_string()),
                iterations,
                reproduction: Some(format!(
                    "target `{}`, {} bytes: {}",
                    t.name(),
                    small.len(),
                    hex::encode(&small)
                )),
            };
        }
        EngineRun {
            applicable: true,
            iterations,
            ..EngineRun::default()
        }
    }
}
