#![cfg(not(feature = "loom"))]
//! The lifecycle sequences of `prop_lifecycle.rs`, with every connection a
//! real TLS connection over 127.0.0.1: the bytes of each write go through
//! the shell's write path and rustls on both ends, and the peer kernel
//! reads them as the shell's readers do. Slower (a TLS handshake per
//! connection), so fewer cases.
//!
//! Case counts: `PROPTEST_CASES` overrides the default, e.g. ten times it:
//! `PROPTEST_CASES=240 cargo test --test prop_lifecycle_tls`.
//! Failing sequences are saved in
//! `tests/prop_lifecycle_tls.proptest-regressions` and replayed first.

use mqtls_harness::broker::BrokerConfig;
use mqtls_harness::codec::Version;
use mqtls_harness::e2e::Tls;
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Ledger, Mode};
use mqtls_harness::lifecycle::action::{Action, Dir, Session, sequence};
use mqtls_harness::lifecycle::run::{Ending, run_sequence};
use mqtls_harness::lifecycle::search::{MAX_LEN, describe, find_failing_sequence};
use mqtls_harness::lifecycle::tls_driver::{TlsDriver, TransportLog};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::sync::OnceLock;

/// Cases of the model test (each opens a few TLS connections).
const DEFAULT_CASES: u32 = 24;

/// Cases the detection runner tries before giving up.
const DETECTION_CASES: u32 = 200;

/// Shrinking steps of the detection runner: each replays a sequence over
/// TLS, so fewer than in memory.
const DETECTION_SHRINK_ITERS: u32 = 2_000;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One PKI for the whole test binary: key generation is the slow part.
fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default()).unwrap();
        Tls::from_pki(&pki).unwrap()
    })
}

/// Runs `actions` over TLS; a transport failure fails the run too (the
/// link it dropped was not one the sequence asked for). Returns the
/// transport log for inspection.
fn run_tls_logged(
    faults: FaultSet,
    actions: &[Action],
    ending: Ending,
    mode: Mode,
) -> (Result<(), String>, TransportLog) {
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    let driver = TlsDriver::new(Ledger::new(mode), cfg, tls()).unwrap();
    let log = driver.transport_log();
    let result = run_sequence(driver, faults, actions, ending);
    let failures = log.failures();
    let result = match (result, failures.is_empty()) {
        (r, true) => r,
        (r, false) => Err(format!(
            "loopback TLS transport failed: {}\n(run: {r:?})",
            failures.join("; ")
        )),
    };
    (result, log)
}

fn run_tls(faults: FaultSet, actions: &[Action], ending: Ending) -> Result<(), String> {
    // Counting mode keeps the cases cheap; a failure is replayed in full
    // mode to explain it.
    run_tls_logged(faults, actions, ending, Mode::Counting).0
}

fn explain(faults: FaultSet, actions: &[Action], ending: Ending) -> String {
    match run_tls_logged(faults, actions, ending, Mode::Full).0 {
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

    /// The fixed protocol keeps every promise on every sequence over TLS.
    #[test]
    fn lifecycle_sequences_over_tls_match_the_model(actions in sequence(MAX_LEN)) {
        if let Err(e) = run_tls(FaultSet::NONE, &actions, Ending::Settle) {
            let full = explain(FaultSet::NONE, &actions, Ending::Settle);
            prop_assert!(false, "{e}\n\nwith history:\n{full}");
        }
    }
}

/// A fixed sequence that reconnects, resends and takes writes one at a
/// time: it passes over TLS, and its bytes really went through TLS
/// connections (one per connect).
#[test]
fn a_fixed_sequence_runs_over_tls_connections() {
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
        Action::Connect {
            client: 1,
            version: Version::V311,
            session: Session::Clean,
            will: true,
            will_delay: false,
        },
        Action::Settle,
        Action::Publish {
            client: 1,
            topic: "t/a",
            qos: 2,
            retain: true,
        },
        Action::WriteCompletes {
            client: 1,
            dir: Dir::Up,
        },
        Action::WriteCompletes {
            client: 0,
            dir: Dir::Down,
        },
        Action::ConnectionDrops { client: 0 },
        Action::Reconnect { client: 0 },
        Action::ConnectionDrops { client: 1 },
        Action::Settle,
    ];
    let (result, log) = run_tls_logged(FaultSet::NONE, &actions, Ending::Settle, Mode::Full);
    if let Err(e) = result {
        panic!("{e}");
    }
    // Three connects in the sequence; none is the quiescence reconnect
    // (client 0 is back already).
    assert_eq!(log.connections(), 3, "TLS connections opened");
    assert!(log.bytes() > 100, "{} bytes carried", log.bytes());
}

/// Runs the model test with `fault` on over TLS from a fixed seed and
/// returns the shrunk failing sequence and its failure, printed.
fn find_over_tls(fault: Fault, max_steps: usize) -> (Vec<Action>, String) {
    let faults = FaultSet::only(fault);
    let found = find_failing_sequence(DETECTION_CASES, DETECTION_SHRINK_ITERS, |actions| {
        run_tls(faults, actions, Ending::Close)
    });
    let Some(actions) = found.unwrap_or_else(|why| panic!("{fault}: runner aborted: {why}")) else {
        panic!("{fault}: no failing sequence in {DETECTION_CASES} cases over TLS");
    };
    let why = explain(faults, &actions, Ending::Close);
    eprintln!("{}", describe(&format!("{fault} over TLS"), &actions, &why));
    assert!(
        actions.len() <= max_steps,
        "{fault}: shrunk sequence has {} steps, expected at most {max_steps}: {actions:#?}",
        actions.len()
    );
    assert!(!why.contains("transport failed"), "{why}");
    (actions, why)
}

/// The seed (NanoMQ 1766) is found over TLS from a fixed seed and shrunk
/// to the bug report's few steps.
#[test]
fn nanomq_1766_is_found_over_tls() {
    let (actions, why) = find_over_tls(Fault::Nanomq1766, 6);
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

/// NanoMQ 531 (the broker parks a QoS 1 delivery without its own
/// reference) needs the delivery and its PUBACK to cross the connection:
/// found over TLS, its shortest sequence moves bytes both ways.
#[test]
fn nanomq_531_is_found_over_tls_with_bytes_on_the_wire() {
    let (actions, why) = find_over_tls(Fault::Nanomq531, 8);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Settle | Action::WriteCompletes { .. })),
        "531 needs writes to complete: {actions:?}"
    );
    assert!(why.contains("broker: park delivery"), "{why}");
}
