#![cfg(feature = "loom")]
//! Cancel vs the acknowledgement: the caller cancels its subscribe while
//! the reader delivers the SUBACK and the connection closes.
//!
//! - `nng-355`: cancel finishes the operation but leaves it armed in the
//!   pending table; the late SUBACK touches and finishes it again.
//! - `nanonng-1578`: cancel detaches the operation and never finishes it;
//!   neither the SUBACK nor the close can reach it any more, so its waiter
//!   would hang (the caller here does not wait: it reaps what finished).
//!
//! Run one: `cargo test --features loom --test loom_cancel nng_355`.

mod common;

use common::{Expect, clean, detected, drain, join, spawn, suback_bytes};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

fn cancel_vs_ack(faults: FaultSet, close: bool) -> Audit {
    set_actor("caller");
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "cancel".into(),
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let op = request::subscribe(&ledger, Version::V311, &[("t", QoS::AtMostOnce)])
        .expect("subscribe builds");
    let pid = client.send_request(&op, 0).expect("subscribe sent");
    drain(&client.outbox);

    let c = client.clone();
    let reader = spawn("reader", move || {
        let _ = c.on_bytes(&suback_bytes(pid));
    });
    let closer = close.then(|| {
        let c = client.clone();
        spawn("closer", move || c.connection_lost(false))
    });

    client.cancel(&op);
    join(reader);
    if let Some(h) = closer {
        join(h);
    }
    // A waiter would block here; the model reaps whatever finished and
    // leaves the rest to the audit.
    if let Some(r) = request::reap(&op, "caller: subscribe done")
        && let Some(m) = r.result
    {
        m.release("caller: SUBACK");
    }
    client.shutdown();
    ledger.audit()
}

#[test]
fn cancel_vs_ack_clean() {
    clean("cancel_vs_ack", |f| cancel_vs_ack(f, false));
}

#[test]
fn nng_355_cancel_vs_ack_detected() {
    detected(
        "nng_355_cancel_vs_ack",
        Fault::Nng355,
        Expect::kind(ViolationKind::OpTouchedAfterFinish),
        |f| cancel_vs_ack(f, false),
    );
}

#[test]
fn cancel_vs_ack_and_close_clean() {
    clean("cancel_vs_ack_and_close", |f| cancel_vs_ack(f, true));
}

#[test]
fn nanonng_1578_cancel_vs_ack_and_close_detected() {
    detected(
        "nanonng_1578_cancel_vs_ack_and_close",
        Fault::Nanonng1578,
        Expect::kind(ViolationKind::OpNeverFinished),
        |f| cancel_vs_ack(f, true),
    );
}
