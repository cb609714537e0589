#![cfg(feature = "loom")]
//! SUBACK vs the subscribe timeout: the reader and the timer race for the
//! same parked operation; the caller waits for it and reaps it.
//!
//! - `nanonng-83430191f`: the SUBACK path finishes the operation after
//!   dropping the pending lock, so the timeout can finish it in between
//!   (only visible concurrently).
//! - `nanonng-23d0eb290`: whichever wins releases the parked SUBSCRIBE but
//!   leaves it in the slot, and the caller's reap releases it again.
//!
//! Run one: `cargo test --features loom --test loom_suback_timeout nanonng_83430191f`.

mod common;

use common::{Expect, clean, detected, drain, join, spawn, suback_bytes};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

fn suback_vs_timeout(faults: FaultSet) -> Audit {
    set_actor("caller");
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "race".into(),
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let op = request::subscribe(&ledger, Version::V311, &[("t", QoS::AtMostOnce)])
        .expect("subscribe builds");
    let pid = client.send_request(&op, 0).expect("subscribe sent");
    // The SUBSCRIBE is on the wire before either rival runs.
    drain(&client.outbox);

    let c = client.clone();
    let reader = spawn("reader", move || {
        let _ = c.on_bytes(&suback_bytes(pid));
    });
    let c = client.clone();
    let timer = spawn("timer", move || {
        c.time_out(pid);
    });

    op.wait();
    if let Some(r) = request::reap(&op, "caller: subscribe done")
        && let Some(m) = r.result
    {
        m.release("caller: SUBACK");
    }
    join(reader);
    join(timer);
    client.shutdown();
    ledger.audit()
}

#[test]
fn suback_vs_timeout_clean() {
    clean("suback_vs_timeout", suback_vs_timeout);
}

#[test]
fn nanonng_83430191f_suback_vs_timeout_detected() {
    detected(
        "nanonng_83430191f_suback_vs_timeout",
        Fault::Nanonng83430191f,
        Expect::kind(ViolationKind::OpFinishedTwice),
        suback_vs_timeout,
    );
}

#[test]
fn nanonng_23d0eb290_suback_vs_timeout_detected() {
    detected(
        "nanonng_23d0eb290_suback_vs_timeout",
        Fault::Nanonng23d0eb290,
        Expect::kind(ViolationKind::DoubleRelease),
        suback_vs_timeout,
    );
}
