//! What every loom model shares: the model builder (preemption bound), the
//! clean / detected checks, the verbose report, and the byte-level packets
//! the models feed to the kernels.
//!
//! Bounds: each model runs with `LOOM_MAX_PREEMPTIONS` (default
//! [`DEFAULT_PREEMPTIONS`]), which keeps `cargo test --features loom` under
//! a few minutes on two cores. Nightly runs go deeper with
//! `LOOM_MAX_PREEMPTIONS=3` (or more); every other loom variable
//! (`LOOM_MAX_BRANCHES`, `LOOM_MAX_DURATION`, `LOOM_LOG`, ...) is honoured
//! as loom documents it. `MQTLS_LOOM_VERBOSE=1` prints, for a detected
//! fault, the first violating interleaving as the ledger recorded it
//! (actor and site of every step, in order), and for every model the
//! number of interleavings explored and the time taken.
#![allow(dead_code)] // each test file uses the part it needs

use bytes::{Bytes, BytesMut};
use mqtls_harness::broker::{Broker, BrokerConfig};
use mqtls_harness::codec::{
    self, AckProperties, Connect, MqttString, Packet, Publish, QoS, ReasonCode, Suback, Subscribe,
    Subscription, SubscriptionOptions, Version,
};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::kernels::frame::{OutFrame, encode_job};
use mqtls_harness::kernels::outbox::{Outbox, WriteResult};
use mqtls_harness::ledger::{Audit, Ledger, Mode, Violation, ViolationKind};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Preemptions per interleaving when `LOOM_MAX_PREEMPTIONS` is not set.
pub const DEFAULT_PREEMPTIONS: usize = 3;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    b
}

fn verbose() -> bool {
    std::env::var("MQTLS_LOOM_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn report(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `model` with no fault: every interleaving within the bound must
/// audit clean. A dirty one panics inside the iteration, so loom reports
/// that interleaving.
pub fn clean(name: &str, model: impl Fn(FaultSet) -> Audit + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let start = Instant::now();
    builder().check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        let audit = model(FaultSet::NONE);
        assert!(
            audit.is_clean(),
            "fixed protocol, violation found:\n{}",
            report(&audit.violations)
        );
    });
    summary(name, "clean", runs.load(Ordering::Relaxed), start);
}

/// What a faulty model must show: a violation of `kind`, and (when given)
/// one whose subject was freed at `freed_at` first.
pub struct Expect {
    /// The violation kind the fault produces.
    pub kind: ViolationKind,
    /// The site of the first free in the violating subject's history.
    pub freed_at: Option<&'static str>,
}

impl Expect {
    /// A violation of `kind`, wherever the subject was freed.
    pub fn kind(kind: ViolationKind) -> Self {
        Expect {
            kind,
            freed_at: None,
        }
    }

    /// A violation of `kind` whose subject was first freed at `site`.
    pub fn freed_at(kind: ViolationKind, site: &'static str) -> Self {
        Expect {
            kind,
            freed_at: Some(site),
        }
    }

    fn matches(&self, v: &Violation) -> bool {
        use mqtls_harness::ledger::Action;
        v.kind == self.kind
            && self.freed_at.is_none_or(|site| {
                v.history
                    .iter()
                    .find(|e| e.action == Action::Free)
                    .is_some_and(|e| e.site == site)
            })
    }
}

/// Runs `model` with `fault` on: some interleaving within the bound must
/// show the expected violation. Returns after the whole state space was
/// explored (loom cannot stop early on success).
pub fn detected(
    name: &str,
    fault: Fault,
    expect: Expect,
    model: impl Fn(FaultSet) -> Audit + Sync + Send + 'static,
) {
    // Test bookkeeping lives outside the model, in std types: it is not
    // kernel state and loom must not schedule around it.
    let seen = std::sync::Arc::new(AtomicBool::new(false));
    let first = std::sync::Arc::new(StdMutex::new(None::<String>));
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let (s, f, r) = (seen.clone(), first.clone(), runs.clone());
    let start = Instant::now();
    builder().check(move || {
        let n = r.fetch_add(1, Ordering::Relaxed) + 1;
        let audit = model(FaultSet::only(fault));
        if let Some(v) = audit.violations.iter().find(|v| expect.matches(v))
            && !s.swap(true, Ordering::Relaxed)
        {
            let others: Vec<Violation> = audit
                .violations
                .iter()
                .filter(|o| *o != v)
                .cloned()
                .collect();
            let mut text = format!("interleaving {n}: {v}");
            if !others.is_empty() {
                text.push_str(&format!(
                    "other violations of this interleaving:\n{}",
                    report(&others)
                ));
            }
            if let Ok(mut g) = f.lock() {
                *g = Some(text);
            }
        }
    });
    summary(name, fault.name(), runs.load(Ordering::Relaxed), start);
    if verbose()
        && let Some(text) = first.lock().ok().and_then(|g| g.clone())
    {
        eprintln!("[{name}] first violating interleaving:\n{text}");
    }
    assert!(
        seen.load(Ordering::Relaxed),
        "{name}: no interleaving within the bound showed the expected violation"
    );
}

fn summary(name: &str, what: &str, runs: usize, start: Instant) {
    if verbose() {
        eprintln!(
            "[{name}] {what}: {runs} interleavings in {:.2?}",
            start.elapsed()
        );
    }
}

/// Writes the next queued entry of `outbox` through the kernel's own encoder
/// and ends the write with `result`. Returns false when nothing was there.
pub fn write_one(outbox: &Outbox<OutFrame>, result: WriteResult) -> bool {
    let Some(job) = outbox.start_write() else {
        return false;
    };
    let mut buf = BytesMut::new();
    let _ = encode_job(&job, &mut buf);
    outbox.write_done(job, result);
    true
}

/// Writes everything queued (setup and teardown, one thread).
pub fn drain(outbox: &Outbox<OutFrame>) {
    while write_one(outbox, WriteResult::Complete) {}
}

fn encode(p: Packet, version: Version) -> Bytes {
    let mut buf = BytesMut::new();
    codec::encode(&p, version, &mut buf).expect("test packet encodes");
    buf.freeze()
}

/// A clean-start 3.1.1 CONNECT for `id`, keep-alive off.
pub fn connect_bytes(id: &str) -> Bytes {
    encode(
        Packet::Connect(Box::new(Connect {
            clean_start: true,
            keep_alive: 0,
            client_id: MqttString::new(id).expect("client id"),
            ..Default::default()
        })),
        Version::V311,
    )
}

/// A 3.1.1 SUBSCRIBE to one filter.
pub fn subscribe_bytes(pid: u16, filter: &str, qos: QoS) -> Bytes {
    encode(
        Packet::Subscribe(Subscribe {
            packet_id: pid,
            filters: vec![Subscription {
                filter: MqttString::new(filter).expect("filter"),
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        }),
        Version::V311,
    )
}

/// A 3.1.1 PUBLISH.
pub fn publish_bytes(
    topic: &str,
    payload: &'static [u8],
    qos: QoS,
    retain: bool,
    pid: u16,
) -> Bytes {
    let mut p = Publish::new(
        MqttString::new(topic).expect("topic"),
        Bytes::from_static(payload),
    );
    p.qos = qos;
    p.retain = retain;
    p.packet_id = if qos == QoS::AtMostOnce { 0 } else { pid };
    encode(Packet::Publish(p), Version::V311)
}

/// The broker's 3.1.1 SUBACK for `pid`, granting QoS 0.
pub fn suback_bytes(pid: u16) -> Bytes {
    encode(
        Packet::Suback(Suback {
            packet_id: pid,
            reasons: vec![ReasonCode::Success],
            properties: AckProperties::default(),
        }),
        Version::V311,
    )
}

/// Spawns a loom thread that plays `actor` (its name on every ledger event
/// it causes).
pub fn spawn(
    actor: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> mqtls_harness::sync::thread::JoinHandle<()> {
    mqtls_harness::sync::thread::spawn(move || {
        mqtls_harness::ledger::set_actor(actor);
        f();
    })
}

/// Joins a model thread; a panic inside it fails the iteration.
pub fn join(h: mqtls_harness::sync::thread::JoinHandle<()>) {
    h.join().expect("model thread panicked");
}

/// What a model with a semantic oracle returns: the ledger's audit and the
/// promises it saw broken (deliveries after UNSUBACK, twice, or never).
pub struct Checked {
    /// The ledger's audit.
    pub audit: Audit,
    /// Broken promises, in words.
    pub broken: Vec<String>,
}

/// Like [`clean`], for a model with an oracle: every interleaving audits
/// clean and keeps every promise.
pub fn clean_promises(name: &str, model: impl Fn(FaultSet) -> Checked + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let start = Instant::now();
    builder().check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        let c = model(FaultSet::NONE);
        assert!(
            c.audit.is_clean(),
            "fixed protocol, violation found:\n{}",
            report(&c.audit.violations)
        );
        assert!(
            c.broken.is_empty(),
            "fixed protocol, promise broken: {:?}",
            c.broken
        );
    });
    summary(name, "clean", runs.load(Ordering::Relaxed), start);
}

/// Runs `model` with `fault` on: some interleaving within the bound must
/// break a promise whose text contains `what` (memory-safe in Rust, a
/// use-after-free in the C original).
pub fn detected_broken(
    name: &str,
    fault: Fault,
    what: &'static str,
    model: impl Fn(FaultSet) -> Checked + Sync + Send + 'static,
) {
    let seen = std::sync::Arc::new(AtomicBool::new(false));
    let first = std::sync::Arc::new(StdMutex::new(None::<String>));
    let (s, f) = (seen.clone(), first.clone());
    let start = Instant::now();
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    builder().check(move || {
        let n = r.fetch_add(1, Ordering::Relaxed) + 1;
        let c = model(FaultSet::only(fault));
        if let Some(b) = c.broken.iter().find(|b| b.contains(what))
            && !s.swap(true, Ordering::Relaxed)
            && let Ok(mut g) = f.lock()
        {
            *g = Some(format!("interleaving {n}: {b}"));
        }
    });
    summary(name, fault.name(), runs.load(Ordering::Relaxed), start);
    if verbose()
        && let Some(text) = first.lock().ok().and_then(|g| g.clone())
    {
        eprintln!("[{name}] first broken promise:\n{text}");
    }
    assert!(
        seen.load(Ordering::Relaxed),
        "{name}: no interleaving within the bound broke the promise ({what})"
    );
}

/// Everything `outbox` has queued, written in order: the packets a peer
/// reads, decoded (3.1.1).
pub fn drain_packets(outbox: &Outbox<OutFrame>) -> Vec<Packet> {
    drain_packets_in(outbox, Version::V311)
}

/// Like [`drain_packets`], for a peer speaking `version`.
pub fn drain_packets_in(outbox: &Outbox<OutFrame>, version: Version) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Some(job) = outbox.start_write() {
        let mut buf = BytesMut::new();
        if encode_job(&job, &mut buf).is_ok()
            && let Ok(p) = codec::decode(&buf.freeze(), version)
        {
            out.push(p);
        }
        outbox.write_done(job, WriteResult::Complete);
    }
    out
}

/// A 3.1.1 UNSUBSCRIBE from one filter.
pub fn unsubscribe_bytes(pid: u16, filter: &str) -> Bytes {
    encode(
        Packet::Unsubscribe(codec::Unsubscribe {
            packet_id: pid,
            filters: vec![MqttString::new(filter).expect("filter")],
            properties: Default::default(),
        }),
        Version::V311,
    )
}

/// A 3.1.1 CONNECT for `id` with a persistent session (clean session 0).
pub fn persistent_connect_bytes(id: &str, will: Option<(&str, &'static [u8])>) -> Bytes {
    encode(
        Packet::Connect(Box::new(Connect {
            clean_start: false,
            keep_alive: 0,
            client_id: MqttString::new(id).expect("client id"),
            will: will.map(|(topic, payload)| codec::Will {
                topic: MqttString::new(topic).expect("will topic"),
                payload: Bytes::from_static(payload),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
            }),
            ..Default::default()
        })),
        Version::V311,
    )
}

/// The 3.1.1 acknowledgement `packet` (PUBACK, PUBREC, PUBREL, PUBCOMP)
/// for `pid`.
pub fn ack_bytes(packet: fn(codec::PubResponse) -> Packet, pid: u16) -> Bytes {
    encode(packet(codec::PubResponse::new(pid)), Version::V311)
}

/// An MQTT 5 CONNECT for `id` resuming its session (clean start 0) with
/// Session Expiry `session_secs`, and a QoS 1 will `(topic, payload, delay
/// in seconds)` if given.
pub fn mqtt5_connect_bytes(
    id: &str,
    session_secs: u32,
    will: Option<(&str, &'static [u8], u32)>,
) -> Bytes {
    encode(
        Packet::Connect(Box::new(Connect {
            clean_start: false,
            keep_alive: 0,
            client_id: MqttString::new(id).expect("client id"),
            will: will.map(|(topic, payload, delay)| codec::Will {
                topic: MqttString::new(topic).expect("will topic"),
                payload: Bytes::from_static(payload),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: codec::WillProperties {
                    will_delay_interval: Some(delay),
                    ..Default::default()
                },
            }),
            properties: codec::ConnectProperties {
                session_expiry_interval: Some(session_secs),
                ..Default::default()
            },
            ..Default::default()
        })),
        Version::V5,
    )
}

/// A broker with `faults` on, recording into its own full-mode ledger.
pub fn broker(
    faults: FaultSet,
) -> (
    mqtls_harness::sync::Arc<Ledger>,
    mqtls_harness::sync::Arc<Broker>,
) {
    let ledger = Ledger::new(Mode::Full);
    let cfg = BrokerConfig {
        faults,
        ..Default::default()
    };
    (
        ledger.clone(),
        mqtls_harness::sync::Arc::new(Broker::new(ledger, cfg)),
    )
}

/// How many of `packets` are PUBLISH packets.
pub fn publishes(packets: &[Packet]) -> usize {
    packets
        .iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .count()
}
