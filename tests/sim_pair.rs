#![cfg(not(feature = "loom"))]
//! The broker and client kernels over the in-memory transport: MQTT
//! behaviour with a clean ledger, and the seed fault caught on the sequence
//! of its bug report.

use bytes::Bytes;
use mqtls_harness::broker::BrokerConfig;
use mqtls_harness::client::{ClientConfig, request};
use mqtls_harness::codec::{QoS, Version};
use mqtls_harness::faults::{Fault, FaultSet};
use mqtls_harness::ledger::{Ledger, Mode, Outcome, ViolationKind};
use mqtls_harness::sim::{Dir, Sim};

fn client(id: &str, version: Version, faults: FaultSet) -> ClientConfig {
    ClientConfig {
        version,
        client_id: id.into(),
        faults,
        ..Default::default()
    }
}

/// The caller's side of CONNECT: the CONNACK is its to free.
fn connected(op: &mqtls_harness::ledger::Op) {
    let r = request::reap(op, "test: connack").expect("connect finished");
    assert_eq!(r.outcome, Outcome::Success);
    if let Some(m) = r.result {
        m.release("test: connack");
    }
}

fn received(sim: &Sim, link: usize) -> Vec<(String, Bytes)> {
    let c = sim.client(link).unwrap();
    let mut out = Vec::new();
    while let Some(r) = c.take_received() {
        out.push((
            r.publish.topic.as_str().to_string(),
            r.msg.data("test").unwrap(),
        ));
        request::consume(r.msg);
    }
    out
}

#[test]
fn publish_subscribe_at_every_qos_audits_clean() {
    for version in [Version::V311, Version::V5] {
        let mut sim = Sim::new(Ledger::new(Mode::Full), BrokerConfig::default());
        let (sub, c1) = sim.connect(client("sub", version, FaultSet::NONE));
        let (publ, c2) = sim.connect(client("pub", version, FaultSet::NONE));
        sim.run(1000);
        connected(&c1);
        connected(&c2);

        let ledger = sim.ledger.clone();
        let s = request::subscribe(&ledger, version, &[("t/#", QoS::ExactlyOnce)]).unwrap();
        sim.client(sub).unwrap().send_request(&s, 0).unwrap();
        sim.run(1000);
        let r = request::reap(&s, "test").unwrap();
        assert_eq!(r.outcome, Outcome::Success);
        r.result.unwrap().release("test");

        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let p = request::publish(
                &ledger,
                version,
                &format!("t/{i}"),
                Bytes::from(vec![i as u8; 10]),
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
            sim.run(1000);
            assert_eq!(request::reap(&p, "test").unwrap().outcome, Outcome::Success);
        }
        let got = received(&sim, sub);
        assert_eq!(got.len(), 3, "{version}: {got:?}");
        let audit = sim.finish();
        assert!(audit.is_clean(), "{version}: {}", report(&audit));
    }
}

/// A QoS 2 publish is finished by its PUBCOMP, not its PUBREC: until then
/// its packet id stays parked (a reconnect resends the PUBREL, and a new
/// publish cannot take the id the broker still holds). Found missing by
/// cargo mutants (`reports/mutants.md`): with `Pending::ack` finishing at
/// the PUBREC every op was still finished once and the ledger was clean.
#[test]
fn qos2_publish_finishes_at_pubcomp_not_pubrec() {
    for version in [Version::V311, Version::V5] {
        let mut sim = Sim::new(Ledger::new(Mode::Full), BrokerConfig::default());
        let (publ, c) = sim.connect(client("pub", version, FaultSet::NONE));
        sim.run(1000);
        connected(&c);
        let p = request::publish(
            &sim.ledger.clone(),
            version,
            "t/2",
            Bytes::from_static(b"exactly once"),
            QoS::ExactlyOnce,
            false,
        )
        .unwrap();
        let pc = sim.client(publ).unwrap().clone();
        pc.send_request(&p, 0).unwrap();
        assert!(sim.write(publ, Dir::Up), "{version}: PUBLISH written");
        assert!(sim.write(publ, Dir::Down), "{version}: PUBREC written");
        assert!(
            request::reap(&p, "test").is_none(),
            "{version}: the publish finished at its PUBREC"
        );
        assert_eq!(pc.pending(), 1, "{version}: parked until PUBCOMP");
        sim.run(1000);
        assert_eq!(request::reap(&p, "test").unwrap().outcome, Outcome::Success);
        assert_eq!(pc.pending(), 0, "{version}");
        let audit = sim.finish();
        assert!(audit.is_clean(), "{version}: {}", report(&audit));
    }
}

#[test]
fn retained_and_will_are_delivered() {
    let mut sim = Sim::new(Ledger::new(Mode::Full), BrokerConfig::default());
    let ledger = sim.ledger.clone();
    let mut will_cfg = client("dies", Version::V5, FaultSet::NONE);
    will_cfg.will = Some(mqtls_harness::codec::Will {
        topic: mqtls_harness::codec::MqttString::new("w").unwrap(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let (publ, c1) = sim.connect(client("pub", Version::V311, FaultSet::NONE));
    let (dies, c2) = sim.connect(will_cfg);
    sim.run(1000);
    connected(&c1);
    connected(&c2);
    let p = request::publish(
        &ledger,
        Version::V311,
        "r",
        Bytes::from_static(b"kept"),
        QoS::AtLeastOnce,
        true,
    )
    .unwrap();
    sim.client(publ).unwrap().send_request(&p, 0).unwrap();
    sim.run(1000);
    for _ in 0..2 {
        let (sub, c) = sim.connect(client("", Version::V5, FaultSet::NONE));
        sim.run(1000);
        connected(&c);
        let s = request::subscribe(
            &ledger,
            Version::V5,
            &[("r", QoS::AtLeastOnce), ("w", QoS::AtLeastOnce)],
        )
        .unwrap();
        sim.client(sub).unwrap().send_request(&s, 0).unwrap();
        sim.run(1000);
        request::reap(&s, "test")
            .unwrap()
            .result
            .unwrap()
            .release("test");
        assert_eq!(
            received(&sim, sub),
            vec![("r".to_string(), Bytes::from_static(b"kept"))]
        );
        if sub == 3 {
            sim.drop_link(dies);
            sim.run(1000);
            assert_eq!(
                received(&sim, sub),
                vec![("w".to_string(), Bytes::from_static(b"gone"))]
            );
        }
    }
    let audit = sim.finish();
    assert!(audit.is_clean(), "{}", report(&audit));
}

/// NanoMQ 1766, the seed: subscribe, the write completes, the connection
/// closes, and the parked SUBSCRIBE is freed a second time.
#[test]
fn nanomq_1766_subscribe_write_completes_then_close() {
    for faults in [FaultSet::NONE, FaultSet::only(Fault::Nanomq1766)] {
        let mut sim = Sim::new(Ledger::new(Mode::Full), BrokerConfig::default());
        let ledger = sim.ledger.clone();
        let (c, op) = sim.connect(client("seed", Version::V311, faults));
        sim.run(1000);
        connected(&op);
        let s = request::subscribe(&ledger, Version::V311, &[("topic3", QoS::AtMostOnce)]).unwrap();
        sim.client(c).unwrap().send_request(&s, 0).unwrap();
        assert!(sim.write(c, Dir::Up), "the SUBSCRIBE write completes");
        sim.drop_link(c);
        let r = request::reap(&s, "caller: subscribe (error path)").unwrap();
        assert_eq!(r.outcome, Outcome::Closed);
        let audit = sim.finish();
        if faults.has(Fault::Nanomq1766) {
            let v = audit
                .violations
                .iter()
                .find(|v| v.kind == ViolationKind::DoubleRelease)
                .expect("double release found");
            let d = v.diagnosis();
            assert!(
                d.contains("SUBSCRIBE") && d.contains("client::subscribe park"),
                "{d}"
            );
        } else {
            assert!(audit.is_clean(), "{}", report(&audit));
        }
    }
}

fn report(audit: &mqtls_harness::ledger::Audit) -> String {
    audit
        .violations
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
