//! The threaded pair: one broker and its clients' kernels, wired by byte
//! pipes, every transport role an operation any thread may run.
//!
//! Unlike [`crate::sim`], nothing here is a step of one driver: a writer
//! takes a job, encodes it, and reports it done while a closer may end the
//! connection in between (so a write completes, or fails, before or after
//! `connection_lost`, in whichever order the scheduler picks); readers,
//! timers and callers run against the same kernels at the same time. The
//! scenario's threads call these operations; the final settle calls them
//! from the scenario's main thread.
//!
//! The world also watches what only concurrency can break (the semantic
//! oracles): deliveries after an UNSUBACK, anything written after a
//! DISCONNECT, QoS 1 at least once and QoS 2 exactly once.

use crate::broker::{Broker, BrokerConfig, Conn, Flow};
use crate::client::{ClientConfig, ClientFlow, ClientKernel, request};
use crate::codec::PacketType;
use crate::kernels::frame::{OutFrame, encode_job};
use crate::kernels::outbox::{Outbox, WriteResult};
use crate::ledger::{Audit, Ledger, Mode, Op, Outcome, with_actor};
use crate::lifecycle::model::matches;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering, lock};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Which side of a link a pump serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client kernel's writer and reader.
    Client,
    /// The broker connection's writer and reader.
    Broker,
}

/// One connection: a client kernel, the broker's side, and a byte pipe each
/// way.
pub struct Link {
    /// Index in the world's link list.
    pub id: usize,
    /// Client slot (`c{slot}` is its client id).
    pub slot: usize,
    /// The broker's side.
    pub conn: Arc<Conn>,
    /// The client's kernel.
    pub client: Arc<ClientKernel>,
    up: Mutex<VecDeque<Bytes>>,
    down: Mutex<VecDeque<Bytes>>,
    open: AtomicBool,
    /// The broker wrote a DISCONNECT here (takeover, MQTT 5).
    disconnect_written: AtomicBool,
}

impl Link {
    /// True until the connection ended.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

/// A request a caller sent, kept for reaping and for the oracles.
struct Sent {
    slot: usize,
    op: Op,
    what: Request,
}

/// What a sent request was.
#[derive(Debug, Clone)]
pub enum Request {
    /// CONNECT.
    Connect,
    /// SUBSCRIBE to one filter.
    Subscribe(String),
    /// UNSUBSCRIBE from one filter, on this link.
    Unsubscribe(String, usize),
    /// PUBLISH of a unique payload.
    Publish {
        /// Topic.
        topic: String,
        /// Payload (unique in the run).
        payload: String,
        /// QoS 0, 1 or 2.
        qos: u8,
    },
}

/// A message a client kernel handed to its application.
#[derive(Debug, Clone)]
struct Delivery {
    slot: usize,
    /// The kernel's link when it arrived, and the kernel (link of its first
    /// connection) it belongs to.
    link: usize,
    kernel: usize,
    topic: String,
    payload: String,
    qos: u8,
    dup: bool,
}

/// The broker, its clients' links, a clock, and what the oracles saw.
pub struct World {
    /// The ledger every kernel records into.
    pub ledger: Arc<Ledger>,
    /// The broker.
    pub broker: Broker,
    links: Mutex<Vec<Arc<Link>>>,
    /// First link of each kernel, by kernel pointer order of creation.
    kernels: Mutex<Vec<(usize, Arc<ClientKernel>)>>,
    sent: Mutex<Vec<Sent>>,
    deliveries: Mutex<Vec<Delivery>>,
    broken: Mutex<Vec<String>>,
    now_ms: AtomicU64,
    payloads: AtomicU64,
    client_faults: crate::faults::FaultSet,
}

/// How long requests wait for their acknowledgement in the scenarios.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;

impl World {
    /// A fresh broker with `faults` on (clients get the same set).
    pub fn new(faults: crate::faults::FaultSet, mode: Mode) -> Self {
        let ledger = Ledger::new(mode);
        let cfg = BrokerConfig {
            faults,
            ..Default::default()
        };
        World {
            broker: Broker::new(ledger.clone(), cfg),
            ledger,
            links: Mutex::new(Vec::new()),
            kernels: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            broken: Mutex::new(Vec::new()),
            now_ms: AtomicU64::new(0),
            payloads: AtomicU64::new(0),
            client_faults: faults,
        }
    }

    /// The clock, ms.
    pub fn now(&self) -> u64 {
        self.now_ms.load(Ordering::Acquire)
    }

    /// The client configuration of slot `c{slot}`.
    pub fn client_config(&self, slot: usize, persistent: bool) -> ClientConfig {
        ClientConfig {
            version: crate::codec::Version::V5,
            client_id: format!("c{slot}"),
            clean_start: !persistent,
            keep_alive_secs: 0,
            session_expiry_secs: if persistent { 3_600 } else { 0 },
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            faults: self.client_faults,
            ..Default::default()
        }
    }

    /// A new kernel connects as `c{slot}` (a takeover when that id is
    /// connected). Returns its link.
    pub fn connect(&self, slot: usize, cfg: ClientConfig) -> Arc<Link> {
        let client = Arc::new(ClientKernel::new(self.ledger.clone(), cfg, None, None));
        let op = with_actor(&format!("c{slot} caller"), || client.connect(self.now()));
        let link = self.attach(slot, client.clone());
        lock(&self.kernels).push((link.id, client));
        self.track(slot, op, Request::Connect);
        link
    }

    /// `link`'s kernel (whose connection ended) opens a new one.
    pub fn reconnect(&self, link: &Link) -> Arc<Link> {
        let op = with_actor(&format!("c{} caller", link.slot), || {
            link.client.reconnect(self.now())
        });
        let new = self.attach(link.slot, link.client.clone());
        self.track(link.slot, op, Request::Connect);
        new
    }

    fn attach(&self, slot: usize, client: Arc<ClientKernel>) -> Arc<Link> {
        let conn = self.broker.accept(self.now(), None);
        let mut links = lock(&self.links);
        let link = Arc::new(Link {
            id: links.len(),
            slot,
            conn,
            client,
            up: Mutex::new(VecDeque::new()),
            down: Mutex::new(VecDeque::new()),
            open: AtomicBool::new(true),
            disconnect_written: AtomicBool::new(false),
        });
        links.push(link.clone());
        link
    }

    /// Every link so far.
    pub fn links(&self) -> Vec<Arc<Link>> {
        lock(&self.links).clone()
    }

    fn track(&self, slot: usize, op: Op, what: Request) {
        lock(&self.sent).push(Sent { slot, op, what });
    }

    /// A payload unique in this run.
    pub fn payload(&self) -> String {
        format!("m{}", self.payloads.fetch_add(1, Ordering::AcqRel))
    }

    /// The caller of `link` subscribes to `filter`.
    pub fn subscribe(&self, link: &Link, filter: &str, qos: u8) {
        let version = link.client.config().version;
        let built = as_caller(link, || {
            request::subscribe(&self.ledger, version, &[(filter, qos_of(qos))])
        });
        let Ok(op) = built else {
            return;
        };
        self.send(link, op, Request::Subscribe(filter.into()));
    }

    /// The caller of `link` unsubscribes from `filter`.
    pub fn unsubscribe(&self, link: &Link, filter: &str) {
        let version = link.client.config().version;
        let built = as_caller(link, || {
            request::unsubscribe(&self.ledger, version, &[filter])
        });
        let Ok(op) = built else {
            return;
        };
        self.send(link, op, Request::Unsubscribe(filter.into(), link.id));
    }

    /// The caller of `link` publishes a fresh payload on `topic`.
    pub fn publish(&self, link: &Link, topic: &str, qos: u8) {
        let version = link.client.config().version;
        let payload = self.payload();
        let data = Bytes::from(payload.clone());
        let built = as_caller(link, || {
            request::publish(&self.ledger, version, topic, data, qos_of(qos), false)
        });
        let Ok(op) = built else {
            return;
        };
        let what = Request::Publish {
            topic: topic.into(),
            payload,
            qos,
        };
        self.send(link, op, what);
    }

    fn send(&self, link: &Link, op: Op, what: Request) {
        let qos0 = matches!(what, Request::Publish { qos: 0, .. });
        as_caller(link, || {
            if qos0 {
                link.client.publish_qos0(&op);
            } else if link.client.send_request(&op, self.now()).is_err() {
                // Refused (no packet id, closed): finished by the kernel.
            }
        });
        self.track(link.slot, op, what);
    }

    /// The caller of `link` cancels its latest unfinished request.
    pub fn cancel_latest(&self, link: &Link) {
        let op = lock(&self.sent)
            .iter()
            .rev()
            .find(|s| s.slot == link.slot && !s.op.is_finished())
            .map(|s| s.op.clone());
        if let Some(op) = op {
            with_actor(&format!("c{} caller", link.slot), || {
                link.client.cancel(&op)
            });
        }
    }

    /// One write on `side` of `link`: a job is taken, encoded, carried and
    /// reported done (`fail`: the write errors and the connection drops).
    /// The connection may close between any two of these. True when there
    /// was something to write.
    pub fn write_once(&self, link: &Link, side: Side, fail: bool) -> bool {
        if !link.is_open() {
            return false;
        }
        let (outbox, pipe, actor): (&Outbox<OutFrame>, _, _) = match side {
            Side::Client => (&link.client.outbox, &link.up, "writer"),
            Side::Broker => (&link.conn.outbox, &link.down, "broker writer"),
        };
        let name = format!("c{} {actor}", link.slot);
        let job = with_actor(&name, || outbox.start_write());
        let Some(job) = job else {
            if side == Side::Broker && link.conn.is_closing() && outbox.is_idle() {
                // The shell closes a connection the broker ended once its
                // queue is written.
                self.close(link);
            }
            return false;
        };
        let mut bytes = BytesMut::new();
        let encoded = encode_job(&job, &mut bytes).is_ok();
        if side == Side::Broker && encoded {
            self.watch_broker_write(link, &bytes);
        }
        if fail {
            with_actor(&name, || {
                outbox.write_done(job, WriteResult::Failed("write error".into()))
            });
            self.close(link);
            return true;
        }
        if encoded && link.is_open() {
            lock(pipe).push_back(bytes.freeze());
        }
        with_actor(&name, || outbox.write_done(job, WriteResult::Complete));
        true
    }

    /// Oracle: a broker never writes to a connection after it told it
    /// DISCONNECT (MQTT 5 takeover: the session is someone else's now).
    fn watch_broker_write(&self, link: &Link, bytes: &[u8]) {
        let kind = bytes.first().and_then(|b| PacketType::from_u8(b >> 4));
        if link.disconnect_written.load(Ordering::Acquire) {
            self.broke(format!(
                "broker wrote {kind:?} to c{} (link {}) after its DISCONNECT",
                link.slot, link.id
            ));
        }
        if kind == Some(PacketType::Disconnect) {
            link.disconnect_written.store(true, Ordering::Release);
        }
    }

    /// One read on `side` of `link` (the bytes of one write). True when
    /// there was something to read.
    pub fn read_once(&self, link: &Link, side: Side) -> bool {
        if !link.is_open() {
            return false;
        }
        let pipe = match side {
            Side::Broker => &link.up,
            Side::Client => &link.down,
        };
        let Some(bytes) = lock(pipe).pop_front() else {
            return false;
        };
        match side {
            Side::Broker => {
                let name = format!("broker reader c{}", link.slot);
                let flow = with_actor(&name, || {
                    self.broker.on_bytes(&link.conn, &bytes, self.now())
                });
                if let Flow::Close(_) = flow {
                    // Written out by the broker writer, then closed.
                    if link.conn.outbox.is_idle() {
                        self.close(link);
                    }
                }
            }
            Side::Client => {
                let name = format!("c{} reader", link.slot);
                let unsubacked = self.unsubacked(link);
                let flow = with_actor(&name, || link.client.on_bytes(&bytes));
                self.take_deliveries(link, &unsubacked);
                if let ClientFlow::Close(_) = flow {
                    self.close(link);
                }
            }
        }
        true
    }

    /// Filters `link`'s caller has seen UNSUBACKed on this link.
    fn unsubacked(&self, link: &Link) -> Vec<String> {
        lock(&self.sent)
            .iter()
            .filter_map(|s| match &s.what {
                Request::Unsubscribe(f, l)
                    if *l == link.id && s.op.outcome() == Some(Outcome::Success) =>
                {
                    Some(f.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Filters `slot` has subscribed to and not unsubscribed from since.
    fn still_subscribed(&self, slot: usize) -> Vec<String> {
        let mut subs: Vec<String> = Vec::new();
        for s in lock(&self.sent).iter().filter(|s| s.slot == slot) {
            match &s.what {
                Request::Subscribe(f) => subs.push(f.clone()),
                Request::Unsubscribe(f, _) => subs.retain(|x| x != f),
                _ => {}
            }
        }
        subs
    }

    /// The application of `link` takes what arrived; checks the UNSUBACK
    /// oracle: a QoS 0 PUBLISH (nothing buffers those outside the outbox,
    /// whose order is the wire's) arriving after the UNSUBACK of every
    /// filter that matches it was added after the unsubscribe took effect
    /// [MQTT-3.10.4-2].
    fn take_deliveries(&self, link: &Link, unsubacked_before: &[String]) {
        let kernel = self.kernel_of(&link.client);
        while let Some(r) = link.client.take_received() {
            let payload = r
                .msg
                .data("c: read delivery")
                .map(|d| String::from_utf8_lossy(&d).into_owned())
                .unwrap_or_default();
            request::consume(r.msg);
            let topic = r.publish.topic.as_str().to_string();
            let qos = r.publish.qos as u8;
            let gone: Vec<&String> = unsubacked_before
                .iter()
                .filter(|f| matches(f, &topic))
                .collect();
            let other = self
                .still_subscribed(link.slot)
                .iter()
                .any(|f| matches(f, &topic));
            if qos == 0 && !gone.is_empty() && !other {
                self.broke(format!(
                    "c{} received {payload:?} on {topic} after the UNSUBACK for {:?}",
                    link.slot, gone[0]
                ));
            }
            lock(&self.deliveries).push(Delivery {
                slot: link.slot,
                link: link.id,
                kernel,
                topic,
                payload,
                qos,
                dup: r.publish.dup,
            });
        }
    }

    fn kernel_of(&self, client: &Arc<ClientKernel>) -> usize {
        lock(&self.kernels)
            .iter()
            .find(|(_, k)| Arc::ptr_eq(k, client))
            .map_or(usize::MAX, |(l, _)| *l)
    }

    /// The connection of `link` ends (both sides see it). Idempotent.
    pub fn close(&self, link: &Link) {
        if !link.open.swap(false, Ordering::AcqRel) {
            return;
        }
        with_actor(&format!("closer c{}", link.slot), || {
            self.broker.connection_lost(&link.conn, self.now());
            let keep = !link.client.config().clean_start;
            link.client.connection_lost(keep);
        });
    }

    /// The clock moves on by `ms`; broker and client timers run.
    pub fn tick(&self, ms: u64) {
        let now = self.now_ms.fetch_add(ms, Ordering::AcqRel) + ms;
        with_actor("timer", || {
            for conn in self.broker.tick(now) {
                if let Some(l) = self
                    .links()
                    .into_iter()
                    .find(|l| Arc::ptr_eq(&l.conn, &conn))
                {
                    self.close(&l);
                }
            }
            // A client's timer runs whether or not it is connected (the
            // shell's timer task outlives each connection).
            for (_, k) in lock(&self.kernels).clone() {
                k.tick(now);
            }
        });
    }

    /// From one thread, writes and reads everything until nothing moves.
    pub fn settle(&self) {
        for _ in 0..1_000 {
            let mut moved = false;
            for l in self.links() {
                for side in [Side::Client, Side::Broker] {
                    moved |= self.write_once(&l, side, false);
                    moved |= self.read_once(&l, side);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Persistent clients whose last connection ended come back, so their
    /// sessions' promises can be kept.
    pub fn bring_back(&self) {
        let links = self.links();
        for l in &links {
            let newest = links
                .iter()
                .filter(|x| Arc::ptr_eq(&x.client, &l.client))
                .map(|x| x.id)
                .max();
            let taken_over = links.iter().any(|x| x.slot == l.slot && x.id > l.id);
            if newest == Some(l.id) && !l.is_open() && !taken_over && !l.client.config().clean_start
            {
                self.reconnect(l);
            }
        }
        self.settle();
    }

    /// Records a broken promise.
    pub fn broke(&self, why: String) {
        lock(&self.broken).push(why);
    }

    /// At quiescence: every QoS 1/2 publish acknowledged to its sender
    /// reached every persistent subscriber of its topic that never dropped
    /// the subscription, at least once; QoS 2 at most once per kernel.
    fn check_delivery_promises(&self) {
        let sent = lock(&self.sent);
        let deliveries = lock(&self.deliveries).clone();
        for d in &deliveries {
            if d.qos == 2 && !d.dup {
                let n = deliveries
                    .iter()
                    .filter(|x| x.kernel == d.kernel && x.payload == d.payload)
                    .count();
                if n > 1 {
                    self.broke(format!(
                        "c{} received the QoS 2 message {:?} on {} {n} times, the last on link {} (exactly once broken)",
                        d.slot, d.payload, d.topic, d.link
                    ));
                }
            }
        }
        for s in sent.iter() {
            let Request::Publish {
                topic,
                payload,
                qos,
            } = &s.what
            else {
                continue;
            };
            if *qos == 0 || s.op.outcome() != Some(Outcome::Success) {
                continue;
            }
            for sub in sent.iter() {
                let Request::Subscribe(f) = &sub.what else {
                    continue;
                };
                let unsubscribed = sent.iter().any(|u| {
                    u.slot == sub.slot && matches!(&u.what, Request::Unsubscribe(x, _) if x == f)
                });
                let persistent = self
                    .links()
                    .iter()
                    .filter(|l| l.slot == sub.slot)
                    .all(|l| !l.client.config().clean_start);
                if !matches(f, topic)
                    || unsubscribed
                    || !persistent
                    || sub.op.outcome() != Some(Outcome::Success)
                {
                    continue;
                }
                let got = deliveries
                    .iter()
                    .any(|d| d.slot == sub.slot && &d.payload == payload);
                if !got {
                    self.broke(format!(
                        "c{} never received {payload:?} (QoS {qos} on {topic}, acknowledged to c{}): at least once broken",
                        sub.slot, s.slot
                    ));
                }
            }
        }
    }

    /// Reaps every request as its caller does, ends everything, and returns
    /// the audit and the broken promises.
    pub fn finish(&self) -> (Audit, Vec<String>) {
        self.check_delivery_promises();
        for l in self.links() {
            self.close(&l);
        }
        for (_, k) in lock(&self.kernels).clone() {
            k.shutdown();
        }
        let sent: Vec<Op> = lock(&self.sent).iter().map(|s| s.op.clone()).collect();
        for op in &sent {
            with_actor("caller", || request::reap_all(op, "caller: reap"));
        }
        self.broker.shutdown();
        let broken = lock(&self.broken).clone();
        (self.ledger.audit(), broken)
    }
}

/// Runs `f` as `link`'s caller (its name on the ledger's events).
fn as_caller<R>(link: &Link, f: impl FnOnce() -> R) -> R {
    with_actor(&format!("c{} caller", link.slot), f)
}

fn qos_of(q: u8) -> crate::codec::QoS {
    match q {
        0 => crate::codec::QoS::AtMostOnce,
        1 => crate::codec::QoS::AtLeastOnce,
        _ => crate::codec::QoS::ExactlyOnce,
    }
}
