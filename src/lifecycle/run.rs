//! Runs one action sequence against a [`Driver`] and the [`Model`], with
//! the checks after every step and at quiescence.
//!
//! The caller's side is part of the system under test: after every step
//! each finished operation is reaped (`request::reap`: whatever the SDK
//! left in the slot and the CONNACK/SUBACK are the caller's to free) and
//! every delivered message is consumed.

use super::action::{
    Action, CLIENTS, EXPIRING_TOPIC, EXPIRY_SECS, REQUEST_TIMEOUT_MS, SHORT_SESSION_SECS, Session,
    WILL_DELAY_SECS,
};
use super::driver::Driver;
use super::model::{Model, PubSnap, SessionOptions, SubSnap};
use crate::client::{ClientConfig, ClientKernel, request};
use crate::codec::{MqttString, Publish, QoS, Version, Will};
use crate::faults::FaultSet;
use crate::kernels::outbox::WriteResult;
use crate::ledger::{Audit, Op, Outcome};
use crate::sync::Arc;
use bytes::Bytes;

/// Why a sequence failed.
pub type Failure = String;

enum Req {
    Connect { link: usize },
    Subscribe(SubSnap),
    Unsubscribe(&'static str),
    Publish(PubSnap),
}

struct Tracked {
    op: Op,
    slot: usize,
    kernel: u32,
    req: Option<Req>,
}

struct Slot {
    kernel: Option<Arc<ClientKernel>>,
    /// Kernels built for this slot so far (the current one's number).
    generation: u32,
    link: Option<usize>,
}

struct Runner<D: Driver> {
    d: D,
    faults: FaultSet,
    model: Model,
    slots: Vec<Slot>,
    /// Every kernel ever built: (slot, generation, kernel).
    kernels: Vec<(usize, u32, Arc<ClientKernel>)>,
    open_links: Vec<usize>,
    ops: Vec<Tracked>,
    next_payload: u64,
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// What a client's CONNECT asks for in MQTT 5, for the model.
fn session_options(cfg: &ClientConfig) -> SessionOptions {
    let five = cfg.version == Version::V5;
    let secs_ms = |s: u32| u64::from(s) * 1000;
    SessionOptions {
        // An hour never passes in a sequence; 0 ends with the connection.
        expiry_ms: (five && !cfg.clean_start && cfg.session_expiry_secs < 3_600)
            .then(|| secs_ms(cfg.session_expiry_secs)),
        will_delay_ms: cfg
            .will
            .as_ref()
            .and_then(|w| w.properties.will_delay_interval)
            .filter(|d| five && *d > 0)
            .map(secs_ms),
    }
}

fn qos_u8(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// How a sequence ends before the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything queued is written and every persistent client comes
    /// back; then the model's promises are checked (the model test).
    Settle,
    /// Every connection closes where it stands and the callers reap; no
    /// promise is checked (fault detection: the shortest sequences then
    /// end the way the bug reports do, with the connection closing).
    Close,
}

/// Runs `actions` against `driver` with the client kernels built with
/// `faults`. `Err` describes the first broken rule: a ledger violation
/// (after any step), a broken MQTT promise, an operation left unfinished,
/// or a leak at the end.
pub fn run_sequence<D: Driver>(
    driver: D,
    faults: FaultSet,
    actions: &[Action],
    ending: Ending,
) -> Result<(), Failure> {
    let mut r = Runner {
        d: driver,
        faults,
        model: Model::new(usize::from(CLIENTS)),
        slots: (0..CLIENTS)
            .map(|_| Slot {
                kernel: None,
                generation: 0,
                link: None,
            })
            .collect(),
        kernels: Vec::new(),
        open_links: Vec::new(),
        ops: Vec::new(),
        next_payload: 0,
    };
    for (i, a) in actions.iter().enumerate() {
        r.step(a)
            .and_then(|()| r.observe())
            .map_err(|e| format!("step {i} {a:?}: {e}"))?;
    }
    match ending {
        Ending::Settle => r.quiesce().map_err(|e| format!("at quiescence: {e}"))?,
        Ending::Close => r
            .close_all()
            .map_err(|e| format!("closing every connection: {e}"))?,
    }
    let audit = r.d.finish();
    if !audit.is_clean() {
        return Err(format!("audit after shutdown: {}", describe(&audit)));
    }
    Ok(())
}

fn describe(audit: &Audit) -> String {
    audit
        .violations
        .iter()
        .map(|v| v.diagnosis())
        .collect::<Vec<_>>()
        .join("\n")
}

impl<D: Driver> Runner<D> {
    fn link(&self, client: u8) -> Option<usize> {
        self.slots[usize::from(client)].link
    }

    fn kernel(&self, client: u8) -> Option<(Arc<ClientKernel>, u32)> {
        let s = &self.slots[usize::from(client)];
        s.kernel.clone().map(|k| (k, s.generation))
    }

    fn track(&mut self, op: Op, slot: usize, kernel: u32, req: Req) {
        self.ops.push(Tracked {
            op,
            slot,
            kernel,
            req: Some(req),
        });
    }

    fn step(&mut self, a: &Action) -> Result<(), Failure> {
        match *a {
            Action::Connect {
                client,
                version,
                session,
                will,
                will_delay,
            } => self.connect(client, version, session, will, will_delay),
            Action::Reconnect { client } => {
                self.reconnect(client);
                Ok(())
            }
            Action::Subscribe {
                client,
                filter,
                qos,
            } => self.subscribe(client, filter, qos),
            Action::Unsubscribe { client, filter } => self.unsubscribe(client, filter),
            Action::Publish {
                client,
                topic,
                qos,
                retain,
            } => self.publish(client, topic, qos, retain),
            Action::WriteStarts { client, dir } => {
                if let Some(l) = self.link(client) {
                    self.d.start_write(l, dir);
                }
                Ok(())
            }
            Action::WriteCompletes { client, dir } => {
                if let Some(l) = self.link(client)
                    && self.d.start_write(l, dir)
                {
                    self.d.finish_write(l, dir, WriteResult::Complete);
                }
                Ok(())
            }
            Action::WriteFails { client, dir } => {
                if let Some(l) = self.link(client)
                    && self.d.start_write(l, dir)
                {
                    let why = WriteResult::Failed("injected write error".into());
                    self.d.finish_write(l, dir, why);
                }
                Ok(())
            }
            Action::ConnectionDrops { client } => {
                if let Some(l) = self.link(client) {
                    self.d.drop_link(l);
                }
                Ok(())
            }
            Action::DropsMidWrite {
                client,
                dir,
                completes,
            } => {
                if let Some(l) = self.link(client) {
                    self.d.start_write(l, dir);
                    let late = if completes {
                        WriteResult::Complete
                    } else {
                        WriteResult::Failed("write error after the close".into())
                    };
                    self.d.drop_link_then_finish(l, dir, late);
                }
                Ok(())
            }
            Action::TimePasses { ms } => {
                self.d.advance(ms);
                self.model.time_passes(ms);
                Ok(())
            }
            Action::Cancel { client, nth } => self.cancel(client, nth),
            Action::Settle => {
                self.d.settle();
                Ok(())
            }
            Action::BrokerRestart => {
                self.d.restart_broker();
                self.closed_links();
                self.model.broker_restart();
                Ok(())
            }
        }
    }

    fn connect(
        &mut self,
        client: u8,
        version: Version,
        session: Session,
        will: bool,
        will_delay: bool,
    ) -> Result<(), Failure> {
        let slot = usize::from(client);
        let persistent = session != Session::Clean;
        let five = version == Version::V5;
        let will_payload = will.then(|| {
            self.next_payload += 1;
            format!("will-{}", self.next_payload)
        });
        let cfg = ClientConfig {
            version,
            client_id: format!("c{slot}"),
            clean_start: !persistent,
            // Keep-alive off: time only moves request timeouts.
            keep_alive_secs: 0,
            session_expiry_secs: match session {
                Session::Clean => 0,
                Session::Persistent => 3_600,
                Session::Expiring => SHORT_SESSION_SECS,
            },
            will: will_payload.as_ref().map(|p| {
                let mut w = Will {
                    topic: MqttString::new(format!("w/c{slot}")).expect("valid topic"),
                    payload: Bytes::from(p.clone()),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    properties: Default::default(),
                };
                if will_delay && five {
                    w.properties.will_delay_interval = Some(WILL_DELAY_SECS);
                }
                w
            }),
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            faults: self.faults,
            ..Default::default()
        };
        let (link, kernel, op) = self.d.connect(cfg);
        let opts = session_options(kernel.config());
        let s = &mut self.slots[slot];
        s.generation += 1;
        s.kernel = Some(kernel.clone());
        s.link = Some(link);
        let generation = s.generation;
        self.kernels.push((slot, generation, kernel));
        self.open_links.push(link);
        self.model
            .connect_sent(slot, link, persistent, will_payload);
        self.model.session_options(link, opts);
        self.track(op, slot, generation, Req::Connect { link });
        Ok(())
    }

    fn reconnect(&mut self, client: u8) {
        let slot = usize::from(client);
        let Some((kernel, generation)) = self.kernel(client) else {
            return;
        };
        if self.slots[slot].link.is_some_and(|l| self.d.is_open(l)) {
            return;
        }
        let (link, op) = self.d.reconnect(&kernel);
        self.slots[slot].link = Some(link);
        self.open_links.push(link);
        let cfg = kernel.config();
        let will = cfg
            .will
            .as_ref()
            .map(|w| String::from_utf8_lossy(&w.payload).into_owned());
        self.model.connect_sent(slot, link, !cfg.clean_start, will);
        self.model.session_options(link, session_options(cfg));
        self.track(op, slot, generation, Req::Connect { link });
    }

    fn send(&mut self, kernel: &ClientKernel, op: &Op) -> Result<(), Failure> {
        kernel
            .send_request(op, self.d.now_ms())
            .map(|_| ())
            .map_err(|e| format!("send_request refused: {e}"))
    }

    fn subscribe(&mut self, client: u8, filter: &'static str, q: u8) -> Result<(), Failure> {
        let Some((kernel, generation)) = self.kernel(client) else {
            return Ok(());
        };
        let ledger = self.d.ledger();
        let op = request::subscribe(&ledger, kernel.config().version, &[(filter, qos(q))])
            .map_err(|e| e.to_string())?;
        let slot = usize::from(client);
        let snap = self.model.subscribe_sent(slot, filter, q);
        self.send(&kernel, &op)?;
        self.track(op, slot, generation, Req::Subscribe(snap));
        Ok(())
    }

    fn unsubscribe(&mut self, client: u8, filter: &'static str) -> Result<(), Failure> {
        let Some((kernel, generation)) = self.kernel(client) else {
            return Ok(());
        };
        let ledger = self.d.ledger();
        let op = request::unsubscribe(&ledger, kernel.config().version, &[filter])
            .map_err(|e| e.to_string())?;
        let slot = usize::from(client);
        self.model.unsubscribe_sent(slot, filter);
        self.send(&kernel, &op)?;
        self.track(op, slot, generation, Req::Unsubscribe(filter));
        Ok(())
    }

    fn publish(
        &mut self,
        client: u8,
        topic: &'static str,
        q: u8,
        retain: bool,
    ) -> Result<(), Failure> {
        let Some((kernel, generation)) = self.kernel(client) else {
            return Ok(());
        };
        self.next_payload += 1;
        let payload = format!("p{}", self.next_payload);
        let ledger = self.d.ledger();
        let version = kernel.config().version;
        let expires = topic == EXPIRING_TOPIC && version == Version::V5;
        let mut p = Publish::new(
            MqttString::new(topic).map_err(|e| e.to_string())?,
            Bytes::from(payload.clone()),
        );
        p.qos = qos(q);
        p.retain = retain;
        if expires {
            p.properties.message_expiry_interval = Some(EXPIRY_SECS);
        }
        let op = request::publish_packet(&ledger, version, p).map_err(|e| e.to_string())?;
        let slot = usize::from(client);
        let snap = self.model.publish_sent(op.id(), topic, q, retain, &payload);
        if expires {
            self.model
                .publish_expires(&payload, u64::from(EXPIRY_SECS) * 1000);
        }
        if q == 2 {
            self.model.qos2_sent(slot, generation, &payload);
        }
        if q == 0 {
            kernel.publish_qos0(&op);
        } else {
            self.send(&kernel, &op)?;
        }
        self.track(op, slot, generation, Req::Publish(snap));
        Ok(())
    }

    fn cancel(&mut self, client: u8, nth: u8) -> Result<(), Failure> {
        let slot = usize::from(client);
        let Some((kernel, generation)) = self.kernel(client) else {
            return Ok(());
        };
        let waiting: Vec<Op> = self
            .ops
            .iter()
            .filter(|t| t.slot == slot && t.kernel == generation && t.req.is_some())
            .filter(|t| !matches!(t.req, Some(Req::Connect { .. })))
            .filter(|t| !t.op.is_finished())
            .map(|t| t.op.clone())
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let op = &waiting[usize::from(nth) % waiting.len()];
        if kernel.cancel(op) && !op.is_finished() {
            return Err(format!(
                "cancel took {op:?} out of the pending table but never finished it: its waiter hangs"
            ));
        }
        Ok(())
    }

    /// Links that ended since the last look, in the order they were opened.
    fn closed_links(&mut self) {
        let (closed, open): (Vec<usize>, Vec<usize>) =
            self.open_links.iter().partition(|l| !self.d.is_open(**l));
        self.open_links = open;
        for l in closed {
            self.model.link_closed(l);
        }
    }

    /// After a step: closes, finished operations (reaped as the caller
    /// does), deliveries, and the ledger.
    fn observe(&mut self) -> Result<(), Failure> {
        self.closed_links();
        for i in 0..self.ops.len() {
            let t = &mut self.ops[i];
            if t.req.is_none() || !t.op.is_finished() {
                continue;
            }
            let Some(reaped) = request::reap(&t.op, "caller: reap finished op") else {
                continue;
            };
            if let Some(m) = reaped.result {
                m.release("caller: free the acknowledgement");
            }
            let ok = reaped.outcome == Outcome::Success;
            match t.req.take() {
                Some(Req::Connect { link }) if ok => self.model.connack(link),
                Some(Req::Subscribe(snap)) => self.model.subscribe_done(snap, ok),
                Some(Req::Publish(snap)) => self.model.publish_done(snap, ok),
                Some(Req::Unsubscribe(filter)) => self.model.unsubscribe_done(t.slot, filter, ok),
                _ => {}
            }
        }
        for (slot, generation, kernel) in &self.kernels {
            while let Some(r) = kernel.take_received() {
                let payload = r
                    .msg
                    .data("caller: read delivery")
                    .map_err(|e| e.to_string());
                let retain = r.publish.retain;
                let q = qos_u8(r.publish.qos);
                let topic = r.publish.topic.as_str().to_string();
                let interval = r.publish.properties.message_expiry_interval;
                request::consume(r.msg);
                let payload = String::from_utf8_lossy(&payload?).into_owned();
                // 3.1.1 has no properties to carry it.
                if kernel.config().version == Version::V5 {
                    self.model
                        .check_expiry_interval(*slot, &payload, interval)?;
                }
                self.model
                    .delivered(*slot, *generation, &topic, &payload, q, retain)?;
            }
        }
        let ledger = self.d.ledger();
        if let Some(v) = ledger.violations().first() {
            return Err(format!("ledger violation: {}", v.diagnosis()));
        }
        Ok(())
    }

    /// Every connection drops where it stands; the callers reap.
    fn close_all(&mut self) -> Result<(), Failure> {
        for l in self.open_links.clone() {
            self.d.drop_link(l);
        }
        self.observe()
    }

    /// Everything written, every persistent client back: the promises are
    /// checked and no operation of a connected client is left open.
    fn quiesce(&mut self) -> Result<(), Failure> {
        self.d.settle();
        self.observe()?;
        for c in 0..CLIENTS {
            let persistent = self.kernel(c).is_some_and(|(k, _)| !k.config().clean_start);
            if persistent {
                self.reconnect(c);
            }
        }
        self.d.settle();
        self.observe()?;
        for t in &self.ops {
            let s = &self.slots[t.slot];
            let current = s.generation == t.kernel && s.link.is_some_and(|l| self.d.is_open(l));
            if current && !t.op.is_finished() {
                return Err(format!(
                    "{:?} of c{} is still unfinished on a connected client with nothing left to write",
                    t.op, t.slot
                ));
            }
        }
        self.model.check_promises()
    }
}
