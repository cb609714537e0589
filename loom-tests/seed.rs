#![cfg(feature = "loom")]
//! NanoMQ 1766, the seed, at each of its three free sites.
//!
//! The caller (the main thread) subscribes and waits; the TLS writer, the
//! closer and the timer run against the same client kernel. With the fault
//! the SDK parks the SUBSCRIBE without its own reference, so whichever of
//! the write completion, the write error's send callback or the close's
//! queue flush frees the wire's reference frees the only one, and the close
//! (or timeout) releases the parked one again.
//!
//! Run one: `cargo test --features loom --test loom_seed nanomq_1766`.

mod common;

use common::{Expect, clean, detected, join, spawn, write_one};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

/// Who races the closer for the SUBSCRIBE's wire reference.
#[derive(Clone, Copy)]
enum Rival {
    /// The TLS writer, ending its write this way.
    Writer(bool),
    /// The subscribe timer (the writer is stalled: the SUBSCRIBE stays
    /// queued until the close flushes it).
    Timer,
}

fn subscribe_then_close(faults: FaultSet, rival: Rival) -> Audit {
    set_actor("caller");
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "seed".into(),
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let op = request::subscribe(&ledger, Version::V311, &[("topic3", QoS::AtMostOnce)])
        .expect("subscribe builds");
    let pid = client.send_request(&op, 0).expect("subscribe sent");

    let c = client.clone();
    let rival = match rival {
        Rival::Writer(ok) => spawn("writer", move || {
            let result = if ok {
                WriteResult::Complete
            } else {
                WriteResult::Failed("tls: connection reset".into())
            };
            write_one(&c.outbox, result);
        }),
        Rival::Timer => spawn("timer", move || {
            c.time_out(pid);
        }),
    };
    let c = client.clone();
    let closer = spawn("closer", move || c.connection_lost(false));

    // The caller waits for its subscribe, then frees what the SDK left it.
    op.wait();
    if let Some(r) = request::reap(&op, "caller: subscribe (error path)")
        && let Some(m) = r.result
    {
        m.release("caller: SUBACK");
    }
    join(rival);
    join(closer);
    client.shutdown();
    ledger.audit()
}

#[test]
fn nanomq_1766_write_complete_clean() {
    clean("nanomq_1766_write_complete", |f| {
        subscribe_then_close(f, Rival::Writer(true))
    });
}

#[test]
fn nanomq_1766_write_complete_detected() {
    detected(
        "nanomq_1766_write_complete",
        Fault::Nanomq1766,
        Expect::freed_at(ViolationKind::DoubleRelease, "tls::write_done"),
        |f| subscribe_then_close(f, Rival::Writer(true)),
    );
}

#[test]
fn nanomq_1766_write_error_clean() {
    clean("nanomq_1766_write_error", |f| {
        subscribe_then_close(f, Rival::Writer(false))
    });
}

#[test]
fn nanomq_1766_write_error_detected() {
    detected(
        "nanomq_1766_write_error",
        Fault::Nanomq1766,
        Expect::freed_at(ViolationKind::DoubleRelease, "send_cb (write error)"),
        |f| subscribe_then_close(f, Rival::Writer(false)),
    );
}

#[test]
fn nanomq_1766_queue_flush_clean() {
    clean("nanomq_1766_queue_flush", |f| {
        subscribe_then_close(f, Rival::Timer)
    });
}

#[test]
fn nanomq_1766_queue_flush_detected() {
    detected(
        "nanomq_1766_queue_flush",
        Fault::Nanomq1766,
        Expect::freed_at(ViolationKind::DoubleRelease, "close: queue flush"),
        |f| subscribe_then_close(f, Rival::Timer),
    );
}
