#![cfg(feature = "loom")]
//! Acknowledgements racing the close of the connection, at each QoS: the
//! reader hands the client kernel PUBACK (QoS 1) or PUBREC then PUBCOMP
//! (QoS 2) while the closer ends the connection (clean session: the parked
//! publish is finished `Closed`). Whoever takes the parked operation out of
//! the table finishes it and releases its message, exactly once.
//!
//! - `nanonng-23d0eb290`: the acknowledgement path releases the parked
//!   PUBLISH but leaves it in the slot, and the caller's reap releases it
//!   again (the same mistake as on SUBACK, here on PUBACK and PUBREC).
//!
//! Run one: `cargo test --features loom --test loom_ack_close qos1`.

mod common;

use common::{Expect, ack_bytes, clean, detected, drain, join, spawn};
use mqtls_harness::client::{ClientConfig, ClientKernel, request};
use mqtls_harness::codec::{Packet, QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Audit, Ledger, Mode, ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

/// A publish at `qos` written and parked; its acknowledgements race the
/// close.
fn ack_vs_close(qos: QoS, faults: FaultSet) -> Audit {
    set_actor("caller");
    let ledger = Ledger::new(Mode::Full);
    let cfg = ClientConfig {
        version: Version::V311,
        client_id: "race".into(),
        faults,
        ..Default::default()
    };
    let client = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let op = request::publish(
        &ledger,
        Version::V311,
        "t",
        bytes::Bytes::from_static(b"x"),
        qos,
        false,
    )
    .expect("publish builds");
    let pid = client.send_request(&op, 0).expect("publish sent");
    drain(&client.outbox);

    let c = client.clone();
    let reader = spawn("reader", move || match qos {
        QoS::ExactlyOnce => {
            let _ = c.on_bytes(&ack_bytes(Packet::Pubrec, pid));
            let _ = c.on_bytes(&ack_bytes(Packet::Pubcomp, pid));
        }
        _ => {
            let _ = c.on_bytes(&ack_bytes(Packet::Puback, pid));
        }
    });
    let c = client.clone();
    let closer = spawn("closer", move || c.connection_lost(false));
    join(reader);
    join(closer);
    // The PUBREL the PUBREC asked for may still be queued.
    drain(&client.outbox);
    request::reap_all(&op, "caller: publish done");
    client.shutdown();
    ledger.audit()
}

fn qos1(faults: FaultSet) -> Audit {
    ack_vs_close(QoS::AtLeastOnce, faults)
}

fn qos2(faults: FaultSet) -> Audit {
    ack_vs_close(QoS::ExactlyOnce, faults)
}

#[test]
fn puback_vs_close_qos1_clean() {
    clean("puback_vs_close_qos1", qos1);
}

#[test]
fn pubrec_pubcomp_vs_close_qos2_clean() {
    clean("pubrec_pubcomp_vs_close_qos2", qos2);
}

#[test]
fn nanonng_23d0eb290_puback_vs_close_qos1_detected() {
    detected(
        "nanonng_23d0eb290_puback_vs_close_qos1",
        Fault::Nanonng23d0eb290,
        Expect::kind(ViolationKind::DoubleRelease),
        qos1,
    );
}

#[test]
fn nanonng_23d0eb290_pubrec_vs_close_qos2_detected() {
    detected(
        "nanonng_23d0eb290_pubrec_vs_close_qos2",
        Fault::Nanonng23d0eb290,
        Expect::kind(ViolationKind::DoubleRelease),
        qos2,
    );
}
