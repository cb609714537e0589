#![cfg(not(feature = "loom"))]
//! The run-time engines of the detection matrix find their faults and stay
//! quiet with every fault off.

use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::ViolationKind;
use mqtls_harness::zoo::fuzz_engine::FuzzEngine;
use mqtls_harness::zoo::matrix::{Cell, DetectionEngine, Verdict};
use mqtls_harness::zoo::schedule_engine::ScheduleEngine;
use mqtls_harness::zoo::sequences::SequencesEngine;
use mqtls_harness::zoo::stress::StressEngine;
use std::time::{Duration, Instant};

fn cell(e: &dyn DetectionEngine, fault: Option<Fault>, budget: Duration) -> Cell {
    let faults = fault.map_or(FaultSet::NONE, FaultSet::only);
    let started = Instant::now();
    let run = e.run(faults, fault, budget);
    Cell::judge(fault, e.engine(), run, started.elapsed())
}

/// NanoNNG 83430191f (SUBACK finishing the op after dropping the lock while
/// the timeout finishes it too) needs two threads at once: real threads
/// with a swept start offset hit it, and never without the fault. Whichever
/// of the two finishes first, the other finishes it again, so the first
/// violation is `OpFinishedTwice` in every order (the SUBACK is attached
/// under the lock, as in the C code, so nothing touches the op in between).
#[test]
fn stress_engine_finds_nanonng_83430191f_and_nothing_without_it() {
    let found = cell(
        &StressEngine,
        Some(Fault::Nanonng83430191f),
        Duration::from_secs(30),
    );
    assert_eq!(found.verdict, Verdict::Detected, "{}", found.label());
    assert_eq!(found.kind, Some(ViolationKind::OpFinishedTwice));
    let control = cell(&StressEngine, None, Duration::from_secs(1));
    assert_eq!(control.verdict, Verdict::Clean, "{}", control.label());
}

/// The schedule engine's column finds the lock-window faults no sequential
/// engine reaches (NanoNNG 83430191f, NanoMQ 992557ab, NanoNNG f135bbc6b),
/// each at the first finding of its seeded PCT schedules (the budget is a
/// cap for slow machines, not the expected time), and stays clean with
/// every fault off.
#[cfg(feature = "shuttle")]
#[test]
fn schedule_engine_finds_the_lock_window_faults_and_nothing_without_them() {
    for (f, kind) in [
        (
            Fault::Nanonng83430191f,
            Some(ViolationKind::OpFinishedTwice),
        ),
        (Fault::Nanomq992557ab, None),
        (
            Fault::NanonngF135bbc6b,
            Some(ViolationKind::UseAfterRelease),
        ),
    ] {
        let found = cell(&ScheduleEngine, Some(f), Duration::from_secs(120));
        assert_eq!(found.verdict, Verdict::Detected, "{f}: {}", found.label());
        assert_eq!(found.kind, kind, "{f}: {}", found.label());
    }
    let control = cell(&ScheduleEngine, None, Duration::from_secs(1));
    assert_eq!(control.verdict, Verdict::Clean, "{}", control.label());
    assert!(control.iterations > 0, "{}", control.label());
}

/// The fuzz engine's mutated sessions reach the broker-side faults the
/// cargo-fuzz campaigns are measured on.
#[test]
fn fuzz_engine_finds_the_broker_faults() {
    for f in [
        Fault::Nanomq485,
        Fault::FanoutMissingRetain,
        Fault::Nanomq531,
        Fault::Nanonng1505,
    ] {
        let c = cell(&FuzzEngine, Some(f), Duration::from_secs(30));
        assert_eq!(c.verdict, Verdict::Detected, "{f}: {}", c.label());
    }
    let control = cell(&FuzzEngine, None, Duration::from_secs(1));
    assert_eq!(control.verdict, Verdict::Clean, "{}", control.label());
}

/// The sequences engine shrinks the seed to the bug report's few steps.
#[test]
fn sequences_engine_shrinks_the_seed() {
    let c = cell(
        &SequencesEngine,
        Some(Fault::Nanomq1766),
        Duration::from_secs(30),
    );
    assert_eq!(c.verdict, Verdict::Detected, "{}", c.label());
    let repro = c.reproduction.unwrap_or_default();
    assert!(repro.contains("Subscribe"), "{repro}");
    assert!(
        repro.starts_with("2 steps") || repro.starts_with("3 steps"),
        "{repro}"
    );
}
