#![cfg(feature = "loom")]
//! Fan-out releases running concurrently (`fanout-missing-retain`): one
//! PUBLISH routed to three subscribers; two TLS writers write and release
//! their deliveries at the same time, the third is written afterwards (three
//! subscribers so that every branch of the fan-out's reference taking runs:
//! the first, a middle one, and the last that gets the publisher's own).
//!
//! With the fault the first subscriber gets the message without its own
//! reference (N-1 references for N deliveries): the two concurrent writes
//! release the only two references, and the last delivery's write reads
//! freed memory.
//!
//! Run one: `cargo test --features loom --test loom_fanout fanout_missing_retain`.

mod common;

use common::{
    Expect, clean, connect_bytes, detected, drain, join, publish_bytes, spawn, subscribe_bytes,
    write_one,
};
use mqtls_harness::broker::{Broker, BrokerConfig};
use mqtls_harness::codec::QoS;
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};

fn fanout_writes(faults: FaultSet) -> Audit {
    set_actor("reader");
    let ledger = Ledger::new(Mode::Full);
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    let b = Broker::new(ledger.clone(), cfg);
    let subs: Vec<_> = ["s1", "s2", "s3"]
        .into_iter()
        .map(|id| {
            let c = b.accept(0, None);
            let _ = b.on_bytes(&c, &connect_bytes(id), 0);
            let _ = b.on_bytes(&c, &subscribe_bytes(1, "t", QoS::AtMostOnce), 0);
            drain(&c.outbox);
            c
        })
        .collect();
    let publ = b.accept(0, None);
    let _ = b.on_bytes(&publ, &connect_bytes("pub"), 0);
    let _ = b.on_bytes(
        &publ,
        &publish_bytes("t", b"x", QoS::AtMostOnce, false, 0),
        0,
    );

    let writers: Vec<_> = subs
        .iter()
        .zip(["writer-s1", "writer-s2"])
        .map(|(c, actor)| {
            let c = c.clone();
            spawn(actor, move || {
                write_one(&c.outbox, WriteResult::Complete);
            })
        })
        .collect();
    for w in writers {
        join(w);
    }
    for c in &subs {
        drain(&c.outbox);
    }
    b.shutdown();
    ledger.audit()
}

#[test]
fn fanout_writes_clean() {
    clean("fanout_writes", fanout_writes);
}

#[test]
fn fanout_missing_retain_writes_detected() {
    detected(
        "fanout_missing_retain_writes",
        Fault::FanoutMissingRetain,
        Expect::kind(ViolationKind::UseAfterRelease),
        fanout_writes,
    );
}
