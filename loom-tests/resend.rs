#![cfg(feature = "loom")]
//! The reconnect's resend racing what the old connection left behind: a
//! persistent client's QoS 1 publish is parked, its connection drops, and
//! the kernel reconnects (sending the publish again with DUP) while
//!
//! - the old connection's write of that publish is still in flight and
//!   completes after the close (the outbox lets a write outlive its
//!   connection): the resend must not set DUP in place on a message that
//!   write still reads;
//! - the request's timer fires: the timeout releases the parked message.
//!
//! `nanonng-f135bbc6b`: the resend looks the message up under the pending
//! lock, drops the lock, and only then takes its reference (NanoNNG's
//! `nano_pipe_timer_cb` unlocked around the resend-message lookup); the
//! timeout frees the message in between and the resend clones freed memory.
//!
//! Run one: `cargo test --features loom --test loom_resend nanonng_f135bbc6b`.

mod common;

use bytes::BytesMut;
use common::{Expect, clean, detected, drain, join, spawn};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::frame::encode_job;
use mqtls_harness::kernels::outbox::WriteResult;
use mqtls_harness::ledger::{Audit, Ledger, Mode, Op, ViolationKind, set_actor};
use mqtls_harness::sync::{Arc, Mutex, lock};

fn persistent_client(faults: FaultSet) -> (Arc<Ledger>, Arc<ClientKernel>) {
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "resend".into(),
        clean_start: false,
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    (ledger, client)
}

fn parked_publish(ledger: &Ledger, client: &ClientKernel) -> (Op, u16) {
    let op = request::publish(
        ledger,
        Version::V311,
        "t",
        bytes::Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
        false,
    )
    .expect("publish builds");
    let pid = client.send_request(&op, 0).expect("publish sent");
    (op, pid)
}

/// Writes what is left, ends the client, reaps the caller's operations.
fn finish(ledger: &Ledger, client: &ClientKernel, ops: [Option<Op>; 2]) -> Audit {
    drain(&client.outbox);
    client.shutdown();
    for op in ops.iter().flatten() {
        request::reap_all(op, "caller: done");
    }
    ledger.audit()
}

/// The old write completes after the close while the kernel reconnects.
fn resend_vs_old_write(faults: FaultSet) -> Audit {
    set_actor("caller");
    let (ledger, client) = persistent_client(faults);
    let (op, _) = parked_publish(&ledger, &client);
    let job = client.outbox.start_write().expect("the publish is queued");
    client.connection_lost(true);

    let c = client.clone();
    let writer = spawn("old writer", move || {
        let mut buf = BytesMut::new();
        let _ = encode_job(&job, &mut buf);
        c.outbox.write_done(job, WriteResult::Complete);
    });
    let (c, connect) = (client.clone(), Arc::new(Mutex::new(None)));
    let slot = connect.clone();
    let caller = spawn("caller", move || *lock(&slot) = Some(c.reconnect(0)));
    join(writer);
    join(caller);
    finish(&ledger, &client, [Some(op), lock(&connect).take()])
}

/// The request's timer fires while the kernel reconnects.
fn resend_vs_timeout(faults: FaultSet) -> Audit {
    set_actor("caller");
    let (ledger, client) = persistent_client(faults);
    let (op, pid) = parked_publish(&ledger, &client);
    drain(&client.outbox);
    client.connection_lost(true);

    let c = client.clone();
    let timer = spawn("timer", move || {
        c.time_out(pid);
    });
    let (c, connect) = (client.clone(), Arc::new(Mutex::new(None)));
    let slot = connect.clone();
    let caller = spawn("caller", move || *lock(&slot) = Some(c.reconnect(0)));
    join(timer);
    join(caller);
    finish(&ledger, &client, [Some(op), lock(&connect).take()])
}

#[test]
fn resend_vs_old_write_clean() {
    clean("resend_vs_old_write", resend_vs_old_write);
}

#[test]
fn resend_vs_timeout_clean() {
    clean("resend_vs_timeout", resend_vs_timeout);
}

#[test]
fn nanonng_f135bbc6b_resend_vs_timeout_detected() {
    detected(
        "nanonng_f135bbc6b_resend_vs_timeout",
        Fault::NanonngF135bbc6b,
        Expect::kind(ViolationKind::UseAfterRelease),
        resend_vs_timeout,
    );
}
