#![cfg(not(feature = "loom"))]
//! The MQTT 5 lifecycle paths of the broker kernel over the in-memory
//! transport, on its virtual clock: will delay, message expiry, shared
//! subscriptions and their hand-over, the keep-alive cap, outbound topic
//! aliases. Each test checks the MQTT behaviour and that the ledger audits
//! clean afterwards (every reference these paths hold released once).

use bytes::{Bytes, BytesMut};
use mqtls_harness::broker::BrokerConfig;
use mqtls_harness::client::{ClientConfig, request};
use mqtls_harness::codec::{
    self, Connect, ConnectProperties, MqttString, Packet, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions, Version, Will,
};
use mqtls_harness::ledger::{Ledger, Mode, Op, Outcome};
use mqtls_harness::sim::Sim;

fn sim(cfg: BrokerConfig) -> Sim {
    Sim::new(Ledger::new(Mode::Full), cfg)
}

fn v5(id: &str) -> ClientConfig {
    ClientConfig {
        version: Version::V5,
        client_id: id.into(),
        keep_alive_secs: 0,
        ..Default::default()
    }
}

/// A client whose session outlives its connection by `expiry` seconds.
fn persistent(id: &str, expiry: u32) -> ClientConfig {
    ClientConfig {
        clean_start: false,
        session_expiry_secs: expiry,
        ..v5(id)
    }
}

fn with_will(mut cfg: ClientConfig, topic: &str, delay: u32) -> ClientConfig {
    let mut w = Will {
        topic: MqttString::new(topic).unwrap(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    w.properties.will_delay_interval = Some(delay);
    cfg.will = Some(w);
    cfg
}

/// Connects and reaps the CONNACK; returns the link.
fn connect(s: &mut Sim, cfg: ClientConfig) -> usize {
    let (link, op) = s.connect(cfg);
    s.run(10_000);
    reaped_ok(&op);
    link
}

fn reaped_ok(op: &Op) {
    let r = request::reap(op, "test: reap").expect("finished");
    assert_eq!(r.outcome, Outcome::Success, "{op:?}");
    if let Some(m) = r.result {
        m.release("test: reap");
    }
}

fn subscribe(s: &mut Sim, link: usize, filter: &str, qos: QoS) {
    let ledger = s.ledger.clone();
    let op = request::subscribe(&ledger, Version::V5, &[(filter, qos)]).unwrap();
    s.client(link).unwrap().send_request(&op, s.now_ms).unwrap();
    s.run(10_000);
    reaped_ok(&op);
}

/// Publishes and lets everything settle; returns the op (reaped).
fn publish(s: &mut Sim, link: usize, topic: &str, payload: &str, qos: QoS, expiry: Option<u32>) {
    let ledger = s.ledger.clone();
    let mut p = Publish::new(
        MqttString::new(topic).unwrap(),
        Bytes::from(payload.to_string()),
    );
    p.qos = qos;
    p.properties.message_expiry_interval = expiry;
    let op = request::publish_packet(&ledger, Version::V5, p).unwrap();
    let c = s.client(link).unwrap().clone();
    if qos == QoS::AtMostOnce {
        c.publish_qos0(&op);
    } else {
        c.send_request(&op, s.now_ms).unwrap();
    }
    s.run(10_000);
    reaped_ok(&op);
}

/// (topic, payload, Message Expiry Interval) of everything `link` got.
fn received(s: &Sim, link: usize) -> Vec<(String, String, Option<u32>)> {
    let c = s.client(link).unwrap();
    let mut out = Vec::new();
    while let Some(r) = c.take_received() {
        let data = r.msg.data("test: read").unwrap();
        out.push((
            r.publish.topic.as_str().to_string(),
            String::from_utf8_lossy(&data).into_owned(),
            r.publish.properties.message_expiry_interval,
        ));
        request::consume(r.msg);
    }
    out
}

fn payloads(s: &Sim, link: usize) -> Vec<String> {
    received(s, link).into_iter().map(|r| r.1).collect()
}

fn clean(s: Sim) {
    let audit = s.finish();
    let shown: Vec<String> = audit.violations.iter().map(|v| v.diagnosis()).collect();
    assert!(audit.is_clean(), "{shown:#?}");
}

/// Moves the virtual clock on in 250 ms ticks, as the shell's timer does.
fn wait(s: &mut Sim, ms: u64) {
    for _ in 0..ms / 250 {
        s.advance(250);
        s.run(10_000);
    }
}

#[test]
fn a_delayed_will_waits_out_its_delay() {
    let mut s = sim(BrokerConfig::default());
    let watch = connect(&mut s, v5("watch"));
    subscribe(&mut s, watch, "w/#", QoS::AtLeastOnce);
    let d = connect(&mut s, with_will(persistent("d", 60), "w/d", 3));
    s.drop_link(d);
    s.run(10_000);
    wait(&mut s, 2_500);
    assert_eq!(
        payloads(&s, watch),
        Vec::<String>::new(),
        "before the delay"
    );
    assert_eq!(s.broker.delayed_wills(), 1);
    wait(&mut s, 1_000);
    assert_eq!(payloads(&s, watch), ["gone"], "after the delay");
    assert_eq!(s.broker.delayed_wills(), 0);
    clean(s);
}

#[test]
fn a_will_delay_longer_than_the_session_goes_out_when_the_session_ends() {
    // mosquitto issue 1401 / CVE-2019-11778: delay 10 s, session 2 s.
    let mut s = sim(BrokerConfig::default());
    let watch = connect(&mut s, v5("watch"));
    subscribe(&mut s, watch, "w/#", QoS::AtLeastOnce);
    let d = connect(&mut s, with_will(persistent("d", 2), "w/d", 10));
    s.drop_link(d);
    s.run(10_000);
    wait(&mut s, 1_500);
    assert_eq!(payloads(&s, watch), Vec::<String>::new());
    wait(&mut s, 1_000);
    assert_eq!(payloads(&s, watch), ["gone"], "at session end");
    wait(&mut s, 10_000);
    assert_eq!(payloads(&s, watch), Vec::<String>::new(), "exactly once");
    assert_eq!(s.broker.sessions(), 1);
    clean(s);
}

#[test]
fn a_timely_reconnect_cancels_the_delayed_will() {
    for clean_start in [false, true] {
        let mut s = sim(BrokerConfig::default());
        let watch = connect(&mut s, v5("watch"));
        subscribe(&mut s, watch, "w/#", QoS::AtLeastOnce);
        let d = connect(&mut s, with_will(persistent("d", 60), "w/d", 3));
        s.drop_link(d);
        s.run(10_000);
        wait(&mut s, 1_000);
        let again = ClientConfig {
            clean_start,
            ..persistent("d", 60)
        };
        let _back = connect(&mut s, again);
        assert_eq!(s.broker.delayed_wills(), 0);
        wait(&mut s, 5_000);
        assert_eq!(
            payloads(&s, watch),
            Vec::<String>::new(),
            "clean start {clean_start}"
        );
        clean(s);
    }
}

/// A CONNECT that comes before the timer ran for a delay or an expiry
/// already past: the broker does first what the timer would have done.
#[test]
fn a_reconnect_the_timer_has_not_seen_yet_gets_what_the_clock_says() {
    // (will delay, session expiry, reconnect at): after the delay the will
    // goes out; after the session (CVE-2019-11778's case) it goes out with
    // the session, which is not resumed.
    for (delay, session, at_ms) in [(1, 60, 1_500), (5, 1, 1_500)] {
        let mut s = sim(BrokerConfig::default());
        let watch = connect(&mut s, v5("watch"));
        subscribe(&mut s, watch, "w/#", QoS::AtLeastOnce);
        let d = connect(&mut s, with_will(persistent("d", session), "w/d", delay));
        s.drop_link(d);
        s.run(10_000);
        s.now_ms += at_ms;
        let _back = connect(&mut s, persistent("d", 60));
        assert_eq!(s.broker.delayed_wills(), 0);
        assert_eq!(
            payloads(&s, watch),
            ["gone"],
            "delay {delay}, session {session}"
        );
        wait(&mut s, 10_000);
        assert_eq!(payloads(&s, watch), Vec::<String>::new(), "exactly once");
        clean(s);
    }
}

#[test]
fn a_delayed_will_is_discarded_on_takeover_unless_the_session_ends() {
    for (clean_start, expected) in [(false, 0), (true, 1)] {
        let mut s = sim(BrokerConfig::default());
        let watch = connect(&mut s, v5("watch"));
        subscribe(&mut s, watch, "w/#", QoS::AtLeastOnce);
        let _old = connect(&mut s, with_will(persistent("d", 60), "w/d", 3));
        let new = ClientConfig {
            clean_start,
            ..persistent("d", 60)
        };
        let _new = connect(&mut s, new);
        wait(&mut s, 5_000);
        assert_eq!(
            payloads(&s, watch).len(),
            expected,
            "clean start {clean_start}"
        );
        clean(s);
    }
}

#[test]
fn expired_messages_are_not_delivered_and_the_rest_carry_what_is_left() {
    let mut s = sim(BrokerConfig::default());
    let sub = connect(&mut s, persistent("sub", 60));
    subscribe(&mut s, sub, "e/#", QoS::AtLeastOnce);
    s.drop_link(sub);
    let publ = connect(&mut s, v5("pub"));
    publish(&mut s, publ, "e/1", "short", QoS::AtLeastOnce, Some(1));
    publish(&mut s, publ, "e/2", "long", QoS::ExactlyOnce, Some(10));
    publish(&mut s, publ, "e/3", "forever", QoS::AtLeastOnce, None);
    wait(&mut s, 3_000);
    assert_eq!(
        s.broker.stats().expired,
        1,
        "the timer released the short one"
    );
    let sub = connect(&mut s, persistent("sub", 60));
    let got = received(&s, sub);
    assert_eq!(
        got,
        [
            ("e/2".to_string(), "long".to_string(), Some(7)),
            ("e/3".to_string(), "forever".to_string(), None),
        ]
    );
    clean(s);
}

#[test]
fn a_live_subscriber_gets_the_interval_reduced_by_the_wait_in_the_queue() {
    let mut s = sim(BrokerConfig::default());
    let sub = connect(&mut s, v5("sub"));
    subscribe(&mut s, sub, "e/#", QoS::AtMostOnce);
    let publ = connect(&mut s, v5("pub"));
    publish(&mut s, publ, "e/q0", "now", QoS::AtMostOnce, Some(30));
    assert_eq!(received(&s, sub), [("e/q0".into(), "now".into(), Some(30))]);
    clean(s);
}

#[test]
fn an_unwritten_qos0_delivery_expires_in_the_send_queue() {
    let mut s = sim(BrokerConfig::default());
    let sub = connect(&mut s, v5("sub"));
    subscribe(&mut s, sub, "e/#", QoS::AtMostOnce);
    let publ = connect(&mut s, v5("pub"));
    let ledger = s.ledger.clone();
    let mut p = Publish::new(MqttString::new("e/x").unwrap(), Bytes::from_static(b"x"));
    p.properties.message_expiry_interval = Some(1);
    let op = request::publish_packet(&ledger, Version::V5, p).unwrap();
    s.client(publ).unwrap().publish_qos0(&op);
    // Only the publisher's write: the delivery sits in the subscriber's
    // send queue, unwritten, while the clock passes its expiry.
    assert!(s.write(publ, mqtls_harness::sim::Dir::Up));
    reaped_ok(&op);
    assert_eq!(s.links[sub].conn.outbox.queued(), 1);
    s.advance(1_500);
    assert_eq!(s.links[sub].conn.outbox.queued(), 0);
    s.run(10_000);
    assert_eq!(received(&s, sub), []);
    assert_eq!(s.broker.stats().expired, 1);
    clean(s);
}

#[test]
fn an_expired_retained_message_is_released_and_not_delivered() {
    let mut s = sim(BrokerConfig::default());
    let publ = connect(&mut s, v5("pub"));
    let ledger = s.ledger.clone();
    let mut p = Publish::new(MqttString::new("r").unwrap(), Bytes::from_static(b"old"));
    p.retain = true;
    p.qos = QoS::AtLeastOnce;
    p.properties.message_expiry_interval = Some(2);
    let op = request::publish_packet(&ledger, Version::V5, p).unwrap();
    s.client(publ).unwrap().send_request(&op, s.now_ms).unwrap();
    s.run(10_000);
    reaped_ok(&op);
    wait(&mut s, 1_000);
    let early = connect(&mut s, v5("early"));
    subscribe(&mut s, early, "r", QoS::AtLeastOnce);
    assert_eq!(received(&s, early), [("r".into(), "old".into(), Some(1))]);
    wait(&mut s, 1_250);
    assert_eq!(s.broker.retained(), 0);
    let late = connect(&mut s, v5("late"));
    subscribe(&mut s, late, "r", QoS::AtLeastOnce);
    assert_eq!(received(&s, late), []);
    clean(s);
}

#[test]
fn two_members_of_a_shared_group_split_a_stream() {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut s = sim(BrokerConfig::default());
        let a = connect(&mut s, v5("a"));
        let b = connect(&mut s, v5("b"));
        subscribe(&mut s, a, "$share/g/s/#", qos);
        subscribe(&mut s, b, "$share/g/s/#", qos);
        assert_eq!(s.broker.shared_members("g", "s/#"), ["a", "b"]);
        let publ = connect(&mut s, v5("pub"));
        for i in 0..10 {
            publish(&mut s, publ, "s/x", &format!("m{i}"), qos, None);
        }
        let (ga, gb) = (payloads(&s, a), payloads(&s, b));
        assert_eq!(ga, ["m0", "m2", "m4", "m6", "m8"], "{qos:?}");
        assert_eq!(gb, ["m1", "m3", "m5", "m7", "m9"], "{qos:?}");
        clean(s);
    }
}

#[test]
fn a_departing_member_hands_its_unacknowledged_deliveries_over() {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut s = sim(BrokerConfig::default());
        let a = connect(&mut s, v5("a"));
        let b = connect(&mut s, v5("b"));
        subscribe(&mut s, a, "$share/g/s/#", qos);
        subscribe(&mut s, b, "$share/g/s/#", qos);
        let publ = connect(&mut s, v5("pub"));
        // Four publishes reach the broker; nothing is written to `a`
        // before its connection (and its clean session) ends.
        let ledger = s.ledger.clone();
        let mut ops = Vec::new();
        for i in 0..4 {
            let mut p = Publish::new(
                MqttString::new("s/x").unwrap(),
                Bytes::from(format!("m{i}")),
            );
            p.qos = qos;
            let op = request::publish_packet(&ledger, Version::V5, p).unwrap();
            s.client(publ).unwrap().send_request(&op, s.now_ms).unwrap();
            assert!(s.write(publ, mqtls_harness::sim::Dir::Up));
            ops.push(op);
        }
        s.drop_link(a);
        s.run(10_000);
        for op in &ops {
            reaped_ok(op);
        }
        let mut got = payloads(&s, b);
        got.sort();
        assert_eq!(
            got,
            ["m0", "m1", "m2", "m3"],
            "{qos:?}: none lost, none twice"
        );
        assert_eq!(s.broker.shared_members("g", "s/#"), ["b"]);
        clean(s);
    }
}

#[test]
fn a_shared_subscription_gets_no_retained_message() {
    let mut s = sim(BrokerConfig::default());
    let publ = connect(&mut s, v5("pub"));
    let ledger = s.ledger.clone();
    let op = request::publish(
        &ledger,
        Version::V5,
        "s/r",
        Bytes::from_static(b"kept"),
        QoS::AtLeastOnce,
        true,
    )
    .unwrap();
    s.client(publ).unwrap().send_request(&op, 0).unwrap();
    s.run(10_000);
    reaped_ok(&op);
    let a = connect(&mut s, v5("a"));
    subscribe(&mut s, a, "$share/g/s/#", QoS::AtLeastOnce);
    assert_eq!(received(&s, a), []);
    clean(s);
}

/// The CONNACK of `cfg` against a broker capping keep-alive at 60 s.
fn connack_with_cap(cfg: ClientConfig) -> (Option<codec::Connack>, Outcome, u64) {
    let mut s = sim(BrokerConfig {
        max_keep_alive: Some(60),
        ..Default::default()
    });
    let version = cfg.version;
    let (link, op) = s.connect(cfg);
    s.run(10_000);
    let ka = s.links[link].conn.keep_alive_secs();
    let r = request::reap(&op, "test").expect("finished");
    let ack = r.result.map(|m| {
        let data = m.data("test: CONNACK").unwrap();
        m.release("test: CONNACK");
        match codec::decode(&data, version) {
            Ok(Packet::Connack(c)) => c,
            other => panic!("not a CONNACK: {other:?}"),
        }
    });
    clean(s);
    (ack, r.outcome, ka)
}

#[test]
fn max_keep_alive_caps_mqtt5_clients_and_refuses_311_ones_over_it() {
    let asks = |version, keep_alive_secs| ClientConfig {
        version,
        client_id: "k".into(),
        keep_alive_secs,
        ..Default::default()
    };
    let (ack, outcome, ka) = connack_with_cap(asks(Version::V5, 120));
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(ack.unwrap().properties.server_keep_alive, Some(60));
    assert_eq!(ka, 60);
    let (ack, _, ka) = connack_with_cap(asks(Version::V5, 30));
    assert_eq!(ack.unwrap().properties.server_keep_alive, None);
    assert_eq!(ka, 30);
    let (ack, _, ka) = connack_with_cap(asks(Version::V5, 0));
    assert_eq!(ack.unwrap().properties.server_keep_alive, Some(60));
    assert_eq!(ka, 60);
    // The CONNACK carries the refusal (the connect operation itself ends
    // with it as its result, as for any CONNACK).
    let (ack, _, _) = connack_with_cap(asks(Version::V311, 120));
    assert_eq!(
        ack.map(|a| a.reason),
        Some(codec::ReasonCode::ClientIdentifierNotValid)
    );
}

#[test]
fn connack_advertises_what_the_broker_supports() {
    let (ack, _, _) = connack_with_cap(v5("c"));
    let p = ack.unwrap().properties;
    assert_eq!(p.shared_subscription_available, Some(true));
    assert_eq!(p.wildcard_subscription_available, Some(true));
    assert_eq!(p.subscription_identifiers_available, Some(true));
    assert_eq!(p.retain_available, Some(true));
    // Inbound aliases are refused: Topic Alias Maximum absent means 0.
    assert_eq!(p.topic_alias_maximum, None);
}

fn raw_connect(id: &str, alias_max: u16) -> Bytes {
    let c = Connect {
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::new(id).unwrap(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties {
            topic_alias_maximum: Some(alias_max),
            ..Default::default()
        },
    };
    encode(&Packet::Connect(Box::new(c)))
}

fn encode(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    codec::encode(p, Version::V5, &mut b).unwrap();
    b.freeze()
}

fn raw_publishes(s: &mut Sim, link: usize) -> Vec<Publish> {
    let mut d = codec::FrameDecoder::new(Some(Version::V5), 1 << 20);
    d.extend(&std::mem::take(&mut s.links[link].raw_received));
    let mut out = Vec::new();
    while let Ok(Some(p)) = d.next_packet() {
        if let Packet::Publish(p) = p {
            out.push(p);
        }
    }
    out
}

#[test]
fn outbound_topic_aliases_are_assigned_once_per_connection() {
    let mut s = sim(BrokerConfig::default());
    let raw = s.connect_raw();
    s.feed(raw, &raw_connect("aliased", 1));
    let sub = Subscribe {
        packet_id: 1,
        filters: vec![Subscription {
            filter: MqttString::new("a/#").unwrap(),
            options: SubscriptionOptions::default(),
        }],
        properties: Default::default(),
    };
    s.feed(raw, &encode(&Packet::Subscribe(sub)));
    s.run(10_000);
    let publ = connect(&mut s, v5("pub"));
    for t in ["a/x", "a/x", "a/y", "a/x"] {
        publish(&mut s, publ, t, "p", QoS::AtMostOnce, None);
    }
    let got: Vec<(String, Option<u16>)> = raw_publishes(&mut s, raw)
        .into_iter()
        .map(|p| (p.topic.as_str().to_string(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        got,
        [
            ("a/x".to_string(), Some(1)),
            (String::new(), Some(1)),
            ("a/y".to_string(), None),
            (String::new(), Some(1)),
        ]
    );
    clean(s);
}

#[test]
fn our_client_resolves_the_aliases_and_a_new_connection_starts_without_them() {
    let mut s = sim(BrokerConfig::default());
    let cfg = ClientConfig {
        topic_alias_maximum: 4,
        ..persistent("sub", 60)
    };
    let sub = connect(&mut s, cfg.clone());
    subscribe(&mut s, sub, "a/#", QoS::AtLeastOnce);
    let publ = connect(&mut s, v5("pub"));
    publish(&mut s, publ, "a/x", "1", QoS::AtLeastOnce, None);
    publish(&mut s, publ, "a/x", "2", QoS::AtLeastOnce, None);
    let topics: Vec<String> = received(&s, sub).into_iter().map(|r| r.0).collect();
    assert_eq!(topics, ["a/x", "a/x"]);
    assert_eq!(s.links[sub].conn.aliases().map(|t| t.len()), Some(1));
    let kernel = s.client(sub).unwrap().clone();
    s.drop_link(sub);
    let (again, op) = s.reconnect(kernel);
    s.run(10_000);
    reaped_ok(&op);
    assert_eq!(s.links[again].conn.aliases().map(|t| t.len()), Some(0));
    publish(&mut s, publ, "a/x", "3", QoS::AtLeastOnce, None);
    assert_eq!(received(&s, again), [("a/x".into(), "3".into(), None)]);
    clean(s);
}

/// The broker never accepts an Authentication Method, so an AUTH from a
/// connected MQTT 5 client is a Protocol Error, said in a DISCONNECT it can
/// encode (0x8C Bad Authentication Method is not one DISCONNECT may carry).
#[test]
fn an_auth_packet_is_a_protocol_error_with_a_disconnect() {
    let mut s = sim(BrokerConfig::default());
    let raw = s.connect_raw();
    s.feed(raw, &raw_connect("a", 0));
    s.run(10_000);
    let auth = codec::Auth {
        reason: codec::ReasonCode::ReAuthenticate,
        properties: codec::AuthProperties {
            authentication_method: Some(MqttString::new("SCRAM-SHA-1").unwrap()),
            ..Default::default()
        }
        .into(),
    };
    s.feed(raw, &encode(&Packet::Auth(auth)));
    s.run(10_000);
    let mut d = codec::FrameDecoder::new(Some(Version::V5), 1 << 20);
    d.extend(&std::mem::take(&mut s.links[raw].raw_received));
    let mut reasons = Vec::new();
    while let Ok(Some(p)) = d.next_packet() {
        if let Packet::Disconnect(x) = p {
            reasons.push(x.reason);
        }
    }
    assert_eq!(reasons, [codec::ReasonCode::ProtocolError]);
    clean(s);
}
