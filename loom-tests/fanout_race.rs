#![cfg(feature = "loom")]
//! Fan-out racing the subscriber's side of the broker: an UNSUBSCRIBE, a
//! session takeover, and a will published at takeover while the old
//! connection also closes. These races are memory-safe in Rust (the
//! subscriber list walked is a copy) and show as wrong behaviour; in C the
//! same windows are use-after-frees. The models check the ledger and the
//! promise each race can break:
//!
//! - fan-out vs UNSUBSCRIBE: no PUBLISH reaches the subscriber after its
//!   UNSUBACK [MQTT-3.10.4-2]. `nanomq-992557ab` (NanoMQ's pub_handler
//!   walking the `dbtree_find_clients` snapshot after dropping the tree
//!   lock) breaks it;
//! - fan-out vs takeover: a QoS 1 message acknowledged to its publisher
//!   reaches the persistent session at least once, on the old connection or
//!   the new one;
//! - will at takeover: the will is published exactly once, whichever of the
//!   takeover and the old connection's close runs first.
//!
//! Run one: `cargo test --features loom --test loom_fanout_race nanomq_992557ab`.

mod common;

use common::{
    Checked, broker, clean_promises, connect_bytes, detected_broken, drain, drain_packets, join,
    persistent_connect_bytes, publish_bytes, publishes, spawn, subscribe_bytes, unsubscribe_bytes,
};
use mqtls_harness::broker::{Broker, Conn};
use mqtls_harness::codec::{Packet, QoS};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::set_actor;
use mqtls_harness::sync::Arc;

fn connected(b: &Broker, connect: &[u8], filter: Option<(&str, QoS)>) -> Arc<Conn> {
    let c = b.accept(0, None);
    let _ = b.on_bytes(&c, connect, 0);
    if let Some((f, q)) = filter {
        let _ = b.on_bytes(&c, &subscribe_bytes(1, f, q), 0);
    }
    drain(&c.outbox);
    c
}

fn fanout_vs_unsubscribe(faults: FaultSet) -> Checked {
    set_actor("main");
    let (ledger, b) = broker(faults);
    let sub = connected(&b, &connect_bytes("sub"), Some(("t", QoS::AtMostOnce)));
    let publ = connected(&b, &connect_bytes("pub"), None);

    let (bb, p) = (b.clone(), publ.clone());
    let publisher = spawn("publisher reader", move || {
        let _ = bb.on_bytes(&p, &publish_bytes("t", b"x", QoS::AtMostOnce, false, 0), 0);
    });
    let (bb, s) = (b.clone(), sub.clone());
    let unsubscriber = spawn("subscriber reader", move || {
        let _ = bb.on_bytes(&s, &unsubscribe_bytes(2, "t"), 0);
    });
    join(publisher);
    join(unsubscriber);

    let seen = drain_packets(&sub.outbox);
    let mut broken = Vec::new();
    if let Some(i) = seen.iter().position(|p| matches!(p, Packet::Unsuback(_)))
        && publishes(&seen[i..]) > 0
    {
        broken.push("a PUBLISH reached the subscriber after its UNSUBACK".into());
    }
    b.shutdown();
    Checked {
        audit: ledger.audit(),
        broken,
    }
}

fn fanout_vs_takeover(faults: FaultSet) -> Checked {
    set_actor("main");
    let (ledger, b) = broker(faults);
    let old = connected(
        &b,
        &persistent_connect_bytes("sub", None),
        Some(("t", QoS::AtLeastOnce)),
    );
    let publ = connected(&b, &connect_bytes("pub"), None);
    let new = b.accept(0, None);

    let (bb, p) = (b.clone(), publ.clone());
    let publisher = spawn("publisher reader", move || {
        let _ = bb.on_bytes(&p, &publish_bytes("t", b"x", QoS::AtLeastOnce, false, 1), 0);
    });
    let (bb, n) = (b.clone(), new.clone());
    let takeover = spawn("takeover reader", move || {
        let _ = bb.on_bytes(&n, &persistent_connect_bytes("sub", None), 0);
    });
    join(publisher);
    join(takeover);

    let acked = drain_packets(&publ.outbox)
        .iter()
        .any(|p| matches!(p, Packet::Puback(_)));
    let got = publishes(&drain_packets(&old.outbox)) + publishes(&drain_packets(&new.outbox));
    let mut broken = Vec::new();
    if acked && got == 0 {
        broken
            .push("a QoS 1 message acknowledged to its publisher never reached the session".into());
    }
    for c in [&old, &new, &publ] {
        b.connection_lost(c, 0);
    }
    b.shutdown();
    Checked {
        audit: ledger.audit(),
        broken,
    }
}

fn will_at_takeover(faults: FaultSet) -> Checked {
    set_actor("main");
    let (ledger, b) = broker(faults);
    let watcher = connected(
        &b,
        &connect_bytes("watcher"),
        Some(("w/#", QoS::AtMostOnce)),
    );
    let old = connected(
        &b,
        &persistent_connect_bytes("sub", Some(("w/sub", b"gone"))),
        None,
    );
    let new = b.accept(0, None);

    let (bb, n) = (b.clone(), new.clone());
    let takeover = spawn("takeover reader", move || {
        let _ = bb.on_bytes(&n, &persistent_connect_bytes("sub", None), 0);
    });
    let (bb, o) = (b.clone(), old.clone());
    let closer = spawn("closer", move || bb.connection_lost(&o, 0));
    join(takeover);
    join(closer);

    let wills = publishes(&drain_packets(&watcher.outbox));
    let mut broken = Vec::new();
    if wills != 1 {
        broken.push(format!("the will was published {wills} times, not once"));
    }
    drain(&new.outbox);
    b.shutdown();
    Checked {
        audit: ledger.audit(),
        broken,
    }
}

#[test]
fn fanout_vs_unsubscribe_clean() {
    clean_promises("fanout_vs_unsubscribe", fanout_vs_unsubscribe);
}

#[test]
fn nanomq_992557ab_fanout_vs_unsubscribe_detected() {
    detected_broken(
        "nanomq_992557ab_fanout_vs_unsubscribe",
        Fault::Nanomq992557ab,
        "after its UNSUBACK",
        fanout_vs_unsubscribe,
    );
}

#[test]
fn fanout_vs_takeover_clean() {
    clean_promises("fanout_vs_takeover", fanout_vs_takeover);
}

#[test]
fn will_at_takeover_clean() {
    clean_promises("will_at_takeover", will_at_takeover);
}
