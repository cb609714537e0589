//! Each fault's "sequence that shows it" (ZOO.md, last column), scripted
//! over the in-memory transport.
//!
//! These are the bug reports as runnable steps. Run with the fault off they
//! must audit clean; with the fault on, the ledger must report the
//! violation by itself. The detection matrix uses them as its
//! `recipe` engine, and `mqtls zoo --show FAULT` prints the history they
//! produce.

use crate::broker::BrokerConfig;
use crate::client::{ClientConfig, request};
use crate::codec::{MqttString, QoS, Version, Will};
use crate::faults::{Fault, FaultSet};
use crate::ledger::{Audit, Ledger, Mode, Op};
use crate::sim::{Dir, Sim};
use bytes::Bytes;

/// The malicious SUBSCRIBE of NanoNNG 1505: its second filter claims 100
/// bytes.
pub const NANONNG_1505_BYTES: [u8; 14] = [
    0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78, 0x78, 0x00,
];

/// A script over one sim: the sim, and the client configs it connects.
struct Script {
    sim: Sim,
    faults: FaultSet,
    version: Version,
}

impl Script {
    fn new(faults: FaultSet) -> Self {
        let cfg = BrokerConfig {
            faults,
            ..Default::default()
        };
        Script {
            sim: Sim::new(Ledger::new(Mode::Full), cfg),
            faults,
            version: Version::V311,
        }
    }

    fn ledger(&self) -> crate::sync::Arc<Ledger> {
        self.sim.ledger.clone()
    }

    /// Connects a client and reaps its CONNACK.
    fn client(&mut self, id: &str) -> usize {
        let cfg = ClientConfig {
            version: self.version,
            client_id: id.into(),
            faults: self.faults,
            ..Default::default()
        };
        self.client_with(cfg)
    }

    /// Connects a client built from `cfg` and reaps its CONNACK.
    fn client_with(&mut self, cfg: ClientConfig) -> usize {
        let (i, op) = self.sim.connect(cfg);
        self.sim.run(10_000);
        self.reap(&op);
        i
    }

    fn reap(&self, op: &Op) {
        request::reap_all(op, "caller: reap");
    }

    fn subscribe(&mut self, link: usize, filter: &str, qos: QoS) -> Option<Op> {
        let op = request::subscribe(&self.ledger(), self.version, &[(filter, qos)]).ok()?;
        self.sim
            .client(link)?
            .send_request(&op, self.sim.now_ms)
            .ok()?;
        Some(op)
    }

    fn publish(&mut self, link: usize, topic: &str, qos: QoS, retain: bool) -> Option<Op> {
        let op = request::publish(
            &self.ledger(),
            self.version,
            topic,
            Bytes::from_static(b"payload"),
            qos,
            retain,
        )
        .ok()?;
        let c = self.sim.client(link)?.clone();
        if qos == QoS::AtMostOnce {
            c.publish_qos0(&op);
        } else {
            c.send_request(&op, self.sim.now_ms).ok()?;
        }
        Some(op)
    }

    /// The virtual clock moves on by `ms` in the shell timer's 250 ms
    /// steps, everything queued written in between.
    fn wait(&mut self, ms: u64) {
        for _ in 0..ms / 250 {
            self.sim.advance(250);
            self.sim.run(10_000);
        }
    }

    fn consume_all(&mut self) {
        for l in &self.sim.links {
            if let Some(c) = &l.client {
                while let Some(r) = c.take_received() {
                    request::consume(r.msg);
                }
            }
        }
    }

    fn finish(mut self, ops: &[Op]) -> Audit {
        self.consume_all();
        self.sim.shutdown();
        for op in ops {
            self.reap(op);
        }
        self.consume_all();
        self.sim.ledger.audit()
    }
}

/// Runs the reproduction of `fault` with `faults` switched on (pass
/// `FaultSet::NONE` for the control run). `None` when the fault has no
/// sequential reproduction (it needs an interleaving: see the loom models).
pub fn reproduce(fault: Fault, faults: FaultSet) -> Option<Audit> {
    crate::ledger::with_actor("caller", || script(fault, faults))
}

fn script(fault: Fault, faults: FaultSet) -> Option<Audit> {
    let mut s = Script::new(faults);
    let mut ops = Vec::new();
    match fault {
        // Subscribe over TLS; the write completes and frees the only
        // reference; the connection closes and frees it again.
        Fault::Nanomq1766 => {
            let c = s.client("seed");
            ops.extend(s.subscribe(c, "topic3", QoS::AtMostOnce));
            s.sim.write(c, Dir::Up);
            s.sim.drop_link(c);
        }
        // SUBACK releases the op's message but leaves it in the slot; the
        // caller's cleanup releases it again.
        Fault::Nanonng23d0eb290 => {
            let c = s.client("c");
            ops.extend(s.subscribe(c, "t", QoS::AtLeastOnce));
            s.sim.run(10_000);
        }
        // Publish a retained message over TLS, then subscribe: the next
        // completion releases the stale write slot again.
        Fault::Nanonng230 => {
            let p = s.client("pub");
            ops.extend(s.publish(p, "r", QoS::AtLeastOnce, true));
            s.sim.run(10_000);
            let c = s.client("sub");
            ops.extend(s.subscribe(c, "r", QoS::AtLeastOnce));
            s.sim.run(10_000);
        }
        // Publish (QoS 1 delivery), let the write complete, close the
        // subscriber's connection.
        Fault::Nanomq531 => {
            let sub = s.client("sub");
            ops.extend(s.subscribe(sub, "t", QoS::AtLeastOnce));
            s.sim.run(10_000);
            let p = s.client("pub");
            ops.extend(s.publish(p, "t", QoS::AtLeastOnce, false));
            s.sim.write(p, Dir::Up);
            s.sim.write(sub, Dir::Down);
            s.sim.drop_link(sub);
        }
        // Retain a message, subscribe twice.
        Fault::Nanomq485 => {
            let p = s.client("pub");
            ops.extend(s.publish(p, "r", QoS::AtMostOnce, true));
            s.sim.run(10_000);
            for id in ["a", "b"] {
                let c = s.client(id);
                ops.extend(s.subscribe(c, "r", QoS::AtMostOnce));
                s.sim.run(10_000);
            }
        }
        // Publish to a topic with two matching subscribers.
        Fault::FanoutMissingRetain => {
            for id in ["a", "b"] {
                let c = s.client(id);
                ops.extend(s.subscribe(c, "t/#", QoS::AtMostOnce));
            }
            s.sim.run(10_000);
            let p = s.client("pub");
            ops.extend(s.publish(p, "t/1", QoS::AtMostOnce, false));
            s.sim.run(10_000);
        }
        // Queue several publishes, close before they are written; the
        // caller's error handler frees what it finds on its ops.
        Fault::Nanomq1329 => {
            let c = s.client("c");
            for _ in 0..3 {
                ops.extend(s.publish(c, "t", QoS::AtMostOnce, false));
            }
            s.sim.drop_link(c);
        }
        // Cancel a pending subscribe, then let its SUBACK arrive.
        Fault::Nng355 => {
            let c = s.client("c");
            let op = s.subscribe(c, "t", QoS::AtMostOnce)?;
            s.sim.write(c, Dir::Up);
            s.sim.client(c)?.cancel(&op);
            s.sim.run(10_000);
            ops.push(op);
        }
        // Cancel a pending subscribe, then close.
        Fault::Nanonng1578 => {
            let c = s.client("c");
            let op = s.subscribe(c, "t", QoS::AtMostOnce)?;
            s.sim.client(c)?.cancel(&op);
            s.sim.drop_link(c);
            ops.push(op);
        }
        // The malicious SUBSCRIBE bytes.
        Fault::Nanonng1505 => {
            let raw = s.sim.connect_raw();
            s.sim.feed(
                raw,
                &[
                    0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00,
                    0x00,
                ],
            );
            s.sim.feed(raw, &NANONNG_1505_BYTES);
            s.sim.run(10_000);
        }
        // SUBACK racing the timeout: only an interleaving shows it.
        Fault::Nanonng83430191f => return None,
        // A lock dropped between a lookup and its use: a recipe runs each
        // call to completion, so nothing runs inside the window.
        Fault::Nanomq992557ab | Fault::NanonngF135bbc6b => return None,
        // mosquitto issue 1401: a will delay (10 s) longer than the session
        // expiry (2 s); the connection drops, the session ends and
        // publishes the will, then the delay passes.
        Fault::MosquittoCve201911778 => {
            s.version = Version::V5;
            let w = s.client("watch");
            ops.extend(s.subscribe(w, "w/#", QoS::AtLeastOnce));
            s.sim.run(10_000);
            let mut will = Will {
                topic: MqttString::new("w/d").ok()?,
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
            };
            will.properties.will_delay_interval = Some(10);
            let d = s.client_with(ClientConfig {
                version: Version::V5,
                client_id: "d".into(),
                clean_start: false,
                session_expiry_secs: 2,
                will: Some(will),
                faults,
                ..Default::default()
            });
            s.sim.drop_link(d);
            s.wait(11_000);
        }
        // `mosquitto_sub -t aaa -t +`, `mosquitto_pub -t aaa -m aaa`.
        Fault::Nanomq360 => {
            let c = s.client("c");
            ops.extend(s.subscribe(c, "aaa", QoS::AtMostOnce));
            ops.extend(s.subscribe(c, "+", QoS::AtMostOnce));
            s.sim.run(10_000);
            let p = s.client("p");
            ops.extend(s.publish(p, "aaa", QoS::AtMostOnce, false));
            s.sim.run(10_000);
        }
        // Two members of `$share/g/s`; a QoS 1 publish goes to the first,
        // whose connection (and clean session) ends before it acknowledged
        // it: the delivery is handed to the second.
        Fault::SharedHandover => {
            s.version = Version::V5;
            let a = s.client("a");
            let b = s.client("b");
            ops.extend(s.subscribe(a, "$share/g/s", QoS::AtLeastOnce));
            ops.extend(s.subscribe(b, "$share/g/s", QoS::AtLeastOnce));
            s.sim.run(10_000);
            let p = s.client("p");
            ops.extend(s.publish(p, "s", QoS::AtLeastOnce, false));
            s.sim.write(p, Dir::Up);
            s.sim.drop_link(a);
            s.sim.run(10_000);
        }
    }
    Some(s.finish(&ops))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::ledger::ViolationKind;

    fn expected(f: Fault) -> ViolationKind {
        match f {
            // The other subscriber's write reads the freed message first.
            Fault::Nanomq485 | Fault::FanoutMissingRetain => ViolationKind::UseAfterRelease,
            // The delivery reads the entry the merge freed (the ASan report
            // of NanoMQ 360: heap-use-after-free READ in foreach_client).
            Fault::Nanomq360 => ViolationKind::UseAfterRelease,
            // The timer publishes the will the session end already freed.
            Fault::MosquittoCve201911778 => ViolationKind::UseAfterRelease,
            // One reference short across the hand-over: the next member's
            // PUBACK releases what its write already freed.
            Fault::SharedHandover => ViolationKind::DoubleRelease,
            Fault::Nng355 => ViolationKind::OpTouchedAfterFinish,
            Fault::Nanonng1578 => ViolationKind::OpNeverFinished,
            _ => ViolationKind::DoubleRelease,
        }
    }

    #[test]
    fn every_recipe_is_clean_with_the_fault_off_and_caught_with_it_on() {
        for f in Fault::ALL {
            let Some(clean) = reproduce(f, FaultSet::NONE) else {
                continue;
            };
            let shown: Vec<String> = clean.violations.iter().map(|v| v.to_string()).collect();
            assert!(clean.is_clean(), "{f} control run: {shown:#?}");
            let Some(caught) = reproduce(f, FaultSet::only(f)) else {
                panic!("{f} has a control run but no faulty one");
            };
            let kinds: Vec<ViolationKind> = caught.violations.iter().map(|v| v.kind).collect();
            assert!(
                kinds.contains(&expected(f)),
                "{f}: expected {:?}, got {kinds:?}",
                expected(f)
            );
        }
    }
}

/// The recipes as a detection engine: one scripted run per cell.
pub struct RecipeEngine;

impl super::matrix::DetectionEngine for RecipeEngine {
    fn engine(&self) -> super::matrix::Engine {
        super::matrix::Engine::Recipe
    }

    fn run(
        &self,
        faults: FaultSet,
        target: Option<Fault>,
        _budget: std::time::Duration,
    ) -> super::matrix::EngineRun {
        // The control run replays every recipe with all faults off.
        let (audits, applicable) = match target {
            Some(f) => {
                let a = reproduce(f, faults);
                let applicable = a.is_some();
                (a.into_iter().collect::<Vec<_>>(), applicable)
            }
            None => (
                Fault::ALL
                    .iter()
                    .filter_map(|f| reproduce(*f, faults))
                    .collect(),
                true,
            ),
        };
        let iterations = audits.len() as u64;
        let violation = audits
            .into_iter()
            .find_map(|a| a.violations.into_iter().next());
        super::matrix::EngineRun {
            applicable,
            reproduction: target
                .filter(|_| violation.is_some())
                .map(|f| format!("`mqtls zoo --show {f}` (the ZOO.md sequence)")),
            violation,
            kind: None,
            failure: None,
            iterations,
        }
    }
}
