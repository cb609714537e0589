#![cfg(not(feature = "loom"))]
//! The queue limits of issue 19 over the in-memory transport: a subscriber
//! that stops reading (its link is simply never written to) while a
//! publisher goes on. Each policy keeps what it documents, every drop is
//! counted and released exactly once (the full ledger's audit is clean and
//! the drop sites in the histories match the counters), and a consumer that
//! stays over its limit is disconnected.

use bytes::{Bytes, BytesMut};
use mqtls_harness::broker::BrokerConfig;
use mqtls_harness::broker::limits::{DropReason, QueueLimits, WhenFull};
use mqtls_harness::client::{ClientConfig, request};
use mqtls_harness::codec::{self, Connect, MqttString, Packet, Publish, QoS, ReasonCode, Version};
use mqtls_harness::ledger::{Audit, Ledger, Mode, Outcome};
use mqtls_harness::sim::{Dir, Sim};

const WINDOW: u16 = 4;

fn config(limits: QueueLimits) -> BrokerConfig {
    BrokerConfig {
        max_inflight: WINDOW,
        queue: limits,
        ..BrokerConfig::default()
    }
}

fn limits(max_messages: usize, when_full: WhenFull) -> QueueLimits {
    QueueLimits {
        max_messages,
        max_bytes: 0,
        memory: 0,
        when_full,
        slow_consumer_ms: 0,
    }
}

fn client(id: &str, version: Version) -> ClientConfig {
    ClientConfig {
        version,
        client_id: id.into(),
        ..Default::default()
    }
}

/// Writes on the given links only, both ways, until nothing moves: every
/// other link has stopped reading (and writing).
fn run_only(sim: &mut Sim, links: &[usize]) {
    for _ in 0..100_000 {
        let mut moved = false;
        for &i in links {
            moved |= sim.write(i, Dir::Up);
            moved |= sim.write(i, Dir::Down);
        }
        if !moved {
            return;
        }
    }
    panic!("links {links:?} never went quiet");
}

/// A connected subscriber of `t` at `qos` and a connected publisher.
fn pair(sim: &mut Sim, qos: QoS) -> (usize, usize) {
    let (sub, c1) = sim.connect(client("sub", Version::V5));
    let (publ, c2) = sim.connect(client("pub", Version::V5));
    sim.run(1000);
    for op in [c1, c2] {
        let r = request::reap(&op, "test: connack").unwrap();
        assert_eq!(r.outcome, Outcome::Success);
        r.result.unwrap().release("test: connack");
    }
    subscribe(sim, sub, "t", qos);
    (sub, publ)
}

fn subscribe(sim: &mut Sim, link: usize, filter: &str, qos: QoS) {
    let s = request::subscribe(&sim.ledger, Version::V5, &[(filter, qos)]).unwrap();
    sim.client(link).unwrap().send_request(&s, 0).unwrap();
    sim.run(1000);
    let r = request::reap(&s, "test: suback").unwrap();
    assert_eq!(r.outcome, Outcome::Success);
    r.result.unwrap().release("test: suback");
}

/// Publishes messages `range` (payload: the number) at `qos` from `publ`,
/// moving bytes only on `moving`.
fn publish(sim: &mut Sim, publ: usize, moving: &[usize], range: std::ops::Range<u32>, qos: QoS) {
    for n in range {
        let p = request::publish(
            &sim.ledger,
            Version::V5,
            "t",
            Bytes::copy_from_slice(&n.to_be_bytes()),
            qos,
            false,
        )
        .unwrap();
        let pc = sim.client(publ).unwrap().clone();
        if qos == QoS::AtMostOnce {
            pc.publish_qos0(&p);
        } else {
            pc.send_request(&p, 0).unwrap();
        }
        run_only(sim, moving);
        assert_eq!(request::reap(&p, "test").unwrap().outcome, Outcome::Success);
    }
}

/// The numbers the client on `link` received, in order.
fn received(sim: &Sim, link: usize) -> Vec<u32> {
    let c = sim.client(link).unwrap();
    let mut out = Vec::new();
    while let Some(r) = c.take_received() {
        let d = r.msg.data("test").unwrap();
        out.push(u32::from_be_bytes(d[..4].try_into().unwrap()));
        request::consume(r.msg);
    }
    out
}

/// Releases in the full ledger's histories at `reason`'s site.
fn released_at(ledger: &Ledger, reason: DropReason) -> usize {
    ledger.releases_at(reason.site())
}

fn assert_clean(audit: &Audit) {
    assert!(
        audit.is_clean(),
        "{}",
        audit
            .violations
            .iter()
            .map(|v| v.diagnosis())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn stopped_qos1_subscriber_keeps_the_newest_under_drop_oldest() {
    let mut sim = Sim::new(
        Ledger::new(Mode::Full),
        config(limits(10, WhenFull::DropOldest)),
    );
    let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 0..100, QoS::AtLeastOnce);
    assert_eq!(sim.broker.queued_for("sub"), Some(10));
    let drops = sim.broker.stats().drops;
    // 4 in flight, 10 queued, the 86 oldest of the rest dropped.
    assert_eq!(drops.queue_messages, 86, "{drops:?}");
    assert_eq!(drops.total(), 86);
    run_only(&mut sim, &[sub]);
    let got = received(&sim, sub);
    let want: Vec<u32> = (0..4).chain(90..100).collect();
    assert_eq!(got, want);
    let ledger = sim.ledger.clone();
    let audit = sim.finish();
    assert_clean(&audit);
    assert_eq!(released_at(&ledger, DropReason::QueueMessages), 86);
}

#[test]
fn stopped_qos1_subscriber_keeps_the_oldest_under_drop_newest() {
    let mut sim = Sim::new(
        Ledger::new(Mode::Full),
        config(limits(10, WhenFull::DropNewest)),
    );
    let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 0..100, QoS::AtLeastOnce);
    assert_eq!(sim.broker.stats().drops.queue_messages, 86);
    run_only(&mut sim, &[sub]);
    assert_eq!(received(&sim, sub), (0..14).collect::<Vec<_>>());
    let ledger = sim.ledger.clone();
    let audit = sim.finish();
    assert_clean(&audit);
    assert_eq!(released_at(&ledger, DropReason::QueueMessages), 86);
}

#[test]
fn qos0_to_a_stopped_subscriber_is_bounded_in_its_send_queue() {
    for (policy, want) in [
        (WhenFull::DropOldest, (90..100).collect::<Vec<u32>>()),
        (WhenFull::DropNewest, (0..10).collect()),
    ] {
        let mut sim = Sim::new(Ledger::new(Mode::Full), config(limits(10, policy)));
        let (sub, publ) = pair(&mut sim, QoS::AtMostOnce);
        publish(&mut sim, publ, &[publ], 0..100, QoS::AtMostOnce);
        assert_eq!(sim.broker.queued_for("sub"), Some(10), "{policy:?}");
        assert_eq!(sim.links[sub].conn.outbox.queued(), 10, "{policy:?}");
        assert_eq!(sim.broker.stats().drops.queue_messages, 90, "{policy:?}");
        run_only(&mut sim, &[sub]);
        assert_eq!(received(&sim, sub), want, "{policy:?}");
        assert_eq!(sim.broker.held_bytes(), 0, "{policy:?}: budget refunded");
        let ledger = sim.ledger.clone();
        let audit = sim.finish();
        assert_clean(&audit);
        assert_eq!(released_at(&ledger, DropReason::QueueMessages), 90);
    }
}

#[test]
fn qos0_goes_first_to_make_room_for_qos1() {
    for policy in [WhenFull::DropOldest, WhenFull::DropNewest] {
        let mut sim = Sim::new(Ledger::new(Mode::Full), config(limits(10, policy)));
        let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
        // Fill the window (4 in flight), then 10 queued QoS 0.
        publish(&mut sim, publ, &[publ], 0..4, QoS::AtLeastOnce);
        publish(&mut sim, publ, &[publ], 100..110, QoS::AtMostOnce);
        // Each QoS 1 now pushes out one QoS 0, oldest first.
        publish(&mut sim, publ, &[publ], 200..206, QoS::AtLeastOnce);
        run_only(&mut sim, &[sub]);
        let got = received(&sim, sub);
        let want: Vec<u32> = (0..4).chain(106..110).chain(200..206).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, want, "{policy:?}: {got:?}");
        assert_eq!(sim.broker.stats().drops.queue_messages, 6, "{policy:?}");
        assert_clean(&sim.finish());
    }
}

#[test]
fn the_byte_limit_counts_topic_and_payload() {
    let mut l = limits(0, WhenFull::DropNewest);
    // Each message is 1 byte of topic and 4 of payload: 3 fit in 15.
    l.max_bytes = 15;
    let mut sim = Sim::new(Ledger::new(Mode::Full), config(l));
    let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 0..20, QoS::AtLeastOnce);
    let drops = sim.broker.stats().drops;
    assert_eq!(drops.queue_bytes, 20 - 4 - 3, "{drops:?}");
    run_only(&mut sim, &[sub]);
    assert_eq!(received(&sim, sub), (0..7).collect::<Vec<_>>());
    assert_clean(&sim.finish());
}

#[test]
fn a_disconnected_session_is_held_to_the_same_limit() {
    let mut sim = Sim::new(
        Ledger::new(Mode::Full),
        config(limits(10, WhenFull::DropOldest)),
    );
    let mut cfg = client("sub", Version::V311);
    cfg.clean_start = false;
    let (sub, c) = sim.connect(cfg);
    let (publ, c2) = sim.connect(client("pub", Version::V5));
    sim.run(1000);
    for op in [c, c2] {
        request::reap(&op, "test")
            .unwrap()
            .result
            .unwrap()
            .release("test");
    }
    let s = request::subscribe(&sim.ledger, Version::V311, &[("t", QoS::AtLeastOnce)]).unwrap();
    sim.client(sub).unwrap().send_request(&s, 0).unwrap();
    sim.run(1000);
    request::reap(&s, "test")
        .unwrap()
        .result
        .unwrap()
        .release("test");
    sim.drop_link(sub);
    publish(&mut sim, publ, &[publ], 0..50, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 50..60, QoS::AtMostOnce);
    let drops = sim.broker.stats().drops;
    assert_eq!(drops.queue_messages, 40, "{drops:?}");
    assert_eq!(drops.offline_qos0, 10, "{drops:?}");
    assert_eq!(sim.broker.queued_for("sub"), Some(10));
    assert_clean(&sim.finish());
}

#[test]
fn the_memory_budget_takes_from_the_largest_queue_not_the_healthy_one() {
    // Three stopped QoS 0 subscribers, one healthy one; each message holds
    // 5 bytes (topic 1 + payload 4): the budget holds 40 deliveries.
    let mut l = limits(0, WhenFull::DropOldest);
    l.memory = 200;
    let mut sim = Sim::new(Ledger::new(Mode::Full), config(l));
    let mut links = Vec::new();
    for id in ["s0", "s1", "s2", "healthy", "pub"] {
        let (i, op) = sim.connect(client(id, Version::V5));
        sim.run(1000);
        request::reap(&op, "test")
            .unwrap()
            .result
            .unwrap()
            .release("test");
        links.push(i);
    }
    for &i in &links[..4] {
        subscribe(&mut sim, i, "t", QoS::AtMostOnce);
    }
    let (healthy, publ) = (links[3], links[4]);
    publish(&mut sim, publ, &[publ, healthy], 0..200, QoS::AtMostOnce);
    assert!(
        sim.broker.held_bytes() <= 200,
        "{}",
        sim.broker.held_bytes()
    );
    assert_eq!(received(&sim, healthy), (0..200).collect::<Vec<_>>());
    let drops = sim.broker.stats().drops;
    let held: usize = ["s0", "s1", "s2"]
        .iter()
        .map(|id| sim.broker.queued_for(id).unwrap())
        .sum();
    // The budget's 40 deliveries, but for the one the healthy subscriber's
    // last delivery took before it was written.
    assert_eq!(held, 39);
    assert_eq!(drops.memory_budget, 600 - 39, "{drops:?}");
    assert_eq!(released_at(&sim.ledger, DropReason::MemoryBudget), 561);
    assert_clean(&sim.finish());
}

/// Encodes a packet for a raw link.
fn bytes(p: &Packet, v: Version) -> Vec<u8> {
    let mut b = BytesMut::new();
    codec::encode(p, v, &mut b).unwrap();
    b.to_vec()
}

/// The packets the broker wrote to raw link `i` so far.
fn raw_packets(sim: &Sim, i: usize) -> Vec<Packet> {
    let mut d = codec::FrameDecoder::new(Some(Version::V5), 1 << 20);
    d.extend(&sim.links[i].raw_received);
    let mut out = Vec::new();
    while let Some(p) = d.next_packet().unwrap() {
        out.push(p);
    }
    out
}

#[test]
fn refuse_tells_an_mqtt5_publisher_quota_exceeded_and_nobody_gets_it() {
    let mut sim = Sim::new(Ledger::new(Mode::Full), config(limits(2, WhenFull::Refuse)));
    // The pair's publisher stays idle: the raw link below publishes.
    let (stopped, _) = pair(&mut sim, QoS::AtLeastOnce);
    let (healthy, op) = sim.connect(client("healthy", Version::V5));
    sim.run(1000);
    request::reap(&op, "test")
        .unwrap()
        .result
        .unwrap()
        .release("test");
    subscribe(&mut sim, healthy, "t", QoS::AtLeastOnce);

    let raw = sim.connect_raw();
    let connect = Connect {
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::new("raw-pub").unwrap(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    };
    sim.feed(
        raw,
        &bytes(&Packet::Connect(Box::new(connect)), Version::V5),
    );
    for n in 0..8u16 {
        let mut p = Publish::new(
            MqttString::new("t").unwrap(),
            Bytes::copy_from_slice(&u32::from(n).to_be_bytes()),
        );
        p.qos = if n % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        p.packet_id = n + 1;
        sim.feed(raw, &bytes(&Packet::Publish(p), Version::V5));
        run_only(&mut sim, &[raw, healthy]);
    }
    // 4 in flight and 2 queued for the stopped subscriber; the other two
    // are refused, for everybody.
    let acks: Vec<(u16, ReasonCode)> = raw_packets(&sim, raw)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Puback(a) | Packet::Pubrec(a) => Some((a.packet_id, a.reason)),
            _ => None,
        })
        .collect();
    let refused: Vec<u16> = acks
        .iter()
        .filter(|(_, r)| *r == ReasonCode::QuotaExceeded)
        .map(|(pid, _)| *pid)
        .collect();
    assert_eq!(refused, vec![7, 8], "{acks:?}");
    assert_eq!(received(&sim, healthy), (0..6).collect::<Vec<_>>());
    let drops = sim.broker.stats().drops;
    assert_eq!(drops.refused_publishes, 2, "{drops:?}");
    assert_eq!(drops.total(), 0, "{drops:?}");
    run_only(&mut sim, &[stopped]);
    assert_eq!(received(&sim, stopped), (0..6).collect::<Vec<_>>());
    assert_clean(&sim.finish());
}

#[test]
fn a_consumer_over_its_limit_too_long_is_disconnected() {
    let mut l = limits(4, WhenFull::DropOldest);
    l.slow_consumer_ms = 1_000;
    let mut sim = Sim::new(Ledger::new(Mode::Full), config(l));
    let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 0..20, QoS::AtLeastOnce);
    sim.advance(500);
    assert!(sim.links[sub].is_open(), "within its grace");
    sim.advance(600);
    assert!(!sim.links[sub].is_open(), "over its limit for 1.1 s");
    let drops = sim.broker.stats().drops;
    assert_eq!(drops.slow_consumers_disconnected, 1, "{drops:?}");
    // A consumer that caught up is left alone.
    let (sub2, op) = sim.connect(client("sub2", Version::V5));
    sim.run(1000);
    request::reap(&op, "test")
        .unwrap()
        .result
        .unwrap()
        .release("test");
    subscribe(&mut sim, sub2, "t", QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 20..40, QoS::AtLeastOnce);
    run_only(&mut sim, &[sub2]);
    sim.advance(1_100);
    sim.advance(1_100);
    assert!(sim.links[sub2].is_open());
    assert_eq!(sim.broker.stats().drops.slow_consumers_disconnected, 1);
    assert_clean(&sim.finish());
}

#[test]
fn unlimited_queues_keep_everything_as_before() {
    let mut sim = Sim::new(
        Ledger::new(Mode::Counting),
        config(QueueLimits::unlimited()),
    );
    let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
    publish(&mut sim, publ, &[publ], 0..500, QoS::AtLeastOnce);
    assert_eq!(
        sim.broker.queued_for("sub"),
        Some(500 - usize::from(WINDOW))
    );
    assert_eq!(sim.broker.stats().drops.total(), 0);
    run_only(&mut sim, &[sub]);
    assert_eq!(received(&sim, sub), (0..500).collect::<Vec<_>>());
    assert_clean(&sim.finish());
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn going_over_the_limit_and_back_is_logged_once_each() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut sim = Sim::new(
            Ledger::new(Mode::Counting),
            config(limits(4, WhenFull::DropOldest)),
        );
        let (sub, publ) = pair(&mut sim, QoS::AtLeastOnce);
        publish(&mut sim, publ, &[publ], 0..50, QoS::AtLeastOnce);
        run_only(&mut sim, &[sub]);
        // Caught up: the next delivery ends the episode.
        publish(&mut sim, publ, &[publ, sub], 50..51, QoS::AtLeastOnce);
        assert_clean(&sim.finish());
    });
    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let over: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("queue limit reached"))
        .collect();
    assert_eq!(over.len(), 1, "{log}");
    assert!(
        over[0].contains("WARN") && over[0].contains("client=\"sub\""),
        "{log}"
    );
    assert!(over[0].contains("reason=queue_messages"), "{log}");
    let back: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("queue back under half its limit"))
        .collect();
    assert_eq!(back.len(), 1, "{log}");
    assert!(back[0].contains("dropped=42"), "{log}");
}

#[test]
fn queue_limits_and_message_expiry_each_release_once_and_refund_the_budget() {
    let mut sim = Sim::new(
        Ledger::new(Mode::Full),
        config(limits(10, WhenFull::DropOldest)),
    );
    let (stopped, _) = pair(&mut sim, QoS::AtLeastOnce);
    let raw = sim.connect_raw();
    let connect = Connect {
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::new("raw-pub").unwrap(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    };
    sim.feed(
        raw,
        &bytes(&Packet::Connect(Box::new(connect)), Version::V5),
    );
    for n in 0..30u16 {
        let mut p = Publish::new(
            MqttString::new("t").unwrap(),
            Bytes::copy_from_slice(&u32::from(n).to_be_bytes()),
        );
        p.qos = QoS::AtLeastOnce;
        p.packet_id = n + 1;
        p.properties.message_expiry_interval = Some(1);
        sim.feed(raw, &bytes(&Packet::Publish(p), Version::V5));
        run_only(&mut sim, &[raw]);
    }
    // 4 in flight, 10 queued, 16 dropped by the limit.
    assert_eq!(sim.broker.stats().drops.queue_messages, 16);
    assert_eq!(sim.broker.held_bytes(), 14 * 5);
    sim.advance(2_000);
    // The 10 queued expired; the 4 in flight are the client's now.
    assert_eq!(sim.broker.stats().expired, 10);
    assert_eq!(sim.broker.queued_for("sub"), Some(0));
    assert_eq!(sim.broker.held_bytes(), 4 * 5);
    run_only(&mut sim, &[stopped]);
    assert_eq!(received(&sim, stopped), (0..4).collect::<Vec<_>>());
    run_only(&mut sim, &[stopped]);
    assert_eq!(sim.broker.held_bytes(), 0, "acknowledged: refunded");
    let ledger = sim.ledger.clone();
    assert_clean(&sim.finish());
    assert_eq!(released_at(&ledger, DropReason::QueueMessages), 16);
}

/// Runs `body` with the broker's INFO and WARN lines captured; returns them.
fn logged(body: impl FnOnce()) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

fn lines_with<'a>(log: &'a str, what: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(what)).collect()
}

#[test]
fn an_exhausted_memory_budget_is_logged_once_not_once_per_delivery() {
    // Only the budget limits (20 bytes: 4 deliveries of 5), in flight (QoS
    // 1, a window of 4) or queued (QoS 0). Found by the soak: with every
    // delivery dropped by the budget, each one started an episode over the
    // limit and the next ended it, 7.3 million log lines in 30 s.
    for qos in [QoS::AtLeastOnce, QoS::AtMostOnce] {
        let mut l = limits(0, WhenFull::DropOldest);
        l.memory = 20;
        let mut drops = None;
        let log = logged(|| {
            let mut sim = Sim::new(Ledger::new(Mode::Full), config(l));
            let (sub, publ) = pair(&mut sim, qos);
            publish(&mut sim, publ, &[publ], 0..50, qos);
            assert!(sim.broker.held_bytes() <= 20, "{}", sim.broker.held_bytes());
            sim.advance(1000);
            // The subscriber reads again: the budget empties, and the next
            // tick ends the episodes.
            run_only(&mut sim, &[sub]);
            let got = received(&sim, sub);
            let want: Vec<u32> = if qos == QoS::AtLeastOnce {
                (0..4).collect()
            } else {
                (46..50).collect()
            };
            assert_eq!(got, want, "{qos:?}");
            sim.advance(1000);
            let d = sim.broker.stats().drops;
            assert_eq!(
                released_at(&sim.ledger, DropReason::MemoryBudget),
                46,
                "{qos:?}"
            );
            drops = Some(d);
            assert_clean(&sim.finish());
        });
        assert_eq!(drops.map(|d| (d.memory_budget, d.total())), Some((46, 46)));
        let exhausted = lines_with(&log, "memory budget exhausted");
        assert_eq!(exhausted.len(), 1, "{qos:?}: {log}");
        assert!(exhausted[0].contains("WARN"), "{log}");
        let back = lines_with(&log, "memory budget back under half");
        assert_eq!(back.len(), 1, "{qos:?}: {log}");
        assert!(back[0].contains("dropped=46"), "{log}");
        // QoS 1: everything in flight, nothing the session could shed, so
        // it is not over a limit of its own. QoS 0: its queue is what the
        // budget shed, one episode until the budget has room again.
        let (over, under) = (
            lines_with(&log, "queue limit reached"),
            lines_with(&log, "queue back under half"),
        );
        if qos == QoS::AtLeastOnce {
            assert!(over.is_empty() && under.is_empty(), "{log}");
        } else {
            assert_eq!((over.len(), under.len()), (1, 1), "{log}");
            assert!(over[0].contains("reason=memory_budget"), "{log}");
            assert!(under[0].contains("dropped=46"), "{log}");
        }
    }
}
