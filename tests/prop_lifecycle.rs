#![cfg(not(feature = "loom"))]
//! Lifecycle sequences (connect, subscribe, publish, writes that complete
//! or fail, drops, timeouts, cancels, reconnects, takeovers, wills, broker
//! restarts) against a reference model of what MQTT promises, over the
//! in-memory transport. After every step the ledger must be clean; at
//! quiescence every promise is kept, no operation is left open and the
//! audit after shutdown finds no leak.
//!
//! Case counts: `PROPTEST_CASES` overrides the default of each test, e.g.
//! a nightly run at ten times the default:
//! `PROPTEST_CASES=2560 cargo test --release --test prop_lifecycle`.
//! Failing sequences of the model test are saved in
//! `tests/prop_lifecycle.proptest-regressions` and replayed first.
//!
//! With a historic fault switched on, a deterministic runner must find a
//! failing sequence and shrink it to the bug report's few steps.

use mqtls_harness::broker::BrokerConfig;
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Ledger, Mode};
use mqtls_harness::lifecycle::action::{Action, Dir, sequence};
use mqtls_harness::lifecycle::driver::SimDriver;
use mqtls_harness::lifecycle::run::{Ending, run_sequence};
use mqtls_harness::lifecycle::search::{MAX_LEN, describe, find_failing_sequence};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases of the model test with no fault (fast enough for `cargo test` on
/// two cores in debug builds).
const DEFAULT_CASES: u32 = 256;

/// Cases the detection runner tries before giving up on a fault.
const DETECTION_CASES: u32 = 2_000;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_sim(faults: FaultSet, actions: &[Action], ending: Ending) -> Result<(), String> {
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    // Counting mode keeps the many cases cheap; a failure is replayed in
    // full mode to explain it.
    let driver = SimDriver::new(Ledger::new(Mode::Counting), cfg);
    run_sequence(driver, faults, actions, ending)
}

fn explain(faults: FaultSet, actions: &[Action], ending: Ending) -> String {
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    let driver = SimDriver::new(Ledger::new(Mode::Full), cfg);
    match run_sequence(driver, faults, actions, ending) {
        Ok(()) => "passes when replayed with full history".into(),
        Err(e) => e,
    }
}

proptest! {
    #![proptest_config(Config {
        cases: cases(DEFAULT_CASES),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    })]

    /// The fixed protocol keeps every promise on every sequence.
    #[test]
    fn lifecycle_sequences_match_the_model(actions in sequence(MAX_LEN)) {
        if let Err(e) = run_sim(FaultSet::NONE, &actions, Ending::Settle) {
            let full = explain(FaultSet::NONE, &actions, Ending::Settle);
            prop_assert!(false, "{e}\n\nwith history:\n{full}");
        }
    }
}

/// Finds `fault`, prints its shrunk sequence, and checks it is short and
/// fails for an ownership reason.
fn assert_found(fault: Fault, max_steps: usize) -> (Vec<Action>, String) {
    let faults = FaultSet::only(fault);
    let found = find_failing_sequence(DETECTION_CASES, 10_000, |actions| {
        run_sim(faults, actions, Ending::Close)
    });
    let Some(actions) = found.unwrap_or_else(|why| panic!("{fault}: runner aborted: {why}")) else {
        panic!("{fault}: no failing sequence in {DETECTION_CASES} cases");
    };
    let why = explain(faults, &actions, Ending::Close);
    eprintln!("{}", describe(fault.name(), &actions, &why));
    assert!(
        actions.len() <= max_steps,
        "{fault}: shrunk sequence has {} steps, expected at most {max_steps}: {actions:#?}",
        actions.len()
    );
    (actions, why)
}

#[test]
fn nanomq_1766_is_found_and_shrunk() {
    let (actions, why) = assert_found(Fault::Nanomq1766, 6);
    // The bug report: subscribe; the wire's release (write complete, write
    // error or, shortest, the queue flush on close) frees the only
    // reference; closing the connection frees the parked op's copy again.
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Subscribe { .. })),
        "the seed needs a SUBSCRIBE: {actions:?}"
    );
    assert!(
        why.contains("client::subscribe park") && why.contains("double release"),
        "{why}"
    );
}

#[test]
fn nanonng_23d0eb290_is_found_and_shrunk() {
    let _ = assert_found(Fault::Nanonng23d0eb290, 6);
}

#[test]
fn nanomq_531_is_found_and_shrunk() {
    let _ = assert_found(Fault::Nanomq531, 8);
}

#[test]
fn nanomq_1329_is_found_and_shrunk() {
    let (actions, _) = assert_found(Fault::Nanomq1329, 6);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Publish { qos: 0, .. })),
        "1329 needs a queued QoS 0 publish: {actions:?}"
    );
}

#[test]
fn nng_355_is_found_and_shrunk() {
    let (actions, _) = assert_found(Fault::Nng355, 6);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Cancel { .. })),
        "{actions:?}"
    );
}

#[test]
fn nanonng_1578_is_found_and_shrunk() {
    let (actions, _) = assert_found(Fault::Nanonng1578, 6);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Cancel { .. })),
        "{actions:?}"
    );
}

/// A QoS 2 delivery whose PUBREC never left the subscriber is sent again
/// after a reconnect of its persistent session: the client must not hand
/// it to the application twice.
#[test]
fn qos2_is_delivered_once_across_a_reconnect() {
    use mqtls_harness::codec::Version;
    use mqtls_harness::lifecycle::action::Session;
    let actions = [
        Action::Connect {
            client: 0,
            version: Version::V5,
            session: Session::Persistent,
            will: false,
            will_delay: false,
        },
        Action::Subscribe {
            client: 0,
            filter: "t/#",
            qos: 2,
        },
        Action::Settle,
        Action::Publish {
            client: 0,
            topic: "t/a",
            qos: 2,
            retain: false,
        },
        Action::WriteCompletes {
            client: 0,
            dir: Dir::Up,
        },
        Action::WriteCompletes {
            client: 0,
            dir: Dir::Down,
        },
        Action::WriteCompletes {
            client: 0,
            dir: Dir::Down,
        },
        Action::ConnectionDrops { client: 0 },
        Action::Reconnect { client: 0 },
        Action::Settle,
    ];
    if let Err(e) = run_sim(FaultSet::NONE, &actions, Ending::Settle) {
        panic!("{e}");
    }
}

/// A publisher's QoS 2 PUBLISH reached the broker but the PUBREC did not
/// reach the publisher: the resend after reconnect (persistent session)
/// must not be routed a second time.
#[test]
fn qos2_publish_resent_after_reconnect_is_routed_once() {
    use mqtls_harness::codec::Version;
    use mqtls_harness::lifecycle::action::Session;
    let actions = [
        Action::Connect {
            client: 1,
            version: Version::V5,
            session: Session::Persistent,
            will: false,
            will_delay: false,
        },
        Action::Subscribe {
            client: 1,
            filter: "t/#",
            qos: 2,
        },
        Action::Connect {
            client: 0,
            version: Version::V311,
            session: Session::Persistent,
            will: false,
            will_delay: false,
        },
        Action::Settle,
        Action::Publish {
            client: 0,
            topic: "t/a",
            qos: 2,
            retain: false,
        },
        Action::WriteCompletes {
            client: 0,
            dir: Dir::Up,
        },
        Action::ConnectionDrops { client: 0 },
        Action::Reconnect { client: 0 },
        Action::Settle,
    ];
    if let Err(e) = run_sim(FaultSet::NONE, &actions, Ending::Settle) {
        panic!("{e}");
    }
}
