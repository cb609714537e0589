#![cfg(feature = "loom")]
//! A shared group's hand-over racing the departing member's PUBACK. Member
//! `a` of `$share/g/t` holds an unacknowledged QoS 1 delivery; its
//! connection (clean session) drops while its PUBACK for that delivery is
//! being read. Whichever runs first, the message reaches the group once:
//! acknowledged by `a`, or handed to `b` (never both, never twice), and
//! every reference is released once. `shared-handover` (the hand-over gives
//! `b` a copy of `a`'s handle, NanoMQ 531's mistake at this place) makes
//! `b`'s write release what `a`'s ended session already released.
//!
//! Run one: `cargo test --features loom --test loom_shared_handover`.

mod common;

use common::{
    Checked, Expect, ack_bytes, broker, clean_promises, connect_bytes, detected, drain,
    drain_packets, join, publish_bytes, publishes, spawn, subscribe_bytes,
};
use mqtls_harness::broker::{Broker, Conn, Flow};
use mqtls_harness::codec::{Packet, QoS};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{ViolationKind, set_actor};
use mqtls_harness::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn member(b: &Broker, id: &str) -> Arc<Conn> {
    let c = b.accept(0, None);
    let _ = b.on_bytes(&c, &connect_bytes(id), 0);
    let _ = b.on_bytes(&c, &subscribe_bytes(1, "$share/g/t", QoS::AtLeastOnce), 0);
    drain(&c.outbox);
    c
}

fn handover_vs_puback(faults: FaultSet) -> Checked {
    set_actor("main");
    let (ledger, b) = broker(faults);
    let a = member(&b, "a");
    let m = member(&b, "b");
    let p = b.accept(0, None);
    let _ = b.on_bytes(&p, &connect_bytes("p"), 0);
    let _ = b.on_bytes(&p, &publish_bytes("t", b"x", QoS::AtLeastOnce, false, 1), 0);
    drain(&p.outbox);
    // The group's first member gets the first message: written, awaiting
    // its PUBACK.
    let mut broken = Vec::new();
    if publishes(&drain_packets(&a.outbox)) != 1 {
        broken.push("setup: the message did not go to member a".into());
    }

    // Test bookkeeping, not kernel state: loom need not schedule it.
    let acked = std::sync::Arc::new(AtomicBool::new(false));
    let (bb, aa, seen) = (b.clone(), a.clone(), acked.clone());
    let reader = spawn("member a reader", move || {
        let f = bb.on_bytes(&aa, &ack_bytes(Packet::Puback, 1), 0);
        seen.store(matches!(f, Flow::Continue), Ordering::Relaxed);
    });
    let (bb, aa) = (b.clone(), a.clone());
    let closer = spawn("closer a", move || bb.connection_lost(&aa, 0));
    join(reader);
    join(closer);

    let got = publishes(&drain_packets(&m.outbox));
    let want = if acked.load(Ordering::Relaxed) { 0 } else { 1 };
    if got != want {
        broken.push(format!(
            "member b got the message {got} times, not {want} (a's PUBACK read: {})",
            want == 0
        ));
    }
    b.shutdown();
    Checked {
        audit: ledger.audit(),
        broken,
    }
}

#[test]
fn handover_vs_puback_clean() {
    clean_promises("handover_vs_puback", handover_vs_puback);
}

#[test]
fn shared_handover_vs_puback_detected() {
    detected(
        "shared_handover_vs_puback",
        Fault::SharedHandover,
        Expect::kind(ViolationKind::DoubleRelease),
        |f| handover_vs_puback(f).audit,
    );
}
