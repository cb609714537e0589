#![cfg(not(feature = "loom"))]
//! The reference broker and client over real TLS on 127.0.0.1: every
//! end-to-end scenario behaves and leaves a clean ledger, and the seed
//! fault is caught over the wire.

use mqtls_harness::e2e::{self, Tls};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::ViolationKind;

fn tls() -> Tls {
    let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default()).unwrap();
    Tls::from_pki(&pki).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_scenario_behaves_and_audits_clean() {
    let tls = tls();
    let outcomes = runtime().block_on(e2e::all(&tls, FaultSet::NONE, |o| {
        eprintln!(
            "{}: behaved {} clean {}: {}",
            o.name,
            o.behaved,
            o.audit.is_clean(),
            o.detail
        );
    }));
    for o in &outcomes {
        let violations: Vec<String> = o.audit.violations.iter().map(|v| v.diagnosis()).collect();
        assert!(
            o.passed(),
            "{}: {}\n{}",
            o.name,
            o.detail,
            violations.join("\n")
        );
    }
    assert!(outcomes.iter().map(|o| o.messages).sum::<u64>() > 500);
}

/// NanoMQ 1766 over TLS: with the fault on, a subscribe whose connection
/// drops before the SUBACK frees the SUBSCRIBE twice.
#[test]
fn seed_fault_is_caught_over_tls() {
    let tls = tls();
    let o = runtime().block_on(e2e::races::subscribe_vs_drop(
        &tls,
        FaultSet::only(Fault::Nanomq1766),
    ));
    assert!(
        o.audit.count(ViolationKind::DoubleRelease) + o.audit.count(ViolationKind::UseAfterRelease)
            > 0,
        "{}: {:?}",
        o.detail,
        o.audit.violations
    );
}
