#![cfg(feature = "loom")]
//! The will-delay timer racing the client's reconnect. A client with a
//! delayed will (MQTT 5 Will Delay Interval) lost its connection; the
//! broker's timer thread and the reader of the client's new connection run
//! at the same instant. Whichever runs first, the outcome is the one the
//! clock says [MQTT-3.1.2-8, MQTT-3.1.3-9]:
//!
//! - reconnect after the delay passed: the will is published exactly once;
//! - reconnect within the delay: the will is not published;
//! - reconnect after the session expired, with a delay longer than the
//!   session (mosquitto CVE-2019-11778's case): the session ended first, so
//!   the will is published exactly once and the CONNACK says no session is
//!   present. `mosquitto-cve-2019-11778` (the session end leaves the timer
//!   holding the will it published) makes the reconnect's cancel release it
//!   a second time, whichever ran first.
//!
//! Run one: `cargo test --features loom --test loom_will_delay`.

mod common;

use common::{
    Checked, Expect, broker, clean_promises, connect_bytes, detected, drain, drain_packets,
    drain_packets_in, join, mqtt5_connect_bytes, publishes, spawn, subscribe_bytes,
};
use mqtls_harness::broker::Conn;
use mqtls_harness::codec::{Packet, QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{ViolationKind, set_actor};
use mqtls_harness::sync::Arc;

/// The client's delayed will, its delay and session expiry, and when (ms
/// after the connection dropped) the timer and the reconnect race.
struct Race {
    delay_secs: u32,
    session_secs: u32,
    at_ms: u64,
    /// Wills the watcher must see in the end.
    wills: usize,
    /// Whether the reconnect's CONNACK must find the session.
    session_present: bool,
}

fn timer_vs_reconnect(race: &Race, faults: FaultSet) -> Checked {
    set_actor("main");
    let (ledger, b) = broker(faults);
    let watcher = b.accept(0, None);
    let _ = b.on_bytes(&watcher, &connect_bytes("watcher"), 0);
    let _ = b.on_bytes(&watcher, &subscribe_bytes(1, "w/#", QoS::AtMostOnce), 0);
    drain(&watcher.outbox);
    let old = b.accept(0, None);
    let connect = mqtt5_connect_bytes(
        "sub",
        race.session_secs,
        Some(("w/sub", b"gone", race.delay_secs)),
    );
    let _ = b.on_bytes(&old, &connect, 0);
    drain(&old.outbox);
    b.connection_lost(&old, 0);
    let new: Arc<Conn> = b.accept(race.at_ms, None);

    let at = race.at_ms;
    let bb = b.clone();
    let timer = spawn("timer", move || {
        let _ = bb.tick(at);
    });
    let (bb, n) = (b.clone(), new.clone());
    let reconnect = spawn("reconnect reader", move || {
        let _ = bb.on_bytes(&n, &mqtt5_connect_bytes("sub", 60, None), at);
    });
    join(timer);
    join(reconnect);
    // Long after every delay and expiry: nothing may be left to publish.
    // let _ = b.tick(at + 60_000);

    let wills = publishes(&drain_packets(&watcher.outbox));
    let present = drain_packets_in(&new.outbox, Version::V5)
        .iter()
        .find_map(|p| match p {
            Packet::Connack(c) => Some(c.session_present),
            _ => None,
        });
    let mut broken = Vec::new();
    if wills != race.wills {
        broken.push(format!(
            "the will was published {wills} times, not {}",
            race.wills
        ));
    }
    if present != Some(race.session_present) {
        broken.push(format!(
            "the reconnect's CONNACK said session present {present:?}, not {}",
            race.session_present
        ));
    }
    // Shutdown releases a will still waiting. No later tick or connection
    // loss here: every call moves the broker's clock (an atomic maximum),
    // and past loom's store history of 7 it trips loom's own
    // modification-order assertion.
    b.shutdown();
    Checked {
        audit: ledger.audit(),
        broken,
    }
}

const AFTER_THE_DELAY: Race = Race {
    delay_secs: 1,
    session_secs: 60,
    at_ms: 1_500,
    wills: 1,
    session_present: true,
};

const WITHIN_THE_DELAY: Race = Race {
    delay_secs: 2,
    session_secs: 60,
    at_ms: 1_500,
    wills: 0,
    session_present: true,
};

const AFTER_THE_SESSION: Race = Race {
    delay_secs: 5,
    session_secs: 1,
    at_ms: 1_500,
    wills: 1,
    session_present: false,
};

#[test]
fn reconnect_after_the_delay_clean() {
    clean_promises("reconnect_after_the_delay", |f| {
        timer_vs_reconnect(&AFTER_THE_DELAY, f)
    });
}

#[test]
fn reconnect_within_the_delay_clean() {
    clean_promises("reconnect_within_the_delay", |f| {
        timer_vs_reconnect(&WITHIN_THE_DELAY, f)
    });
}

#[test]
fn reconnect_after_the_session_expired_clean() {
    clean_promises("reconnect_after_the_session_expired", |f| {
        timer_vs_reconnect(&AFTER_THE_SESSION, f)
    });
}

#[test]
fn mosquitto_cve_2019_11778_will_delay_vs_session_expiry_detected() {
    detected(
        "mosquitto_cve_2019_11778_will_delay_vs_session_expiry",
        Fault::MosquittoCve201911778,
        Expect::kind(ViolationKind::UseAfterRelease),
        |f| timer_vs_reconnect(&AFTER_THE_SESSION, f).audit,
    );
}
