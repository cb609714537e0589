#![cfg(all(feature = "shuttle", not(feature = "loom")))]
//! The schedule engine (shuttle over the whole pair): each historic bug of
//! the "look up under a lock, drop it, act" class found by exploring its
//! scenario, the committed failing schedules replayed exactly, and the
//! fixed protocol clean over every scenario.
//!
//! Budgets: a few thousand schedules per test in `cargo test`; the nightly
//! job sets `MQTLS_SCHEDULES` (schedules per scenario and strategy) for the
//! 100k-schedule clean run. A new finding prints its regression line.

use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::schedules::regressions::{self, finding_name};
use mqtls_harness::schedules::{Scenario, Strategy, explore, replay};

const PCT: Strategy = Strategy::Pct { depth: 3 };

/// Explores `scenario` with `fault` on (PCT, fixed seed) and expects a
/// finding whose text contains `shows`.
fn finds(fault: Fault, scenario: Scenario, shows: &str) {
    let e = explore(scenario, FaultSet::only(fault), PCT, 1, 20_000, None);
    let f = e.finding.unwrap_or_else(|| {
        panic!(
            "{fault}: no schedule of {scenario} in {} showed it",
            e.schedules
        )
    });
    eprintln!(
        "{fault}: found in {} schedules ({:.2} s): {}\nregression line: {}",
        e.schedules,
        e.seconds,
        f.summary(),
        regressions::line(fault, &f)
    );
    assert!(f.summary().contains(shows), "{fault}: {}", f.summary());
}

#[test]
fn nanomq_1766_subscribe_freed_by_write_and_close_found() {
    finds(
        Fault::Nanomq1766,
        Scenario::SubscribeClose,
        "double release",
    );
}

#[test]
fn nanonng_83430191f_suback_vs_timeout_found() {
    finds(
        Fault::Nanonng83430191f,
        Scenario::SubscribeClose,
        "finished twice",
    );
}

#[test]
fn nanomq_992557ab_delivery_after_unsuback_found() {
    finds(
        Fault::Nanomq992557ab,
        Scenario::FanoutUnsubscribe,
        "after the UNSUBACK",
    );
}

#[test]
fn nanonng_f135bbc6b_resend_after_timeout_found() {
    finds(
        Fault::NanonngF135bbc6b,
        Scenario::AckClose,
        "use after release",
    );
}

/// Every committed failing schedule still fails the same way. A schedule
/// is a list of thread choices: a change to the kernels' locking (anyone's)
/// can make the program stop following it. Then the fault must still be
/// found by exploring its scenario, and the line to commit instead is
/// printed; a schedule that is followed must fail as recorded.
#[test]
fn committed_schedules_replay() {
    let text = include_str!("schedules.regressions");
    let all = regressions::parse(text).unwrap_or_else(|e| panic!("schedules.regressions: {e}"));
    assert!(!all.is_empty(), "schedules.regressions holds no schedule");
    for r in all {
        match replay(r.scenario, FaultSet::only(r.fault), &r.schedule) {
            Ok(found) => {
                let found = found.unwrap_or_else(|| {
                    panic!(
                        "line {}: {} no longer fails on its schedule",
                        r.line, r.fault
                    )
                });
                assert_eq!(
                    finding_name(&found),
                    r.finding,
                    "line {}: {}",
                    r.line,
                    found.summary()
                );
            }
            Err(why) => {
                eprintln!("line {}: {why}; exploring {} again", r.line, r.scenario);
                let e = explore(r.scenario, FaultSet::only(r.fault), PCT, 1, 20_000, None);
                let f = e.finding.unwrap_or_else(|| {
                    panic!(
                        "line {}: {} no longer found in {}",
                        r.line, r.fault, r.scenario
                    )
                });
                assert_eq!(
                    finding_name(&f),
                    r.finding,
                    "line {}: {}",
                    r.line,
                    f.summary()
                );
                eprintln!(
                    "line {} to commit instead: {}",
                    r.line,
                    regressions::line(r.fault, &f)
                );
            }
        }
    }
}

/// The fixed protocol over every scenario, random and PCT schedules.
#[test]
fn fixed_protocol_clean_in_every_scenario() {
    let n: usize = std::env::var("MQTLS_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut total = 0;
    for s in Scenario::ALL {
        for (seed, strategy) in [Strategy::Random, PCT].into_iter().enumerate() {
            let e = explore(s, FaultSet::NONE, strategy, seed as u64 + 7, n, None);
            total += e.schedules;
            eprintln!(
                "{s} {strategy}: {} schedules clean in {:.1} s",
                e.schedules, e.seconds
            );
            if let Some(f) = e.finding {
                panic!(
                    "fixed protocol, {s}, {strategy}: {}\nschedule: {}",
                    f.summary(),
                    f.schedule
                );
            }
        }
    }
    eprintln!("{total} schedules, all clean");
}

/// A schedule the program no longer follows is reported as such (no panic,
/// and the explorer still works afterwards).
#[test]
fn a_stale_schedule_is_reported_not_replayed() {
    let stale = replay(Scenario::SubscribeClose, FaultSet::NONE, "1:7*40");
    assert!(
        stale
            .as_ref()
            .is_err_and(|e| e.contains("no longer follows")),
        "{stale:?}"
    );
    assert!(replay(Scenario::SubscribeClose, FaultSet::NONE, "not a schedule").is_err());
    let e = explore(Scenario::SubscribeClose, FaultSet::NONE, PCT, 3, 5, None);
    assert_eq!(e.schedules, 5);
    assert!(e.finding.is_none());
}
