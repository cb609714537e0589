//! One connection of the hostile broker: reading packets, sending packets
//! or raw bytes, and serving a client plainly once the scenario is done.
//!
//! Everything here observes a peer under test, so failures are recorded as
//! events (text for the report), not returned as errors: a client that
//! resets the connection is a result.

use super::finding::Finding;
use super::io::{HostileIo, Shaping};
use super::packets;
use super::protocol::ClientRules;
use crate::codec::{FrameDecoder, Packet, PacketType, QoS, ReasonCode, Subscribe, Version};
use crate::sync::StdArc;
use crate::tls::ServerTls;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

/// Largest packet a client under test may send us.
const MAX_PACKET: usize = 1 << 20;

/// How a read from the client ended, when it did not yield a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The client closed the connection (close_notify or FIN).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// The client sent something the codec rejects.
    Malformed(String),
    /// The TLS or TCP layer failed (reset, bad record, ...).
    Broken(String),
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Closed => f.write_str("closed the connection"),
            ReadEnd::Timeout => f.write_str("stayed silent"),
            ReadEnd::Malformed(e) => write!(f, "sent a malformed packet ({e})"),
            ReadEnd::Broken(e) => write!(f, "broke the connection ({e})"),
        }
    }
}

/// What every connection of a scenario reports to the campaign as it
/// happens: whether a message reached the client, so that a client which
/// recovered can be stopped at once instead of at the time limit.
#[derive(Debug)]
pub struct Observer {
    delivered: watch::Sender<bool>,
}

impl Observer {
    /// A fresh observer and the receiver the campaign waits on.
    pub fn new() -> (StdArc<Observer>, watch::Receiver<bool>) {
        let (delivered, rx) = watch::channel(false);
        (StdArc::new(Observer { delivered }), rx)
    }

    fn delivered(&self) {
        self.delivered.send_replace(true);
    }

    /// True once a message reached the client.
    pub fn was_delivered(&self) -> bool {
        *self.delivered.borrow()
    }
}

/// What a connection left behind when it ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// Everything that happened, in order.
    pub events: Vec<String>,
    /// The protocol rules the client broke on it.
    pub violations: Vec<Finding>,
}

/// A client's TLS connection to the hostile broker.
pub struct Session {
    tls: TlsStream<HostileIo>,
    decoder: FrameDecoder,
    version: Version,
    receive_maximum: Option<u16>,
    rules: ClientRules,
    observer: StdArc<Observer>,
    /// The QoS 1 PUBLISH whose PUBACK proves the delivery.
    awaiting_ack: Option<u16>,
    delivered_here: bool,
    next_id: u16,
    /// What happened on this connection, in order.
    pub events: Vec<String>,
}

impl Session {
    /// Runs the TLS handshake on `tcp` within `limit`; deliveries are
    /// reported to `observer`.
    pub async fn accept(
        tls: &ServerTls,
        tcp: TcpStream,
        limit: Duration,
        observer: StdArc<Observer>,
    ) -> Result<Self, String> {
        let io = HostileIo::new(tcp);
        let stream = match tokio::time::timeout(limit, tls.accept(io)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
            Err(_) => return Err(format!("TLS handshake not finished within {limit:?}")),
        };
        Ok(Session {
            tls: stream,
            decoder: FrameDecoder::new(None, MAX_PACKET),
            version: Version::V311,
            receive_maximum: None,
            rules: ClientRules::new(),
            observer,
            awaiting_ack: None,
            delivered_here: false,
            next_id: 1,
            events: vec!["TLS handshake done".to_owned()],
        })
    }

    /// The protocol violations the client committed on this connection.
    pub fn take_violations(&mut self) -> Vec<Finding> {
        self.rules.take()
    }

    /// The client stayed connected for `waited` after we sent it `what`, a
    /// malformed packet it must close the connection on.
    pub fn stayed_after_malformed(&mut self, what: &str, waited: Duration) {
        self.rules.stayed_after_malformed(what, waited);
    }

    /// A packet id for our next QoS 1 PUBLISH (1..=65535, wrapping).
    pub fn next_packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Records that the bytes of `packet` went out, for the protocol checks
    /// (a flood written as raw bytes).
    pub fn record_sent(&mut self, packet: &Packet) {
        self.rules.sent(packet);
    }

    /// The MQTT version the client's CONNECT declared.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The Receive Maximum of the client's CONNECT (MQTT 5), if it set one.
    pub fn receive_maximum(&self) -> Option<u16> {
        self.receive_maximum
    }

    /// Records an event.
    pub fn note(&mut self, event: impl Into<String>) {
        self.events.push(event.into());
    }

    /// The next packet from the client.
    pub async fn next_packet(&mut self, limit: Duration) -> Result<Packet, ReadEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.decoder.next_packet() {
                Ok(Some(p)) => {
                    if let Some(v) = self.decoder.version() {
                        self.version = v;
                    }
                    self.rules.received(&p, self.version);
                    if let (Packet::Puback(a), Some(id)) = (&p, self.awaiting_ack)
                        && a.packet_id == id
                    {
                        self.awaiting_ack = None;
                        self.note(format!("read PUBACK {id}: the message was delivered"));
                        self.observer.delivered();
                    }
                    return Ok(p);
                }
                Ok(None) => {}
                Err(e) => {
                    self.rules.malformed(e.spec(), &e.to_string());
                    return Err(ReadEnd::Malformed(e.to_string()));
                }
            }
            let read = tokio::time::timeout_at(deadline, self.tls.read(&mut buf)).await;
            match read {
                Err(_) => return Err(ReadEnd::Timeout),
                Ok(Ok(0)) => return Err(ReadEnd::Closed),
                Ok(Ok(n)) => self.decoder.extend(buf.get(..n).unwrap_or_default()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ReadEnd::Broken(
                        "TCP closed without TLS close_notify".to_owned(),
                    ));
                }
                Ok(Err(e)) => return Err(ReadEnd::Broken(e.to_string())),
            }
        }
    }

    /// Reads the CONNECT, which sets the version.
    pub async fn read_connect(&mut self, limit: Duration) -> Result<(), ReadEnd> {
        match self.next_packet(limit).await? {
            Packet::Connect(c) => {
                self.receive_maximum = c.properties.receive_maximum;
                self.note(format!(
                    "read CONNECT (MQTT {}, client id `{}`, keep-alive {} s{})",
                    self.version,
                    c.client_id.as_str(),
                    c.keep_alive,
                    c.properties
                        .receive_maximum
                        .map(|r| format!(", receive maximum {r}"))
                        .unwrap_or_default()
                ));
                Ok(())
            }
            other => Err(ReadEnd::Malformed(format!(
                "first packet is {}, not CONNECT",
                other.packet_type()
            ))),
        }
    }

    /// Reads until a SUBSCRIBE, answering PINGREQ and acknowledging QoS 1
    /// PUBLISHes on the way.
    pub async fn read_subscribe(&mut self, limit: Duration) -> Result<Subscribe, ReadEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_packet(left).await? {
                Packet::Subscribe(s) => {
                    self.note(format!(
                        "read SUBSCRIBE id {} for `{}`",
                        s.packet_id,
                        s.filters
                            .first()
                            .map(|f| f.filter.as_str().to_owned())
                            .unwrap_or_default()
                    ));
                    return Ok(s);
                }
                other => self.answer(other).await,
            }
        }
    }

    /// The well-behaved answer to a packet outside the scenario's script.
    async fn answer(&mut self, packet: Packet) {
        let reply = match &packet {
            Packet::Pingreq => Some(Packet::Pingresp),
            Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                Some(Packet::Puback(packets::ack(p.packet_id)))
            }
            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                Some(Packet::Pubrec(packets::ack(p.packet_id)))
            }
            Packet::Pubrel(a) => Some(Packet::Pubcomp(packets::ack(a.packet_id))),
            Packet::Pubrec(a) => Some(Packet::Pubrel(packets::ack(a.packet_id))),
            _ => None,
        };
        self.note(format!("read {}", packet.packet_type()));
        if let Some(r) = reply {
            self.send(&r).await.ok();
        }
    }

    /// Sends `packets` one byte per TLS record (a PUBLISH among them is a
    /// delivery once written).
    pub async fn send_packets_bytewise(&mut self, packets: &[Packet]) -> Result<(), String> {
        let mut wire = Vec::new();
        for p in packets {
            wire.extend_from_slice(&self.encode(p).ok_or("cannot encode")?);
        }
        self.send_bytewise(&wire).await?;
        for p in packets {
            self.rules.sent(p);
            if matches!(p, Packet::Publish(_)) {
                self.delivered_here = true;
                self.observer.delivered();
            }
        }
        Ok(())
    }

    /// Sends one packet, encoded in the client's version.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), String> {
        let wire = packets::encode(packet, self.version)
            .ok_or_else(|| format!("cannot encode {}", packet.packet_type()))?;
        self.write(&wire).await?;
        self.rules.sent(packet);
        self.note(format!("sent {}", packet.packet_type()));
        Ok(())
    }

    /// Sends bytes as they are, in one TLS record.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.write(bytes).await?;
        self.note(format!("sent raw bytes {}", hex_spaced(bytes)));
        Ok(())
    }

    /// Sends bytes as they are without logging them (a flood).
    pub async fn send_raw_quiet(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.write(bytes).await
    }

    /// Sends `bytes` one per TLS record.
    pub async fn send_bytewise(&mut self, bytes: &[u8]) -> Result<(), String> {
        for b in bytes {
            self.write(std::slice::from_ref(b)).await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let limit = Duration::from_secs(10);
        let io = async {
            self.tls.write_all(bytes).await?;
            self.tls.flush().await
        };
        match tokio::time::timeout(limit, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err("write blocked for 10 s (the client stopped reading)".to_owned()),
        }
    }

    /// Shapes the following writes below TLS.
    pub fn set_shaping(&mut self, shaping: Shaping) {
        self.tls.get_mut().0.set_shaping(shaping);
    }

    /// Ends the session as it is (the connection drops with it).
    pub fn finish(mut self) -> Ended {
        Ended {
            violations: self.rules.take(),
            events: self.events,
        }
    }

    /// Closes cleanly: close_notify, then FIN.
    pub async fn close(mut self) -> Ended {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tls.shutdown()).await;
        self.note("closed (close_notify + FIN)");
        self.finish()
    }

    /// Closes with a FIN and no close_notify.
    pub fn drop_tcp(mut self) -> Ended {
        let violations = self.rules.take();
        let mut events = self.events;
        let (io, _) = self.tls.into_inner();
        io.close();
        events.push("closed the TCP connection without close_notify".to_owned());
        Ended { events, violations }
    }

    /// Ends with a TCP reset.
    pub fn reset(mut self) -> Ended {
        let violations = self.rules.take();
        let mut events = self.events;
        let (io, _) = self.tls.into_inner();
        events.push(match io.reset() {
            Ok(()) => "reset the connection (SO_LINGER 0, RST)".to_owned(),
            Err(e) => format!("could not set SO_LINGER 0 ({e}); closed instead"),
        });
        Ended { events, violations }
    }

    /// Counts the messages of a flood the client acknowledged as delivered
    /// (it received them), once the flood is over.
    pub fn flood_delivered(&mut self) {
        if self.rules.acked() > 0 {
            self.delivered_here = true;
            self.note(format!(
                "the client acknowledged {} PUBLISHes",
                self.rules.acked()
            ));
            self.observer.delivered();
        }
    }

    /// True once this connection delivered a message.
    pub fn delivered_here(&self) -> bool {
        self.delivered_here
    }

    /// Watches what the client does for up to `limit` (answering pings and
    /// acknowledging its publishes), and says it in one line; the flag is
    /// true when the client is still connected at the end.
    pub async fn watch(&mut self, limit: Duration) -> (String, bool) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen: Vec<(PacketType, usize)> = Vec::new();
        let end = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_packet(left).await {
                Ok(p) => {
                    let t = p.packet_type();
                    match seen.iter_mut().find(|(k, _)| *k == t) {
                        Some((_, n)) => *n += 1,
                        None => seen.push((t, 1)),
                    }
                    if t == PacketType::Disconnect {
                        break ReadEnd::Closed;
                    }
                    let quiet = matches!(p, Packet::Puback(_));
                    if !quiet {
                        self.answer(p).await;
                    }
                }
                Err(e) => break e,
            }
        };
        let sent = seen
            .iter()
            .map(|(t, n)| {
                if *n == 1 {
                    t.to_string()
                } else {
                    format!("{n} {t}")
                }
            })
            .collect::<Vec<_>>();
        let line = if sent.is_empty() {
            format!("client {end}")
        } else {
            format!("client sent {}, then {end}", sent.join(", "))
        };
        self.note(line.clone());
        (line, end == ReadEnd::Timeout)
    }

    /// Serves the rest of the connection as a plain broker: grants every
    /// SUBSCRIBE and publishes one message on its topic, answers pings and
    /// acknowledgements, until the client leaves or `limit` passes.
    pub async fn serve_plain(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_packet(left).await {
                Ok(Packet::Subscribe(s)) => {
                    if self.grant(&s, s.packet_id).await.is_err() {
                        return;
                    }
                }
                Ok(Packet::Disconnect(_)) => {
                    self.note("read DISCONNECT");
                    return;
                }
                Ok(p) => self.answer(p).await,
                Err(e) => {
                    self.note(format!("client {e}"));
                    return;
                }
            }
        }
    }

    /// Sends the SUBACK (with `packet_id`) and delivers one message.
    pub async fn grant(&mut self, sub: &Subscribe, packet_id: u16) -> Result<(), String> {
        self.send(&packets::suback_for(sub, packet_id)).await?;
        self.deliver(sub).await
    }

    /// Publishes one message on a topic `sub`'s first filter matches, at
    /// QoS 1 when the subscription allows it (its PUBACK then proves the
    /// delivery), else at QoS 0 (delivered once written). The observer
    /// hears of the delivery.
    pub async fn deliver(&mut self, sub: &Subscribe) -> Result<(), String> {
        let granted = sub
            .filters
            .first()
            .map_or(QoS::AtMostOnce, |f| f.options.qos);
        self.delivered_here = true;
        if granted == QoS::AtMostOnce {
            self.publish_to(sub, QoS::AtMostOnce, 0).await?;
            self.observer.delivered();
            return Ok(());
        }
        let id = self.next_packet_id();
        self.publish_to(sub, QoS::AtLeastOnce, id).await?;
        self.awaiting_ack = Some(id);
        Ok(())
    }

    /// Publishes one message on a topic `sub`'s first filter matches.
    pub async fn publish_to(&mut self, sub: &Subscribe, qos: QoS, id: u16) -> Result<(), String> {
        let filter = sub
            .filters
            .first()
            .map(|f| f.filter.as_str().to_owned())
            .unwrap_or_default();
        let topic = packets::topic_matching(&filter);
        let p = packets::publish(&topic, qos, id).ok_or("cannot build PUBLISH")?;
        self.send(&p).await
    }

    /// Sends a CONNACK with `reason`.
    pub async fn connack(&mut self, reason: ReasonCode) -> Result<(), String> {
        self.send(&packets::connack(reason)).await
    }

    /// The encoding of `packet` in the client's version.
    pub fn encode(&self, packet: &Packet) -> Option<Bytes> {
        packets::encode(packet, self.version)
    }
}

/// `82 0c 00` style hex.
pub fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
