//! The sequences engine: random lifecycle sequences (proptest) against the
//! reference model, over the in-memory transport, shrunk to the shortest
//! failing one.

use super::matrix::{DetectionEngine, Engine, EngineRun};
use crate::broker::BrokerConfig;
use crate::faults::{Fault, FaultSet};
use crate::ledger::{Ledger, Mode, Violation};
use crate::lifecycle::action::{Action, sequence};
use crate::lifecycle::driver::SimDriver;
use crate::lifecycle::run::{Ending, run_sequence};
use crate::lifecycle::search::MAX_LEN;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::time::{Duration, Instant};

/// Replays spent shrinking one failure.
const MAX_SHRINK_STEPS: usize = 4_000;

/// Runs one sequence; the failure and the ledger's first violation.
fn run(
    faults: FaultSet,
    actions: &[Action],
    ending: Ending,
    mode: Mode,
) -> Option<(String, Option<Violation>)> {
    let ledger = Ledger::new(mode);
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    let driver = SimDriver::new(ledger.clone(), cfg);
    let failure = run_sequence(driver, faults, actions, ending).err()?;
    let violation = ledger
        .violations()
        .into_iter()
        .next()
        .or_else(|| ledger.audit().violations.into_iter().next());
    Some((failure, violation))
}

/// The sequences engine for the detection matrix.
pub struct SequencesEngine;

impl DetectionEngine for SequencesEngine {
    fn engine(&self) -> Engine {
        Engine::Sequences
    }

    fn run(&self, faults: FaultSet, target: Option<Fault>, budget: Duration) -> EngineRun {
        // The nanonng-83430191f race needs two threads at once (a sequence
        // runs one step at a time), and nanonng-1505 needs malformed bytes
        // (sequences only speak valid MQTT).
        if matches!(target, Some(Fault::Nanonng83430191f | Fault::Nanonng1505)) {
            return EngineRun::default();
        }
        // Control runs check every promise; fault runs end by closing every
        // connection, as the bug reports do.
        let ending = if target.is_some() {
            Ending::Close
        } else {
            Ending::Settle
        };
        let strategy = sequence(MAX_LEN);
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let started = Instant::now();
        let mut iterations = 0;
        while started.elapsed() < budget {
            let Ok(mut tree) = strategy.new_tree(&mut runner) else {
                break;
            };
            iterations += 1;
            if run(faults, &tree.current(), ending, Mode::Counting).is_none() {
                continue;
            }
            // Shrink: simplify while it still fails, complicate back when a
            // simplification passed.
            let mut shortest = tree.current();
            for _ in 0..MAX_SHRINK_STEPS {
                let fails = run(faults, &tree.current(), ending, Mode::Counting).is_some();
                if fails {
                    shortest = tree.current();
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
            let (failure, violation) = run(faults, &shortest, ending, Mode::Full)
                .unwrap_or_else(|| ("failed only in counting mode".into(), None));
            let steps: Vec<String> = shortest.iter().map(|a| format!("{a:?}")).collect();
            return EngineRun {
                applicable: true,
                violation,
                kind: None,
                failure: Some(failure),
                iterations,
                reproduction: Some(format!("{} steps: {}", steps.len(), steps.join(", "))),
            };
        }
        EngineRun {
            applicable: true,
            iterations,
            ..EngineRun::default()
        }
    }
}
