//! The reference client's kernel: the user API (connect, subscribe,
//! publish, unsubscribe, cancel), the reader, the timer and the close and
//! reconnect paths, over the outbox and pending kernels. No I/O.
//!
//! The caller's side of the ownership rules (ZOO.md rule 1) lives in
//! [`request`]: the caller allocates the request message and puts it on its
//! operation; from then on the SDK owns it, and after the operation is
//! finished whatever is left in the slot is the caller's to free.

pub mod request;

use crate::codec::{
    self, Connect, ConnectProperties, FrameDecoder, MqttString, Packet, PacketType, PubResponse,
    Publish, QoS, ReasonCode, Version, Will,
};
use crate::faults::{Fault, FaultSet};
use crate::kernels::frame::{OutFrame, msg_kind};
use crate::kernels::outbox::{Entry, Outbox};
use crate::kernels::pending::{AckResult, Parked, Pending, Stage};
use crate::ledger::{Ledger, MsgKind, MsgRef, Op, OpKind, Outcome};
use crate::sync::{Arc, Mutex, lock};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, HashSet, VecDeque};
use thiserror::Error;

/// How a client connects and behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// MQTT 3.1.1 or 5.0.
    pub version: Version,
    /// Client identifier (empty: let the broker assign one, MQTT 5 or a
    /// clean 3.1.1 session).
    pub client_id: String,
    /// Start a new session (3.1.1: clean session).
    pub clean_start: bool,
    /// Keep-alive in seconds (0: off).
    pub keep_alive_secs: u16,
    /// MQTT 5 Session Expiry Interval in seconds.
    pub session_expiry_secs: u32,
    /// The will message, if any.
    pub will: Option<Will>,
    /// How long a subscribe (or other acknowledged request) waits, in ms.
    pub request_timeout_ms: u64,
    /// Largest packet accepted from the broker.
    pub max_packet_size: usize,
    /// Bound of the send queue.
    pub max_queued: usize,
    /// MQTT 5 Topic Alias Maximum: how many topic aliases the broker may
    /// use on the publishes it sends (0: none).
    pub topic_alias_maximum: u16,
    /// The historic faults switched on (none by default).
    pub faults: FaultSet,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            version: Version::V5,
            client_id: String::new(),
            clean_start: true,
            keep_alive_secs: 60,
            session_expiry_secs: 0,
            will: None,
            request_timeout_ms: 5_000,
            max_packet_size: codec::DEFAULT_MAX_PACKET_SIZE,
            max_queued: 10_000,
            topic_alias_maximum: 0,
            faults: FaultSet::NONE,
        }
    }
}

/// Why the client kernel refused a request or ended the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// All 65535 packet ids are waiting for acknowledgements.
    #[error("no free packet id: 65535 requests are waiting for their acknowledgements")]
    NoPacketId,
    /// The request message on the operation is missing or is not the
    /// packet the call expects.
    #[error("the operation carries no valid {0} message; build it with client::request")]
    BadRequest(&'static str),
    /// The broker sent something the client cannot accept.
    #[error("protocol error from the broker: {0}")]
    Protocol(String),
    /// The broker refused the connection.
    #[error("the broker refused the connection: {0:?}")]
    Refused(ReasonCode),
    /// The broker ended the connection.
    #[error("the broker sent DISCONNECT ({0:?})")]
    Disconnected(ReasonCode),
}

/// A message the broker delivered.
#[derive(Debug)]
pub struct Received {
    /// The payload, owned by the receiver (release it when done).
    pub msg: MsgRef,
    /// Topic, QoS, flags and properties (its payload field is empty).
    pub publish: Publish,
}

/// What the shell does after feeding bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFlow {
    /// Keep reading.
    Continue,
    /// Close the connection.
    Close(ClientError),
}

struct Proto {
    decoder: FrameDecoder,
    next_pid: u16,
    awaiting_pubrel: HashSet<u16>,
    inbox: VecDeque<Received>,
    last_sent_ms: u64,
    /// The broker's topic aliases on this connection (a new connection
    /// starts without any).
    aliases: HashMap<u16, MqttString>,
    /// The keep-alive in use: ours, or the broker's Server Keep Alive
    /// [MQTT-3.2.2-21].
    keep_alive_secs: u16,
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The client kernel.
pub struct ClientKernel {
    ledger: Arc<Ledger>,
    cfg: ClientConfig,
    /// The send queue; the shell's writer drains it.
    pub outbox: Outbox<OutFrame>,
    pending: Pending,
    proto: Mutex<Proto>,
    on_receive: Option<Waker>,
}

impl ClientKernel {
    /// A client kernel recording into `ledger`. `writer_waker` is called
    /// when the outbox gets work, `receive_waker` when a message arrives.
    pub fn new(
        ledger: Arc<Ledger>,
        cfg: ClientConfig,
        writer_waker: Option<Waker>,
        receive_waker: Option<Waker>,
    ) -> Self {
        let mut outbox = Outbox::new(cfg.faults, cfg.max_queued);
        if let Some(w) = writer_waker {
            outbox = outbox.with_waker(w);
        }
        ClientKernel {
            pending: Pending::new(cfg.faults),
            proto: Mutex::new(Proto {
                decoder: FrameDecoder::new(Some(cfg.version), cfg.max_packet_size),
                next_pid: 1,
                awaiting_pubrel: HashSet::new(),
                inbox: VecDeque::new(),
                last_sent_ms: 0,
                aliases: HashMap::new(),
                keep_alive_secs: cfg.keep_alive_secs,
            }),
            outbox,
            ledger,
            cfg,
            on_receive: receive_waker,
        }
    }

    /// The ledger this client records into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The keep-alive in use, in seconds: the configured one, or the
    /// broker's Server Keep Alive once a CONNACK carried one.
    pub fn keep_alive_secs(&self) -> u16 {
        lock(&self.proto).keep_alive_secs
    }

    /// Operations waiting for acknowledgements.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn faults(&self) -> FaultSet {
        self.cfg.faults
    }

    fn send(&self, packet: &Packet, site: &'static str) {
        let mut buf = BytesMut::new();
        if let Err(e) = codec::encode(packet, self.cfg.version, &mut buf) {
            tracing::error!(
                "client could not encode its own {}: {e}",
                packet.packet_type()
            );
            return;
        }
        let msg = self
            .ledger
            .alloc(msg_kind(packet.packet_type()), buf.freeze(), site);
        let _ = self.outbox.enqueue(Entry::Msg {
            msg,
            frame: OutFrame::Raw,
        });
    }

    /// Sends CONNECT; the returned operation finishes on CONNACK (its
    /// result is the CONNACK message), on timeout or on close.
    pub fn connect(&self, now_ms: u64) -> Op {
        let c = Connect {
            clean_start: self.cfg.clean_start,
            keep_alive: self.cfg.keep_alive_secs,
            client_id: MqttString::new(self.cfg.client_id.clone()).unwrap_or_default(),
            will: self.cfg.will.clone(),
            username: None,
            password: None,
            properties: ConnectProperties {
                session_expiry_interval: (self.cfg.version == Version::V5
                    && self.cfg.session_expiry_secs > 0)
                    .then_some(self.cfg.session_expiry_secs),
                maximum_packet_size: (self.cfg.version == Version::V5)
                    .then(|| u32::try_from(self.cfg.max_packet_size).ok())
                    .flatten(),
                topic_alias_maximum: (self.cfg.version == Version::V5
                    && self.cfg.topic_alias_maximum > 0)
                    .then_some(self.cfg.topic_alias_maximum),
                ..Default::default()
            },
        };
        let op = self.ledger.begin_op(OpKind::Connect, "client::connect");
        let mut buf = BytesMut::new();
        if let Err(e) = codec::encode(&Packet::Connect(Box::new(c)), self.cfg.version, &mut buf) {
            op.finish(Outcome::Failed(format!("CONNECT: {e}")), "client::connect");
            return op;
        }
        let msg = self
            .ledger
            .alloc(MsgKind::Connect, buf.freeze(), "client::connect");
        let wire = msg.retain("client::connect (wire)");
        if let Some(old) = op.set_msg(msg, "client::connect") {
            old.release("client::connect (displaced)");
        }
        // CONNECT has no packet id; 0 is never a valid one, so it parks
        // there.
        if let Err(op) =
            self.pending
                .park(0, op.clone(), Some(now_ms + self.cfg.request_timeout_ms))
        {
            wire.release("client::connect (already connecting)");
            if let Some(m) = op.take_msg() {
                m.release("client::connect (already connecting)");
            }
            op.finish(
                Outcome::Failed("already connecting".into()),
                "client::connect",
            );
            return op;
        }
        if self
            .outbox
            .enqueue(Entry::Msg {
                msg: wire,
                frame: OutFrame::Raw,
            })
            .is_err()
        {
            self.pending
                .fail(0, Outcome::Closed, "client::connect (refused)");
        }
        op
    }

    /// Sends the request on `op` (a SUBSCRIBE, UNSUBSCRIBE or QoS 1/2
    /// PUBLISH the caller put there) under a fresh packet id, and parks the
    /// operation until its acknowledgement. The SDK owns the message from
    /// here on (rule 1); the parked operation keeps its own reference and
    /// the wire gets another (rule 2).
    pub fn send_request(&self, op: &Op, now_ms: u64) -> Result<u16, ClientError> {
        let (site, park_site, fault): (_, _, Option<Fault>) = match op.kind() {
            OpKind::Subscribe => (
                "client::subscribe",
                "client::subscribe park",
                Some(Fault::Nanomq1766),
            ),
            OpKind::Unsubscribe => ("client::unsubscribe", "client::unsubscribe park", None),
            OpKind::Publish => ("client::publish", "client::publish park", None),
            _ => return Err(ClientError::BadRequest("SUBSCRIBE, UNSUBSCRIBE or PUBLISH")),
        };
        let pid = {
            let mut p = lock(&self.proto);
            let pid = self
                .pending
                .free_pid(p.next_pid)
                .ok_or(ClientError::NoPacketId)?;
            p.next_pid = pid.checked_add(1).unwrap_or(1);
            pid
        };
        let version = self.cfg.version;
        let wire = op.with_msg(|slot| -> Result<MsgRef, ClientError> {
            let msg = slot.peek().ok_or(ClientError::BadRequest("request"))?;
            // Numbering the packet is a change to the message: legal only
            // while the caller's reference is the only one.
            let mut failed = None;
            let _ = msg.mutate(
                "client: assign packet id",
                |data| match request::with_packet_id(data, version, pid) {
                    Ok(b) => *data = b,
                    Err(e) => failed = Some(e),
                },
            );
            if let Some(e) = failed {
                return Err(e);
            }
            Ok(match fault {
                Some(f) => self.faults().reference(f, msg, park_site),
                None => msg.retain(park_site),
            })
        })?;
        let deadline = Some(now_ms + self.cfg.request_timeout_ms);
        if let Err(op) = self.pending.park(pid, op.clone(), deadline) {
            wire.release(site);
            op.finish(Outcome::Failed("packet id in use".into()), site);
            return Err(ClientError::NoPacketId);
        }
        if self
            .outbox
            .enqueue(Entry::Msg {
                msg: wire,
                frame: OutFrame::Raw,
            })
            .is_err()
        {
            self.pending
                .fail(pid, Outcome::Closed, "client: send refused");
        }
        Ok(pid)
    }

    /// Queues a QoS 0 PUBLISH held on `op`: the message stays in the
    /// operation's slot until the write takes it, and the operation
    /// finishes when the write does.
    pub fn publish_qos0(&self, op: &Op) {
        let _ = self.outbox.enqueue(Entry::Op {
            op: op.clone(),
            frame: OutFrame::Raw,
        });
    }

    /// Queues DISCONNECT (normal disconnection, or `reason` in MQTT 5);
    /// the shell closes the connection once it is written.
    pub fn disconnect(&self, reason: ReasonCode) {
        let d = codec::Disconnect {
            reason,
            ..Default::default()
        };
        self.send(&Packet::Disconnect(d), "client: DISCONNECT");
    }

    /// Cancels a parked request (rule 5). Returns true when it was parked.
    pub fn cancel(&self, op: &Op) -> bool {
        self.pending.cancel(op)
    }

    /// The timer for the request under `pid` fired (loom's timer thread;
    /// shells use [`ClientKernel::tick`]).
    pub fn time_out(&self, pid: u16) -> bool {
        self.pending.time_out(pid)
    }

    /// The timer: expires overdue requests and keeps the connection alive.
    pub fn tick(&self, now_ms: u64) {
        self.pending.expire(now_ms);
        let due = {
            let mut p = lock(&self.proto);
            let ka = u64::from(p.keep_alive_secs) * 1000;
            let due = ka > 0 && now_ms.saturating_sub(p.last_sent_ms) >= ka;
            if due {
                p.last_sent_ms = now_ms;
            }
            due
        };
        if due {
            self.send(&Packet::Pingreq, "client: PINGREQ");
        }
    }

    /// Feeds bytes received from the broker.
    pub fn on_bytes(&self, data: &[u8]) -> ClientFlow {
        let mut p = lock(&self.proto);
        p.decoder.extend(data);
        loop {
            let frame = match p.decoder.next_frame() {
                Ok(None) => return ClientFlow::Continue,
                Ok(Some(f)) => f,
                Err(e) => return ClientFlow::Close(ClientError::Protocol(e.to_string())),
            };
            let kind = frame
                .bytes
                .first()
                .and_then(|b| PacketType::from_u8(b >> 4))
                .map_or(MsgKind::Other, msg_kind);
            let msg = self
                .ledger
                .alloc(kind, frame.bytes.clone(), "client reader: frame");
            let packet = match p.decoder.decode_frame(&frame) {
                Ok(packet) => packet,
                Err(e) => {
                    msg.release("client reader: malformed packet");
                    return ClientFlow::Close(ClientError::Protocol(e.to_string()));
                }
            };
            let flow = self.handle(&mut p, msg, packet);
            if flow != ClientFlow::Continue {
                return flow;
            }
        }
    }

    fn handle(&self, p: &mut Proto, msg: MsgRef, packet: Packet) -> ClientFlow {
        match packet {
            Packet::Connack(c) => {
                let refused = (c.reason as u8) >= 0x80;
                if let Some(ka) = c.properties.server_keep_alive {
                    p.keep_alive_secs = ka;
                }
                self.ack(0, Some(msg), false);
                if refused {
                    return ClientFlow::Close(ClientError::Refused(c.reason));
                }
            }
            Packet::Suback(s) => self.ack(s.packet_id, Some(msg), false),
            Packet::Unsuback(u) => self.ack(u.packet_id, Some(msg), false),
            Packet::Puback(a) | Packet::Pubcomp(a) => {
                msg.release("client reader: ack read");
                self.ack(a.packet_id, None, false);
            }
            Packet::Pubrec(a) => {
                msg.release("client reader: PUBREC read");
                let mut rel = PubResponse::new(a.packet_id);
                if (a.reason as u8) >= 0x80 {
                    // The broker refused the QoS 2 publish: the flow ends.
                    self.ack(a.packet_id, None, false);
                    return ClientFlow::Continue;
                }
                match self.pending.ack(a.packet_id, None, true) {
                    AckResult::Advanced => {}
                    AckResult::Finished => {}
                    AckResult::Unknown(_) if self.cfg.version == Version::V5 => {
                        rel.reason = ReasonCode::PacketIdentifierNotFound;
                    }
                    AckResult::Unknown(_) => {}
                }
                self.send(&Packet::Pubrel(rel), "client: PUBREL");
            }
            Packet::Publish(publish) => return self.on_publish(p, msg, publish),
            Packet::Pubrel(a) => {
                msg.release("client reader: PUBREL read");
                let known = p.awaiting_pubrel.remove(&a.packet_id);
                let mut ack = PubResponse::new(a.packet_id);
                if !known && self.cfg.version == Version::V5 {
                    ack.reason = ReasonCode::PacketIdentifierNotFound;
                }
                self.send(&Packet::Pubcomp(ack), "client: PUBCOMP");
            }
            Packet::Pingresp => msg.release("client reader: PINGRESP read"),
            Packet::Disconnect(d) => {
                msg.release("client reader: DISCONNECT read");
                return ClientFlow::Close(ClientError::Disconnected(d.reason));
            }
            other => {
                msg.release("client reader: unexpected packet");
                return ClientFlow::Close(ClientError::Protocol(format!(
                    "{} is not sent by brokers",
                    other.packet_type()
                )));
            }
        }
        ClientFlow::Continue
    }

    fn ack(&self, pid: u16, result: Option<MsgRef>, advance: bool) {
        if let AckResult::Unknown(Some(m)) = self.pending.ack(pid, result, advance) {
            // An acknowledgement for nothing we wait for (a late SUBACK after
            // a timeout, say): dropped.
            m.release("client reader: unknown ack");
        }
    }

    fn on_publish(&self, p: &mut Proto, msg: MsgRef, mut publish: Publish) -> ClientFlow {
        if let Some(alias) = publish.properties.topic_alias {
            if alias > self.cfg.topic_alias_maximum {
                msg.release("client reader: PUBLISH with a topic alias we did not offer");
                return ClientFlow::Close(ClientError::Protocol(format!(
                    "topic alias {alias} is above our Topic Alias Maximum {} [MQTT-3.3.2-9]",
                    self.cfg.topic_alias_maximum
                )));
            }
            if publish.topic.as_str().is_empty() {
                match p.aliases.get(&alias) {
                    Some(t) => publish.topic = t.clone(),
                    None => {
                        msg.release("client reader: PUBLISH with an unknown topic alias");
                        return ClientFlow::Close(ClientError::Protocol(format!(
                            "topic alias {alias} was never set on this connection"
                        )));
                    }
                }
            } else {
                p.aliases.insert(alias, publish.topic.clone());
            }
        }
        let pid = publish.packet_id;
        let duplicate = publish.qos == QoS::ExactlyOnce && p.awaiting_pubrel.contains(&pid);
        if duplicate {
            msg.release("client reader: duplicate QoS 2 PUBLISH");
        } else {
            let payload = publish.payload.clone();
            if msg
                .mutate("client reader: keep payload", |d| *d = payload)
                .is_ok()
            {
                let mut meta = publish.clone();
                meta.payload = Bytes::new();
                p.inbox.push_back(Received { msg, publish: meta });
                if let Some(w) = &self.on_receive {
                    w();
                }
            }
        }
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::Puback(PubResponse::new(pid)), "client: PUBACK"),
            QoS::ExactlyOnce => {
                p.awaiting_pubrel.insert(pid);
                self.send(&Packet::Pubrec(PubResponse::new(pid)), "client: PUBREC");
            }
        }
        ClientFlow::Continue
    }

    /// The next delivered message, if any. The receiver owns it.
    pub fn take_received(&self) -> Option<Received> {
        lock(&self.proto).inbox.pop_front()
    }

    /// The connection ended. Queued messages are released; parked requests
    /// are finished `Closed` (rule 5), except QoS 1/2 publishes when
    /// `keep_session` says the session persists: those stay parked for the
    /// retransmission after [`ClientKernel::reconnect`].
    pub fn connection_lost(&self, keep_session: bool) {
        self.outbox.close();
        self.pending
            .close(|parked: &Parked| keep_session && parked.op.kind() == OpKind::Publish);
        // QoS 2 packet ids awaiting PUBREL are session state
        // [MQTT-4.1.0-1]: a persistent session keeps them, or the broker's
        // resend after reconnect is handed to the application twice.
        if !keep_session {
            lock(&self.proto).awaiting_pubrel.clear();
        }
    }

    /// Opens a new connection for the same client: a fresh outbox and
    /// decoder, CONNECT (whose operation is returned), then every kept
    /// publish again with DUP set (or PUBREL where PUBREC was seen).
    pub fn reconnect(&self, now_ms: u64) -> Op {
        self.outbox.reopen();
        {
            let mut p = lock(&self.proto);
            p.decoder = FrameDecoder::new(Some(self.cfg.version), self.cfg.max_packet_size);
            p.aliases.clear();
            p.keep_alive_secs = self.cfg.keep_alive_secs;
        }
        let op = self.connect(now_ms);
        let version = self.cfg.version;
        let mut resend = Vec::new();
        let mut looked_up = Vec::new();
        // Only publishes are sent again: the CONNECT just parked under
        // packet id 0 is already queued, and is shared with the wire.
        self.pending.for_each(|pid, parked| match parked.stage {
            _ if parked.op.kind() != OpKind::Publish => {}
            Stage::Ack if self.faults().has(Fault::NanonngF135bbc6b) => {
                // NanoNNG f135bbc6b: the resend takes the message's pointer
                // under the lock and its reference after dropping it.
                let m = parked
                    .op
                    .with_msg(|slot| slot.peek().map(|m| m.alias("client: resend lookup")));
                looked_up.extend(m);
            }
            Stage::Ack => {
                let wire = parked.op.with_msg(|slot| {
                    let m = slot.peek()?;
                    // The outbox lets a write outlive its connection, so the
                    // old connection's write may still be reading this
                    // message: DUP is set in place only when nobody else
                    // holds it, otherwise the resend gets its own copy.
                    if m.count() != Some(1) {
                        let data = m.data("client: resend (copy)").ok()?;
                        let dup = request::with_dup(&data, version).ok()?;
                        let site = "client: resend (copy)";
                        return Some(self.ledger.alloc(MsgKind::Publish, dup, site));
                    }
                    let _ = m.mutate("client: set DUP", |d| {
                        if let Ok(b) = request::with_dup(d, version) {
                            *d = b;
                        }
                    });
                    Some(m.retain("client: resend"))
                });
                if let Some(w) = wire {
                    resend.push(Entry::Msg {
                        msg: w,
                        frame: OutFrame::Raw,
                    });
                }
            }
            Stage::Pubcomp => resend.push(Entry::Msg {
                msg: self.encoded(
                    &Packet::Pubrel(PubResponse::new(pid)),
                    "client: resend PUBREL",
                ),
                frame: OutFrame::Raw,
            }),
        });
        for m in looked_up {
            resend.push(Entry::Msg {
                msg: m.retain("client: resend (after the lock)"),
                frame: OutFrame::Raw,
            });
        }
        for e in resend {
            let _ = self.outbox.enqueue(e);
        }
        op
    }

    fn encoded(&self, packet: &Packet, site: &'static str) -> MsgRef {
        let mut buf = BytesMut::new();
        let _ = codec::encode(packet, self.cfg.version, &mut buf);
        self.ledger
            .alloc(msg_kind(packet.packet_type()), buf.freeze(), site)
    }

    /// Ends the client: the connection is treated as lost without keeping
    /// anything, and undelivered received messages are released.
    pub fn shutdown(&self) {
        self.connection_lost(false);
        let drained: Vec<Received> = lock(&self.proto).inbox.drain(..).collect();
        for r in drained {
            r.msg.release("client shutdown: undelivered");
        }
    }
}
