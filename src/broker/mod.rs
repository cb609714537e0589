//! The reference broker's kernel: sessions, the subscription tree, fan-out,
//! shared subscriptions, the retained store, wills (delayed or not),
//! message expiry and takeover, driven by bytes and transport events (no
//! I/O).
//!
//! A shell (the tokio + rustls server, the in-memory transport, the fuzzer)
//! calls [`Broker::accept`] per connection, feeds received bytes to
//! [`Broker::on_bytes`], drains each connection's [`Outbox`] to the wire,
//! calls [`Broker::tick`] from its timer and [`Broker::connection_lost`]
//! when a connection ends. [`Broker::shutdown`] releases everything, so that
//! the ledger audit afterwards must be clean.
//!
//! Lock order: a connection's protocol state, then the broker state, then
//! any connection's outbox. Nothing that holds an outbox lock calls back in.

mod admission;
mod connect;
pub mod limits;
pub mod queue;
pub mod retained;
mod route;
pub mod session;
pub mod shared;
mod subscribe;
pub mod topic_tree;
pub mod will_delay;

use crate::codec::{
    self, CodecError, Disconnect, FrameDecoder, Packet, PacketType, Publish, ReasonCode, Version,
};
use crate::faults::{Fault, FaultSet};
use crate::kernels::budget::MemoryBudget;
use crate::kernels::frame::{OutFrame, msg_kind};
use crate::kernels::outbox::{Entry, Outbox};
use crate::kernels::topic_alias::AliasTable;
use crate::ledger::{Ledger, MsgKind, MsgRef};
use crate::sync::{Arc, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, StdArc, lock};
use bytes::BytesMut;
use limits::{Drops, QueueLimits};
use retained::RetainedStore;
use session::Session;
use shared::SharedSubs;
use std::collections::HashMap;
use topic_tree::TopicTree;
use will_delay::WillTimers;

/// Limits and switches of one broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Largest packet accepted (fixed header included).
    pub max_packet_size: usize,
    /// Hard bound on the entries of a connection's send queue (control
    /// packets and QoS 0 deliveries; in-flight QoS 1/2 copies are bounded
    /// by the window instead). The queue limits normally stop far below it.
    pub max_queued: usize,
    /// Upper bound on unacknowledged QoS 1/2 deliveries per session.
    pub max_inflight: u16,
    /// What sessions may hold for consumers that fall behind, and the
    /// policy when they are full (see [`limits`]).
    pub queue: QueueLimits,
    /// QoS 2 publishes a client may have awaiting PUBREL (our Receive
    /// Maximum).
    pub receive_maximum: u16,
    /// Longest keep-alive a client may use, in seconds (`None`: what the
    /// client asks for). An MQTT 5 client asking for more, or for none, is
    /// told this value as Server Keep Alive; a 3.1.1 client cannot be told
    /// and is refused (CONNACK 2, as mosquitto does).
    pub max_keep_alive: Option<u16>,
    /// The historic faults switched on (none by default).
    pub faults: FaultSet,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: codec::DEFAULT_MAX_PACKET_SIZE,
            max_queued: 10_000,
            max_inflight: 1_024,
            queue: QueueLimits::default(),
            receive_maximum: 1_024,
            max_keep_alive: None,
            faults: FaultSet::NONE,
        }
    }
}

/// What the shell does after feeding bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop reading; write what is queued, then close the connection.
    Close(CloseReason),
}

/// Why the broker ends a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The reason code sent (in MQTT 5) or that would have been.
    pub code: ReasonCode,
    /// What happened, for logs.
    pub detail: String,
}

impl CloseReason {
    fn new(code: ReasonCode, detail: impl Into<String>) -> Self {
        CloseReason {
            code,
            detail: detail.into(),
        }
    }
}

/// Counters of one broker's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerStats {
    /// Connections accepted.
    pub connections: u64,
    /// PUBLISH packets received from clients.
    pub publishes_in: u64,
    /// Deliveries queued to subscribers.
    pub deliveries: u64,
    /// Connections closed for a protocol error or a malformed packet.
    pub protocol_errors: u64,
    /// Deliveries dropped by the queue limits, per reason.
    pub drops: Drops,
    /// Deliveries and retained messages released because their Message
    /// Expiry Interval passed before they were sent.
    pub expired: u64,
}

/// Reader-side state of one connection.
struct Proto {
    decoder: FrameDecoder,
    version: Option<Version>,
    client_id: Option<String>,
    /// The broker's time of the bytes being handled.
    now_ms: u64,
    /// Set by the one `connection_lost` that tears the connection down;
    /// later calls (the reader and the writer both end) do nothing.
    gone: bool,
}

/// One client connection as the kernel sees it.
pub struct Conn {
    id: u64,
    /// Its send queue; the shell's writer drains it.
    pub outbox: Outbox<OutFrame>,
    proto: Mutex<Proto>,
    closing: AtomicBool,
    /// The reason code the broker closes with ([`NO_CLOSE_CODE`] until it
    /// decides to): the first decision wins.
    close_code: AtomicU32,
    keep_alive_ms: AtomicU64,
    last_seen_ms: AtomicU64,
    /// Outbound topic aliases, once CONNECT said the client takes them.
    aliases: Mutex<Option<AliasTable>>,
}

impl Conn {
    /// The connection's id within its broker.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the broker decided to end the connection: the shell stops
    /// reading, flushes the outbox and closes.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The protocol version, once CONNECT was read.
    pub fn version(&self) -> Option<Version> {
        lock(&self.proto).version
    }

    /// The client id (assigned or given), once CONNECT was accepted.
    pub fn client_id(&self) -> Option<String> {
        lock(&self.proto).client_id.clone()
    }

    /// The keep-alive the broker enforces, in seconds (0: none): what the
    /// client asked for, or the broker's cap (Server Keep Alive).
    pub fn keep_alive_secs(&self) -> u64 {
        self.keep_alive_ms.load(Ordering::Acquire) / 1000
    }

    /// This connection's outbound topic alias table, if the client takes
    /// aliases.
    pub fn aliases(&self) -> Option<AliasTable> {
        lock(&self.aliases).clone()
    }

    /// Why the broker decided to end the connection (its reason code), if
    /// it did; `None` while it is open or when the peer ended it.
    pub fn close_code(&self) -> Option<ReasonCode> {
        let code = self.close_code.load(Ordering::Acquire);
        ReasonCode::from_u8(u8::try_from(code).ok()?)
    }

    /// Marks the connection closing for `code`; a reason given earlier is
    /// kept (a takeover stays a takeover when shutdown follows).
    fn close_for(&self, code: ReasonCode) {
        let _ = self.close_code.compare_exchange(
            NO_CLOSE_CODE,
            u32::from(code.as_u8()),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.closing.store(true, Ordering::Release);
    }
}

/// [`Conn::close_code`] before the broker decided to close.
const NO_CLOSE_CODE: u32 = u32::MAX;

struct Will {
    msg: MsgRef,
    meta: StdArc<Publish>,
    /// Will Delay Interval, seconds (0: publish as the connection ends).
    delay_secs: u32,
}

struct State {
    next_conn: u64,
    conns: HashMap<u64, Arc<Conn>>,
    sessions: HashMap<String, Session>,
    /// Client id to subscription options and identifier.
    tree: TopicTree<(codec::SubscriptionOptions, Option<u32>)>,
    retained: RetainedStore,
    /// Shared subscription groups.
    shared: SharedSubs,
    /// Wills of live connections, by connection id.
    wills: HashMap<u64, Will>,
    /// The session last seen holding the most queued bytes: where the
    /// memory budget takes room from first.
    fattest: admission::Fattest,
    /// Set while the memory budget is exhausted.
    budget_over: Option<admission::BudgetOver>,
    /// Wills of ended connections waiting out their delay, by client id.
    delayed_wills: WillTimers,
    /// Set once a message with a Message Expiry Interval was routed: until
    /// then the timer has nothing to expire and skips the sweep.
    expiring: bool,
    /// Protocol version of each session's current or last connection.
    versions: HashMap<String, Version>,
    stats: BrokerStats,
    shut_down: bool,
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The broker kernel.
pub struct Broker {
    ledger: Arc<Ledger>,
    cfg: BrokerConfig,
    /// Bytes held for delivery by all sessions.
    budget: MemoryBudget,
    /// The latest time a shell told the kernel (ms), for the queue policy.
    clock_ms: AtomicU64,
    state: Mutex<State>,
}

impl Broker {
    /// A broker recording into `ledger`.
    pub fn new(ledger: Arc<Ledger>, cfg: BrokerConfig) -> Self {
        Broker {
            ledger,
            budget: MemoryBudget::new(cfg.queue.memory),
            cfg,
            clock_ms: AtomicU64::new(0),
            state: Mutex::new(State {
                next_conn: 1,
                conns: HashMap::new(),
                sessions: HashMap::new(),
                tree: TopicTree::new(),
                retained: RetainedStore::new(),
                shared: SharedSubs::new(),
                wills: HashMap::new(),
                fattest: admission::Fattest::default(),
                budget_over: None,
                delayed_wills: WillTimers::new(),
                expiring: false,
                versions: HashMap::new(),
                stats: BrokerStats::default(),
                shut_down: false,
            }),
        }
    }

    /// The ledger every message of this broker is recorded in.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    fn faults(&self) -> FaultSet {
        self.cfg.faults
    }

    /// Traffic counters.
    pub fn stats(&self) -> BrokerStats {
        lock(&self.state).stats
    }

    /// Sessions held (connected or not).
    pub fn sessions(&self) -> usize {
        lock(&self.state).sessions.len()
    }

    /// Retained messages held.
    pub fn retained(&self) -> usize {
        lock(&self.state).retained.len()
    }

    /// Bytes held for delivery (queued or in flight) by all sessions, as
    /// the memory budget counts them.
    pub fn held_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Messages queued for `client` beyond its in-flight window (QoS 1/2
    /// waiting plus QoS 0 not yet written), or `None` without a session.
    pub fn queued_for(&self, client: &str) -> Option<usize> {
        let st = lock(&self.state);
        let s = st.sessions.get(client)?;
        let conn = s.conn.and_then(|id| st.conns.get(&id));
        Some(admission::queued(s, conn).0)
    }

    /// Moves the kernel's idea of the time forward.
    fn saw_time(&self, now_ms: u64) {
        self.clock_ms.fetch_max(now_ms, Ordering::AcqRel);
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Acquire)
    }

    /// Wills waiting out their Will Delay Interval.
    pub fn delayed_wills(&self) -> usize {
        lock(&self.state).delayed_wills.len()
    }

    /// The members of the shared group `group` on `filter`, in turn order.
    pub fn shared_members(&self, group: &str, filter: &str) -> Vec<String> {
        let key = shared::ShareKey {
            group: group.to_string(),
            filter: filter.to_string(),
        };
        lock(&self.state).shared.members(&key)
    }

    /// A new connection. `waker` is called whenever its outbox gets work or
    /// it should close, so the shell's writer can sleep until then.
    pub fn accept(&self, now_ms: u64, waker: Option<Waker>) -> Arc<Conn> {
        self.saw_time(now_ms);
        let mut st = lock(&self.state);
        let id = st.next_conn;
        st.next_conn += 1;
        st.stats.connections += 1;
        let mut outbox = Outbox::new(self.faults(), self.cfg.max_queued);
        if let Some(w) = waker {
            outbox = outbox.with_waker(w);
        }
        let conn = Arc::new(Conn {
            id,
            outbox,
            proto: Mutex::new(Proto {
                decoder: FrameDecoder::new(None, self.cfg.max_packet_size),
                version: None,
                client_id: None,
                now_ms,
                gone: false,
            }),
            closing: AtomicBool::new(false),
            close_code: AtomicU32::new(NO_CLOSE_CODE),
            keep_alive_ms: AtomicU64::new(0),
            last_seen_ms: AtomicU64::new(now_ms),
            aliases: Mutex::new(None),
        });
        if st.shut_down {
            conn.close_for(ReasonCode::ServerShuttingDown);
        }
        st.conns.insert(id, conn.clone());
        conn
    }

    /// Feeds bytes received on `conn`.
    pub fn on_bytes(&self, conn: &Arc<Conn>, data: &[u8], now_ms: u64) -> Flow {
        let mut p = lock(&conn.proto);
        if p.gone || conn.is_closing() {
            return Flow::Close(CloseReason::new(
                ReasonCode::Success,
                "connection is closing",
            ));
        }
        conn.last_seen_ms.store(now_ms, Ordering::Release);
        self.saw_time(now_ms);
        p.now_ms = p.now_ms.max(now_ms);
        p.decoder.extend(data);
        loop {
            let frame = match p.decoder.next_frame() {
                Ok(None) => return Flow::Continue,
                Ok(Some(f)) => f,
                Err(e) => return self.malformed(conn, &p, e),
            };
            let kind = frame
                .bytes
                .first()
                .and_then(|b| PacketType::from_u8(b >> 4))
                .map_or(MsgKind::Other, msg_kind);
            let msg = self
                .ledger
                .alloc(kind, frame.bytes.clone(), "reader: frame");
            let packet = match p.decoder.decode_frame(&frame) {
                Ok(packet) => packet,
                Err(e) => {
                    if kind == MsgKind::Subscribe && self.faults().has(Fault::Nanonng1505) {
                        // The decode error path frees the partly built
                        // SUBSCRIBE, and the reader frees it again below.
                        msg.alias("subscribe decode (error path)")
                            .release("subscribe decode (error path)");
                    }
                    msg.release("reader: malformed packet");
                    return self.malformed(conn, &p, e);
                }
            };
            let flow = self.handle(conn, &mut p, msg, packet);
            if flow != Flow::Continue {
                return flow;
            }
        }
    }

    fn handle(&self, conn: &Arc<Conn>, p: &mut Proto, msg: MsgRef, packet: Packet) -> Flow {
        let connected = p.client_id.is_some();
        // `mqtls broker -v` shows each packet, `-vv` its every field.
        match &packet {
            Packet::Publish(publish) => tracing::debug!(
                conn = conn.id,
                topic = publish.topic.as_str(),
                qos = publish.qos as u8,
                retain = publish.retain,
                bytes = publish.payload.len(),
                "received PUBLISH"
            ),
            other => tracing::debug!(conn = conn.id, "received {}", other.packet_type()),
        }
        tracing::trace!(conn = conn.id, ?packet, "received");
        match packet {
            Packet::Connect(c) if !connected => {
                msg.release("reader: CONNECT read");
                self.handle_connect(conn, p, *c)
            }
            Packet::Connect(_) => {
                msg.release("reader: second CONNECT");
                self.protocol_error(conn, p, ReasonCode::ProtocolError, "a second CONNECT")
            }
            _ if !connected => {
                msg.release("reader: packet before CONNECT");
                self.protocol_error(conn, p, ReasonCode::ProtocolError, "packet before CONNECT")
            }
            Packet::Publish(publish) => self.handle_publish(conn, p, msg, publish),
            other => {
                msg.release("reader: packet read");
                self.handle_control(conn, p, other)
            }
        }
    }

    fn handle_control(&self, conn: &Arc<Conn>, p: &mut Proto, packet: Packet) -> Flow {
        let version = p.version.unwrap_or(Version::V311);
        match packet {
            Packet::Puback(a) => self.on_puback(p, a.packet_id),
            Packet::Pubrec(a) => self.on_pubrec(conn, p, a.packet_id, a.reason, version),
            Packet::Pubcomp(a) => self.on_pubcomp(p, a.packet_id),
            Packet::Pubrel(a) => {
                let known = self.with_session_mut(p, |s| s.awaiting_pubrel.remove(&a.packet_id));
                let mut ack = codec::PubResponse::new(a.packet_id);
                if !known && version == Version::V5 {
                    ack.reason = ReasonCode::PacketIdentifierNotFound;
                }
                self.send(conn, &Packet::Pubcomp(ack), version, "broker: PUBCOMP");
                Flow::Continue
            }
            Packet::Subscribe(s) => self.handle_subscribe(conn, p, s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(conn, p, u),
            Packet::Pingreq => {
                self.send(conn, &Packet::Pingresp, version, "broker: PINGRESP");
                Flow::Continue
            }
            Packet::Disconnect(d) => self.handle_disconnect(conn, p, d),
            // We never accept an Authentication Method, so any AUTH is a
            // Protocol Error (MQTT 5 section 4.12; 0x8C cannot close a
            // session).
            Packet::Auth(_) => self.protocol_error(
                conn,
                p,
                ReasonCode::ProtocolError,
                "AUTH without an authentication method in CONNECT",
            ),
            other => self.protocol_error(
                conn,
                p,
                ReasonCode::ProtocolError,
                format!("{} is not sent by clients", other.packet_type()),
            ),
        }
    }

    /// Encodes `packet` as a new message and queues it on `conn`.
    fn send(&self, conn: &Conn, packet: &Packet, version: Version, site: &'static str) {
        let mut buf = BytesMut::new();
        if let Err(e) = codec::encode(packet, version, &mut buf) {
            tracing::error!(
                "broker could not encode its own {}: {e}",
                packet.packet_type()
            );
            return;
        }
        let msg = self
            .ledger
            .alloc(msg_kind(packet.packet_type()), buf.freeze(), site);
        // A refused entry is released by the outbox; a closed connection
        // simply does not get its acknowledgement.
        let _ = conn.outbox.enqueue(Entry::Msg {
            msg,
            frame: OutFrame::Raw,
        });
    }

    fn malformed(&self, conn: &Arc<Conn>, p: &Proto, e: CodecError) -> Flow {
        let code = e.reason_code();
        self.protocol_error(conn, p, code, e.to_string())
    }

    /// Ends the connection for a protocol error: MQTT 5 gets a DISCONNECT
    /// (or a CONNACK before the session exists) with the reason code.
    fn protocol_error(
        &self,
        conn: &Arc<Conn>,
        p: &Proto,
        code: ReasonCode,
        detail: impl Into<String>,
    ) -> Flow {
        let detail = detail.into();
        lock(&self.state).stats.protocol_errors += 1;
        if p.version == Some(Version::V5) {
            if p.client_id.is_some() {
                // A code DISCONNECT cannot carry (a CONNECT-only one, from a
                // second CONNECT that does not decode) is a Protocol Error
                // once connected.
                let reason = if ReasonCode::allowed_in(PacketType::Disconnect).contains(&code) {
                    code
                } else {
                    ReasonCode::ProtocolError
                };
                let d = Disconnect {
                    reason,
                    ..Default::default()
                };
                self.send(
                    conn,
                    &Packet::Disconnect(d),
                    Version::V5,
                    "broker: DISCONNECT",
                );
            } else {
                let ack = codec::Connack {
                    session_present: false,
                    reason: code,
                    properties: Default::default(),
                };
                self.send(
                    conn,
                    &Packet::Connack(ack),
                    Version::V5,
                    "broker: CONNACK (refused)",
                );
            }
        }
        conn.close_for(code);
        tracing::debug!(conn = conn.id, ?code, "closing: {detail}");
        Flow::Close(CloseReason::new(code, detail))
    }

    fn handle_disconnect(&self, conn: &Arc<Conn>, p: &mut Proto, d: Disconnect) -> Flow {
        let mut st = lock(&self.state);
        if d.reason != ReasonCode::DisconnectWithWill
            && let Some(w) = st.wills.remove(&conn.id)
        {
            w.msg.release("DISCONNECT: will discarded");
        }
        if let (Some(secs), Some(cid)) = (d.properties.session_expiry_interval, &p.client_id)
            && let Some(s) = st.sessions.get_mut(cid)
            && s.expiry_secs != 0
        {
            s.expiry_secs = secs;
        }
        drop(st);
        conn.close_for(d.reason);
        Flow::Close(CloseReason::new(d.reason, "client sent DISCONNECT"))
    }

    /// The timer: closes connections silent for 1.5 times their keep-alive,
    /// publishes the wills whose delay passed, ends expired sessions and
    /// releases expired messages. Returns the connections the shell must
    /// now close.
    pub fn tick(&self, now_ms: u64) -> Vec<Arc<Conn>> {
        self.saw_time(now_ms);
        let mut st = lock(&self.state);
        let st = &mut *st;
        let mut silent = Vec::new();
        for c in st.conns.values() {
            let ka = c.keep_alive_ms.load(Ordering::Acquire);
            let seen = c.last_seen_ms.load(Ordering::Acquire);
            if ka > 0 && now_ms.saturating_sub(seen) > ka + ka / 2 && !c.is_closing() {
                c.close_for(ReasonCode::KeepAliveTimeout);
                silent.push(c.clone());
            }
        }
        let expired: Vec<String> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_none() && s.expires_at_ms.is_some_and(|t| t <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for w in st.delayed_wills.due(now_ms) {
            self.route(st, None, w.msg, w.meta, now_ms);
        }
        for id in expired {
            self.end_session(st, &id, now_ms);
        }
        if st.expiring {
            self.expire(st, now_ms);
        }
        silent.extend(self.slow_consumers(st, now_ms));
        silent
    }

    /// Releases every message whose expiry passed before anyone started to
    /// send it: waiting in a session, queued (QoS 0) on a connection and
    /// not yet written, or retained.
    fn expire(&self, st: &mut State, now_ms: u64) {
        let mut n = 0;
        for s in st.sessions.values_mut() {
            n += s.expire_waiting(now_ms);
        }
        for c in st.conns.values() {
            n += c.outbox.discard_queued(
                |f| matches!(f, OutFrame::Deliver(d) if d.qos == codec::QoS::AtMostOnce && d.expired(now_ms)),
                "outbox: message expired before it was written",
            );
        }
        n += st.retained.expire(now_ms);
        st.stats.expired += n as u64;
    }

    /// The connection ended (socket closed, error, or the shell finished
    /// closing it). Idempotent. Queued messages are released, the will is
    /// published unless DISCONNECT discarded it, and the session ends or
    /// waits for the client to come back.
    pub fn connection_lost(&self, conn: &Arc<Conn>, now_ms: u64) {
        let client_id = {
            let mut p = lock(&conn.proto);
            if p.gone {
                return;
            }
            p.gone = true;
            p.client_id.clone()
        };
        conn.closing.store(true, Ordering::Release);
        conn.outbox.close();
        self.saw_time(now_ms);
        let mut st = lock(&self.state);
        let st = &mut *st;
        st.conns.remove(&conn.id);
        let will = st.wills.remove(&conn.id);
        let Some(cid) = client_id else {
            if let Some(w) = will {
                self.route(st, None, w.msg, w.meta, now_ms);
            }
            return;
        };
        let ends = match st.sessions.get_mut(&cid) {
            Some(s) if s.conn == Some(conn.id) => {
                s.conn = None;
                match s.expiry_secs {
                    0 => true,
                    u32::MAX => false,
                    secs => {
                        s.expires_at_ms = Some(now_ms + u64::from(secs) * 1000);
                        false
                    }
                }
            }
            _ => false,
        };
        // The will goes out now, unless it has a delay and the session
        // outlives the connection: then its timer holds it.
        match will {
            Some(w) if w.delay_secs > 0 && !ends => {
                let due = now_ms + u64::from(w.delay_secs) * 1000;
                if let Some(old) = st.delayed_wills.arm(&cid, w.msg, w.meta, due) {
                    old.release("will delay: replaced");
                }
            }
            Some(w) => self.route(st, None, w.msg, w.meta, now_ms),
            None => {}
        }
        if ends {
            self.end_session(st, &cid, now_ms);
        }
    }

    /// Ends the session of `client_id`: its subscriptions and group
    /// memberships go, the deliveries it got through a shared group and
    /// never had acknowledged are handed to another member, everything it
    /// holds is released, and a will still waiting out its delay is
    /// published now (the session ended first).
    fn end_session(&self, st: &mut State, client_id: &str, now_ms: u64) {
        if let Some(mut s) = st.sessions.remove(client_id) {
            for filter in s.subscriptions.keys() {
                match shared::ShareKey::parse(filter) {
                    Some(key) => {
                        st.shared.leave(&key, client_id);
                    }
                    None => {
                        st.tree.remove(filter, client_id);
                    }
                }
            }
            self.hand_over(st, client_id, &s, now_ms);
            s.release_all("session end");
        }
        st.versions.remove(client_id);
        if let Some(w) = st.delayed_wills.session_ends(client_id, self.faults()) {
            self.route(st, None, w.msg, w.meta, now_ms);
        }
    }

    /// Stops the broker: every connection is closed and every reference the
    /// broker holds (sessions, retained messages, wills) is released. The
    /// ledger audit after this must be clean.
    pub fn shutdown(&self) {
        let conns: Vec<Arc<Conn>> = {
            let mut st = lock(&self.state);
            st.shut_down = true;
            st.conns.values().cloned().collect()
        };
        for c in &conns {
            c.close_for(ReasonCode::ServerShuttingDown);
            c.outbox.close();
        }
        let mut st = lock(&self.state);
        let st = &mut *st;
        for (_, w) in st.wills.drain() {
            w.msg.release("shutdown: will");
        }
        for m in st.delayed_wills.drain() {
            m.release("shutdown: delayed will");
        }
        // Nothing is handed over or published from here on: every
        // connection is closed.
        st.shared = SharedSubs::new();
        let ids: Vec<String> = st.sessions.keys().cloned().collect();
        for id in ids {
            self.end_session(st, &id, 0);
        }
        st.retained.clear_all();
    }
}
