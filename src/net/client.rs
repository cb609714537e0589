//! The async client library over [`ClientKernel`]: connect over TLS or
//! plain TCP, subscribe, publish, receive, disconnect.
//!
//! Every request follows the caller's side of the ownership rules: the
//! request message is built with [`request`] and put on its operation, the
//! kernel owns it from `send_request` on, and once the operation finished
//! [`request::reap`] hands back whatever is the caller's to free. A request
//! waits for its acknowledgement with a timeout; when the timeout fires
//! first, the request is cancelled before it is reaped.

use super::NetError;
use super::clock::Clock;
use super::io::{outbox_waker, write_loop};
use crate::client::{ClientConfig, ClientError, ClientFlow, ClientKernel, request};
use crate::codec::{self, MqttString, Packet, Publish, QoS, ReasonCode, Version};
use crate::ledger::{self, Ledger, Op, Outcome};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, StdArc, lock};
use crate::tls::{ClientTls, FirstBytes, sniff};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// How often the client timer runs (request timeouts, keep-alive pings).
const TICK: Duration = Duration::from_millis(250);

/// Where and how a client connects.
#[derive(Clone)]
pub struct ClientOptions {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS configuration; `None` for plain TCP.
    pub tls: Option<ClientTls>,
    /// MQTT settings (version, client id, keep-alive, will, request
    /// timeout, faults).
    pub mqtt: ClientConfig,
    /// Bound on each connection step: TCP connect, TLS handshake, CONNACK.
    pub connect_timeout: Duration,
    /// How the client's tasks are named in the ledger (`NAME/reader`, ...).
    pub name: String,
}

impl ClientOptions {
    /// Plain defaults for `host:port` (MQTT 5, no TLS).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ClientOptions {
            host: host.into(),
            port,
            tls: None,
            mqtt: ClientConfig::default(),
            connect_timeout: Duration::from_secs(10),
            name: "client".into(),
        }
    }
}

/// A message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// The RETAIN flag as delivered (set for a retained message sent on
    /// subscribe).
    pub retain: bool,
    /// The Message Expiry Interval as delivered (MQTT 5): what was left of
    /// the publisher's.
    pub message_expiry: Option<u32>,
    /// The topic alias it came with (MQTT 5, when we offered aliases); the
    /// topic above is already resolved.
    pub topic_alias: Option<u16>,
}

struct Shared {
    kernel: ClientKernel,
    clock: Clock,
    name: String,
    outbox: StdArc<Notify>,
    received: Notify,
    /// The caller asked to disconnect: close once the outbox is flushed.
    closing: AtomicBool,
    /// The connection ended; why, for `recv` and later requests.
    closed: Mutex<Option<String>>,
    /// Ends the connection abruptly (no DISCONNECT, no close_notify).
    kill: Notify,
    /// A plain connection's first bytes from the broker were TLS.
    answered_tls: AtomicBool,
}

impl Shared {
    fn actor(&self, role: &str) -> String {
        format!("{}/{role}", self.name)
    }

    fn closed_reason(&self) -> Option<String> {
        lock(&self.closed).clone()
    }
}

/// A connected client.
pub struct Client {
    shared: StdArc<Shared>,
    io: Option<JoinHandle<()>>,
    timer: Option<JoinHandle<()>>,
    session_present: bool,
    request_timeout: Duration,
}

impl Client {
    /// Connects (TCP, TLS when configured, MQTT CONNECT/CONNACK), each step
    /// bounded by `opts.connect_timeout`. The client records into `ledger`.
    pub async fn connect(opts: ClientOptions, ledger: Arc<Ledger>) -> Result<Client, NetError> {
        let addr = format!("{}:{}", opts.host, opts.port);
        let limit = opts.connect_timeout;
        let tcp = tokio::time::timeout(limit, TcpStream::connect(&addr))
            .await
            .map_err(|_| NetError::Timeout {
                what: "the TCP connect",
                limit,
            })?
            .map_err(|source| NetError::Connect {
                addr: addr.clone(),
                source,
            })?;
        super::socket::prepare(&tcp);
        let outbox = StdArc::new(Notify::new());
        let request_timeout = Duration::from_millis(opts.mqtt.request_timeout_ms);
        let shared = StdArc::new(Shared {
            kernel: ClientKernel::new(ledger, opts.mqtt.clone(), Some(outbox_waker(&outbox)), None),
            clock: Clock::new(),
            name: opts.name.clone(),
            outbox,
            received: Notify::new(),
            closing: AtomicBool::new(false),
            closed: Mutex::new(None),
            kill: Notify::new(),
            answered_tls: AtomicBool::new(false),
        });
        let io = match &opts.tls {
            Some(tls) => {
                let stream = tokio::time::timeout(limit, tls.connect(tcp))
                    .await
                    .map_err(|_| NetError::Timeout {
                        what: "the TLS handshake",
                        limit,
                    })?
                    .map_err(|e| match sniff::no_tls_answer(&e) {
                        Some(what) => NetError::TlsToPlainPort {
                            addr: addr.clone(),
                            what,
                        },
                        None => NetError::Tls(e),
                    })?;
                tokio::spawn(run_io(shared.clone(), stream, Some(tls.clone())))
            }
            None => tokio::spawn(run_io(shared.clone(), tcp, None)),
        };
        let timer = tokio::spawn(run_timer(shared.clone()));
        let mut client = Client {
            shared,
            io: Some(io),
            timer: Some(timer),
            session_present: false,
            request_timeout,
        };
        let caller = client.shared.actor("caller");
        let op = ledger::with_actor(&caller, || {
            client.shared.kernel.connect(client.shared.clock.now_ms())
        });
        let connack = match client.finish(&op, limit, "connect").await {
            Ok(connack) => connack,
            Err(NetError::Closed(why)) if opts.tls.is_none() => {
                return Err(if client.shared.answered_tls.load(Ordering::Acquire) {
                    NetError::PlainToTlsPort { addr, answer: why }
                } else {
                    NetError::ClosedBeforeConnack { addr, why }
                });
            }
            Err(e) => return Err(e),
        };
        let packet = codec::decode(&connack, client.shared.kernel.config().version)
            .map_err(|e| NetError::Closed(format!("unreadable CONNACK: {e}")))?;
        match packet {
            Packet::Connack(c) if (c.reason as u8) < 0x80 => {
                client.session_present = c.session_present;
                Ok(client)
            }
            Packet::Connack(c) => Err(NetError::Refused(c.reason)),
            other => Err(NetError::Closed(format!(
                "expected CONNACK, got {}",
                other.packet_type()
            ))),
        }
    }

    /// The keep-alive in use, in seconds (the broker's Server Keep Alive
    /// when its CONNACK carried one).
    pub fn keep_alive_secs(&self) -> u16 {
        self.shared.kernel.keep_alive_secs()
    }

    /// True when the broker resumed a session for this client id.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The kernel (for its ledger and counters).
    pub fn kernel(&self) -> &ClientKernel {
        &self.shared.kernel
    }

    /// Waits for `op` (bounded by `limit`; cancelled when the bound fires
    /// first), reaps it and returns the acknowledgement's bytes on success.
    async fn finish(
        &self,
        op: &Op,
        limit: Duration,
        what: &'static str,
    ) -> Result<Bytes, NetError> {
        let (tx, rx) = oneshot::channel();
        op.on_finish(move |o| {
            let _ = tx.send(o.clone());
        });
        let caller = self.shared.actor("caller");
        if tokio::time::timeout(limit, rx).await.is_err() {
            ledger::with_actor(&caller, || self.shared.kernel.cancel(op));
        }
        let reaped = ledger::with_actor(&caller, || {
            let site = match op.outcome() {
                Some(Outcome::Success) => "caller: request done",
                _ => "caller: request (error path)",
            };
            request::reap(op, site)
        });
        let Some(reaped) = reaped else {
            // Cancel did not finish it: nothing more the caller may touch.
            return Err(NetError::Timeout {
                what: "a request",
                limit,
            });
        };
        let data = match &reaped.result {
            Some(m) => m.data("caller: read acknowledgement").unwrap_or_default(),
            None => Bytes::new(),
        };
        if let Some(m) = reaped.result {
            ledger::with_actor(&caller, || m.release("caller: acknowledgement read"));
        }
        match reaped.outcome {
            Outcome::Success => Ok(data),
            Outcome::Closed => Err(NetError::Closed(
                self.shared
                    .closed_reason()
                    .unwrap_or_else(|| "closed under the request".into()),
            )),
            Outcome::TimedOut | Outcome::Canceled => Err(NetError::Timeout { what, limit }),
            outcome => Err(NetError::Failed { what, outcome }),
        }
    }

    /// A request the kernel refused before parking it is finished here, so
    /// that every begun operation ends.
    fn refused(&self, op: &Op, e: crate::client::ClientError) -> NetError {
        let caller = self.shared.actor("caller");
        ledger::with_actor(&caller, || {
            if !op.is_finished() {
                op.finish(Outcome::Failed(e.to_string()), "caller: request refused");
            }
            request::reap(op, "caller: request (error path)");
        });
        NetError::Client(e)
    }

    /// Subscribes and waits for the SUBACK (bounded by the request
    /// timeout). Returns the granted QoS per filter.
    pub async fn subscribe(&self, filters: &[(&str, QoS)]) -> Result<Vec<QoS>, NetError> {
        self.check_open()?;
        let k = &self.shared.kernel;
        let version = k.config().version;
        let caller = self.shared.actor("caller");
        let op = ledger::with_actor(&caller, || request::subscribe(k.ledger(), version, filters))?;
        let sent = ledger::with_actor(&caller, || k.send_request(&op, self.shared.clock.now_ms()));
        if let Err(e) = sent {
            return Err(self.refused(&op, e));
        }
        let suback = self.finish(&op, self.request_timeout, "subscribe").await?;
        let Ok(Packet::Suback(s)) = codec::decode(&suback, version) else {
            return Err(NetError::Closed("unreadable SUBACK".into()));
        };
        let mut granted = Vec::with_capacity(s.reasons.len());
        for (i, code) in s.reasons.iter().enumerate() {
            match QoS::from_u8(*code as u8) {
                Some(q) => granted.push(q),
                None => {
                    let filter = filters.get(i).map_or("?", |f| f.0).to_string();
                    return Err(NetError::SubscriptionRefused {
                        filter,
                        code: *code as u8,
                    });
                }
            }
        }
        Ok(granted)
    }

    /// Publishes and waits until it is done: written (QoS 0), PUBACK
    /// (QoS 1) or PUBCOMP (QoS 2).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), NetError> {
        let topic = MqttString::new(topic).map_err(|_| ClientError::BadRequest("topic"))?;
        let mut p = Publish::new(topic, payload.into());
        p.qos = qos;
        p.retain = retain;
        self.publish_packet(p).await
    }

    /// Like [`Client::publish`], for a PUBLISH built by the caller (MQTT 5
    /// properties such as a Message Expiry Interval).
    pub async fn publish_packet(&self, p: Publish) -> Result<(), NetError> {
        self.check_open()?;
        let k = &self.shared.kernel;
        let version = k.config().version;
        let caller = self.shared.actor("caller");
        let qos = p.qos;
        let op = ledger::with_actor(&caller, || request::publish_packet(k.ledger(), version, p))?;
        if qos == QoS::AtMostOnce {
            ledger::with_actor(&caller, || k.publish_qos0(&op));
        } else {
            let sent =
                ledger::with_actor(&caller, || k.send_request(&op, self.shared.clock.now_ms()));
            if let Err(e) = sent {
                return Err(self.refused(&op, e));
            }
        }
        self.finish(&op, self.request_timeout, "publish")
            .await
            .map(|_| ())
    }

    fn check_open(&self) -> Result<(), NetError> {
        match self.shared.closed_reason() {
            Some(why) => Err(NetError::Closed(why)),
            None => Ok(()),
        }
    }

    /// The next delivered message. Fails once the connection ended and
    /// every delivered message was read.
    pub async fn recv(&mut self) -> Result<Message, NetError> {
        let reader = self.shared.actor("caller");
        loop {
            let notified = self.shared.received.notified();
            if let Some(r) = self.shared.kernel.take_received() {
                let payload = r.msg.data("caller: read payload").unwrap_or_default();
                ledger::with_actor(&reader, || request::consume(r.msg));
                return Ok(Message {
                    topic: r.publish.topic.as_str().to_string(),
                    payload,
                    qos: r.publish.qos,
                    retain: r.publish.retain,
                    message_expiry: r.publish.properties.message_expiry_interval,
                    topic_alias: r.publish.properties.topic_alias,
                });
            }
            if let Some(why) = self.shared.closed_reason() {
                return Err(NetError::Closed(why));
            }
            notified.await;
        }
    }

    /// Ends the connection abruptly: no DISCONNECT, no TLS close_notify,
    /// as when a network drops (the broker publishes the will). Requests in
    /// flight finish `Closed`. Returns once the connection ended (bounded).
    pub async fn drop_connection(&self) {
        self.shared.kill.notify_one();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.shared.closed_reason().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends DISCONNECT, waits (bounded) until it is written and the
    /// connection closed, and releases everything the client holds.
    pub async fn disconnect(mut self) -> Result<(), NetError> {
        let already = self.shared.closed_reason();
        if already.is_none() {
            let writer = self.shared.actor("caller");
            ledger::with_actor(&writer, || {
                self.shared.kernel.disconnect(ReasonCode::Success);
            });
            self.shared.closing.store(true, Ordering::Release);
            self.shared.outbox.notify_one();
        }
        if let Some(io) = self.io.take() {
            bounded_join(io, Duration::from_secs(2)).await;
        }
        self.teardown();
        match already {
            Some(why) => Err(NetError::Closed(why)),
            None => Ok(()),
        }
    }

    fn teardown(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        if let Some(io) = self.io.take() {
            // Not awaited (Drop): the kernel shutdown below closes the
            // outbox, which ends the writer too.
            io.abort();
        }
        let actor = self.shared.actor("shutdown");
        ledger::with_actor(&actor, || self.shared.kernel.shutdown());
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.timer.is_some() || self.io.is_some() {
            self.teardown();
        }
    }
}

async fn bounded_join(mut task: JoinHandle<()>, limit: Duration) {
    if tokio::time::timeout(limit, &mut task).await.is_err() {
        task.abort();
    }
}

async fn run_timer(shared: StdArc<Shared>) {
    let actor = shared.actor("timer");
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shared.closed_reason().is_none() {
        every.tick().await;
        let now = shared.clock.now_ms();
        ledger::with_actor(&actor, || shared.kernel.tick(now));
    }
}

/// The connection: a writer task draining the outbox and the reader loop
/// here. Ends with `connection_lost`, whichever side ended first.
async fn run_io<S>(shared: StdArc<Shared>, stream: S, tls: Option<ClientTls>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer_done = StdArc::new(Notify::new());
    let mut writer = tokio::spawn({
        let (shared, writer_done) = (shared.clone(), writer_done.clone());
        async move {
            let actor = shared.actor("writer");
            let end = write_loop(
                &shared.kernel.outbox,
                &shared.outbox,
                &mut wr,
                &actor,
                || shared.closing.load(Ordering::Acquire),
            )
            .await;
            writer_done.notify_one();
            end
        }
    });
    let actor = shared.actor("reader");
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // A TLS broker answers a plain CONNECT with an alert record, which the
    // decoder would misread as a malformed MQTT packet.
    let mut first_plain_read = tls.is_none();
    let why = loop {
        tokio::select! {
            _ = shared.kill.notified() => break "the connection was dropped on purpose".to_string(),
            _ = writer_done.notified() => break "the connection was closed".to_string(),
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break "the broker closed the connection".to_string(),
                Ok(_) => {
                    if std::mem::take(&mut first_plain_read)
                        && let Some(first) = FirstBytes::of(&buf).filter(|f| f.is_tls())
                    {
                        shared.answered_tls.store(true, Ordering::Release);
                        break first.describe();
                    }
                    let flow = ledger::with_actor(&actor, || shared.kernel.on_bytes(&buf));
                    buf.clear();
                    shared.received.notify_one();
                    if let ClientFlow::Close(e) = flow {
                        break e.to_string();
                    }
                }
                Err(e) => break match &tls {
                    Some(t) => t.explain(e).to_string(),
                    None => e.to_string(),
                },
            }
        }
    };
    *lock(&shared.closed) = Some(why);
    ledger::with_actor(&actor, || shared.kernel.connection_lost(false));
    shared.received.notify_one();
    shared.outbox.notify_one();
    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// The protocol version a `-V` flag names.
pub fn version_from_flag(v: u8) -> Option<Version> {
    match v {
        3 | 4 => Some(Version::V311),
        5 => Some(Version::V5),
        _ => None,
    }
}
