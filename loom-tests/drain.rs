#![cfg(feature = "loom")]
//! The send-queue drain on close (`nanomq-1329`): QoS 0 publishes wait in
//! the client's queue, each still held in its operation's slot; the TLS
//! writer and the closer race, and the caller's error handler frees what
//! the SDK left it.
//!
//! With the fault the close drain releases each queued message without
//! clearing its operation's slot, so the caller's reap releases it again.
//!
//! Run one: `cargo test --features loom --test loom_drain nanomq_1329`.

mod common;

use bytes::Bytes;
use common::{Expect, clean, detected, join, spawn, write_one};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

const QUEUED: usize = 2;

fn publishes_then_close(faults: FaultSet) -> Audit {
    set_actor("caller");
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "drain".into(),
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let ops: Vec<_> = (0..QUEUED)
        .map(|_| {
            let op = request::publish(
                &ledger,
                Version::V311,
                "t",
                Bytes::from_static(b"x"),
                QoS::AtMostOnce,
                false,
            )
            .expect("publish builds");
            client.publish_qos0(&op);
            op
        })
        .collect();

    let c = client.clone();
    let writer = spawn("writer", move || {
        write_one(&c.outbox, WriteResult::Complete);
    });
    let c = client.clone();
    let closer = spawn("closer", move || c.connection_lost(false));

    for op in &ops {
        op.wait();
        let _ = request::reap(op, "caller: publish (error handler)");
    }
    join(writer);
    join(closer);
    client.shutdown();
    ledger.audit()
}

#[test]
fn drain_on_close_clean() {
    clean("drain_on_close", publishes_then_close);
}

#[test]
fn nanomq_1329_drain_on_close_detected() {
    detected(
        "nanomq_1329_drain_on_close",
        Fault::Nanomq1329,
        Expect::freed_at(ViolationKind::DoubleRelease, "close: queue flush"),
        publishes_then_close,
    );
}
