#![cfg(feature = "loom")]
//! Close during a write in flight, on the broker: the connection's TLS
//! writer and the closer (`Broker::connection_lost`) race over the
//! connection's outbox and session.
//!
//! - `nanonng-230`: the send callback releases the written message but
//!   leaves it on the transport's write slot; teardown releases it again.
//! - `nanomq-531`: a QoS 1 delivery is parked for its PUBACK without its own
//!   reference; the write completion frees it and the session's end frees
//!   it again.
//!
//! Run one: `cargo test --features loom --test loom_write_close nanomq_531`.

mod common;

use common::{
    Expect, broker, clean, connect_bytes, detected, drain, join, publish_bytes, spawn,
    subscribe_bytes, write_one,
};
use mqtls_harness::codec::QoS;
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, ViolationKind, set_actor};

/// The CONNACK's write races the connection's teardown.
fn connack_write_vs_close(faults: FaultSet) -> Audit {
    set_actor("reader");
    let (ledger, b) = broker(faults);
    let conn = b.accept(0, None);
    let _ = b.on_bytes(&conn, &connect_bytes("c"), 0);

    let c = conn.clone();
    let writer = spawn("writer", move || {
        write_one(&c.outbox, WriteResult::Complete);
    });
    let (c, bb) = (conn.clone(), b.clone());
    let closer = spawn("closer", move || bb.connection_lost(&c, 0));
    join(writer);
    join(closer);
    b.shutdown();
    ledger.audit()
}

/// A QoS 1 delivery's write races the subscriber's teardown (its clean
/// session ends with the connection).
fn delivery_write_vs_close(faults: FaultSet) -> Audit {
    set_actor("reader");
    let (ledger, b) = broker(faults);
    let sub = b.accept(0, None);
    let _ = b.on_bytes(&sub, &connect_bytes("sub"), 0);
    let _ = b.on_bytes(&sub, &subscribe_bytes(1, "t", QoS::AtLeastOnce), 0);
    drain(&sub.outbox);
    let publ = b.accept(0, None);
    let _ = b.on_bytes(&publ, &connect_bytes("pub"), 0);
    let _ = b.on_bytes(
        &publ,
        &publish_bytes("t", b"x", QoS::AtLeastOnce, false, 1),
        0,
    );

    let c = sub.clone();
    let writer = spawn("writer", move || {
        write_one(&c.outbox, WriteResult::Complete);
    });
    let (c, bb) = (sub.clone(), b.clone());
    let closer = spawn("closer", move || bb.connection_lost(&c, 0));
    join(writer);
    join(closer);
    b.connection_lost(&publ, 0);
    b.shutdown();
    ledger.audit()
}

#[test]
fn connack_write_vs_close_clean() {
    clean("connack_write_vs_close", connack_write_vs_close);
}

#[test]
fn nanonng_230_write_vs_close_detected() {
    detected(
        "nanonng_230_write_vs_close",
        Fault::Nanonng230,
        Expect::freed_at(ViolationKind::DoubleRelease, "tls::write_done"),
        connack_write_vs_close,
    );
}

#[test]
fn delivery_write_vs_close_clean() {
    clean("delivery_write_vs_close", delivery_write_vs_close);
}

#[test]
fn nanomq_531_write_vs_close_detected() {
    detected(
        "nanomq_531_write_vs_close",
        Fault::Nanomq531,
        Expect::freed_at(ViolationKind::DoubleRelease, "tls::write_done"),
        delivery_write_vs_close,
    );
}
