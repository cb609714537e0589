#![cfg(feature = "loom")]
//! A retained delivery racing a replacement of the retained message
//! (`nanomq-485`): a new subscriber's TLS writer writes the retained
//! message while the publisher's reader stores a new one on the same topic.
//!
//! With the fault the delivery uses the store's message without its own
//! reference: when the replacement frees the store's copy first, the
//! writer reads freed memory; when the write completes first, the
//! replacement frees it again.
//!
//! Run one: `cargo test --features loom --test loom_retained nanomq_485`.

mod common;

use common::{
    Expect, clean, connect_bytes, detected, join, publish_bytes, spawn, subscribe_bytes, write_one,
};
use mqtls_harness::broker::{Broker, BrokerConfig};
use mqtls_harness::codec::QoS;
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

fn retained_write_vs_replace(faults: FaultSet) -> Audit {
    set_actor("reader-pub");
    let ledger = Ledger::new(Mode::Full);
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    let b = Arc::new(Broker::new(ledger.clone(), cfg));
    let publ = b.accept(0, None);
    let _ = b.on_bytes(&publ, &connect_bytes("pub"), 0);
    let _ = b.on_bytes(
        &publ,
        &publish_bytes("r", b"old", QoS::AtMostOnce, true, 0),
        0,
    );
    let sub = b.accept(0, None);
    let _ = b.on_bytes(&sub, &connect_bytes("sub"), 0);
    let _ = b.on_bytes(&sub, &subscribe_bytes(1, "r", QoS::AtMostOnce), 0);
    // CONNACK and SUBACK go out first; the retained delivery is next.
    write_one(&sub.outbox, WriteResult::Complete);
    write_one(&sub.outbox, WriteResult::Complete);

    let c = sub.clone();
    let writer = spawn("writer-sub", move || {
        write_one(&c.outbox, WriteResult::Complete);
    });
    let (c, bb) = (publ.clone(), b.clone());
    let replacer = spawn("reader-pub", move || {
        let _ = bb.on_bytes(&c, &publish_bytes("r", b"new", QoS::AtMostOnce, true, 0), 0);
    });
    join(writer);
    join(replacer);
    b.shutdown();
    ledger.audit()
}

#[test]
fn retained_write_vs_replace_clean() {
    clean("retained_write_vs_replace", retained_write_vs_replace);
}

#[test]
fn nanomq_485_retained_write_vs_replace_detected() {
    detected(
        "nanomq_485_retained_write_vs_replace",
        Fault::Nanomq485,
        Expect::kind(ViolationKind::UseAfterRelease),
        retained_write_vs_replace,
    );
}
