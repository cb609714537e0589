//! The soak's load client: one MQTT connection over TLS, driven straight
//! with the codec (no client kernel), so that a role can do exactly what
//! it is meant to (stop reading, read slowly, vanish) and costs the load
//! generator as little as possible. The same code talks to every broker.

use super::SoakError;
use crate::codec::{
    self, Connect, FrameDecoder, MqttString, Packet, PubResponse, Publish, QoS, Subscribe,
    Subscription, SubscriptionOptions, Version,
};
use crate::tls::ClientTls;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The protocol version every soak client speaks (MQTT 5, so that a
/// refusing broker can say Quota exceeded).
pub const VERSION: Version = Version::V5;

/// Largest packet a soak client accepts.
const MAX_PACKET: usize = 1 << 20;

/// How long connecting and subscribing may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

type Stream = TlsStream<TcpStream>;

/// Where the broker under test listens and how to trust it.
#[derive(Clone)]
pub struct Endpoint {
    /// TLS address.
    pub addr: SocketAddr,
    /// TLS client configuration (trusts the soak's CA).
    pub tls: ClientTls,
}

/// One connected client, split so that reading and writing can be driven
/// by different tasks.
pub struct Client {
    /// The read half and its decoder.
    pub rx: Reader,
    /// The write half.
    pub tx: Writer,
}

/// The reading side of a [`Client`].
pub struct Reader {
    rd: ReadHalf<Stream>,
    dec: FrameDecoder,
    buf: BytesMut,
}

/// The writing side of a [`Client`].
pub struct Writer {
    wr: WriteHalf<Stream>,
    out: BytesMut,
}

/// How a connection should look to the broker.
#[derive(Debug, Clone)]
pub struct Hello {
    /// Client identifier.
    pub id: String,
    /// Start a new session (false: resume a persistent one).
    pub clean_start: bool,
    /// Session Expiry Interval in seconds (0: ends with the connection).
    pub session_expiry: u32,
    /// Socket receive buffer, when the role wants a small one (a stopped
    /// reader should not hide megabytes in the kernel).
    pub recv_buffer: Option<u32>,
}

impl Hello {
    /// A clean, non-persistent session.
    pub fn clean(id: impl Into<String>) -> Self {
        Hello {
            id: id.into(),
            clean_start: true,
            session_expiry: 0,
            recv_buffer: None,
        }
    }
}

fn encode(p: &Packet, out: &mut BytesMut) -> Result<(), SoakError> {
    codec::encode(p, VERSION, out).map_err(|e| SoakError::Protocol(format!("encode: {e}")))
}

impl Client {
    /// Connects over TLS and completes CONNECT / CONNACK.
    pub async fn connect(ep: &Endpoint, hello: &Hello) -> Result<Client, SoakError> {
        let what = format!("{} connecting to {}", hello.id, ep.addr);
        let setup = async {
            let sock = tokio::net::TcpSocket::new_v4().map_err(|e| SoakError::io(&what, e))?;
            if let Some(n) = hello.recv_buffer {
                sock.set_recv_buffer_size(n)
                    .map_err(|e| SoakError::io(&what, e))?;
            }
            let tcp = sock
                .connect(ep.addr)
                .await
                .map_err(|e| SoakError::io(&what, e))?;
            tcp.set_nodelay(true).map_err(|e| SoakError::io(&what, e))?;
            let stream = ep
                .tls
                .connect(tcp)
                .await
                .map_err(|e| SoakError::Connect(format!("{what}: TLS: {e}")))?;
            let (rd, wr) = tokio::io::split(stream);
            let mut c = Client {
                rx: Reader {
                    rd,
                    dec: FrameDecoder::new(Some(VERSION), MAX_PACKET),
                    buf: BytesMut::with_capacity(16 * 1024),
                },
                tx: Writer {
                    wr,
                    out: BytesMut::with_capacity(16 * 1024),
                },
            };
            let mut connect = Connect {
                clean_start: hello.clean_start,
                keep_alive: 0,
                client_id: MqttString::new(hello.id.clone())
                    .map_err(|e| SoakError::Protocol(format!("client id: {e}")))?,
                will: None,
                username: None,
                password: None,
                properties: Default::default(),
            };
            if hello.session_expiry > 0 {
                connect.properties.session_expiry_interval = Some(hello.session_expiry);
            }
            c.tx.send(&Packet::Connect(Box::new(connect))).await?;
            c.tx.flush().await?;
            match c.rx.next().await? {
                Some(Packet::Connack(a)) if (a.reason as u8) < 0x80 => Ok(c),
                Some(Packet::Connack(a)) => Err(SoakError::Connect(format!(
                    "{what}: CONNACK refused: {:?}",
                    a.reason
                ))),
                other => Err(SoakError::Protocol(format!(
                    "{what}: expected CONNACK, got {other:?}"
                ))),
            }
        };
        tokio::time::timeout(SETUP_TIMEOUT, setup)
            .await
            .map_err(|_| SoakError::Connect(format!("{what}: no CONNACK in {SETUP_TIMEOUT:?}")))?
    }

    /// Subscribes to `filter` at `qos` and waits for the SUBACK (reading
    /// and acknowledging nothing else meanwhile: a retained or early
    /// delivery is simply counted as read).
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), SoakError> {
        let s = Subscribe {
            packet_id: 1,
            filters: vec![Subscription {
                filter: MqttString::new(filter)
                    .map_err(|e| SoakError::Protocol(format!("filter: {e}")))?,
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        };
        self.tx.send(&Packet::Subscribe(s)).await?;
        self.tx.flush().await?;
        let wait = async {
            loop {
                match self.rx.next().await? {
                    Some(Packet::Suback(a)) => {
                        return match a.reasons.first() {
                            Some(r) if (*r as u8) < 0x80 => Ok(()),
                            r => Err(SoakError::Protocol(format!(
                                "SUBSCRIBE {filter} refused: {r:?}"
                            ))),
                        };
                    }
                    Some(_) => {}
                    None => {
                        return Err(SoakError::Protocol(format!(
                            "closed before the SUBACK for {filter}"
                        )));
                    }
                }
            }
        };
        tokio::time::timeout(SETUP_TIMEOUT, wait)
            .await
            .map_err(|_| SoakError::Protocol(format!("no SUBACK for {filter}")))?
    }
}

impl Reader {
    /// The next packet; `None` when the broker closed the connection.
    pub async fn next(&mut self) -> Result<Option<Packet>, SoakError> {
        loop {
            if let Some(p) = self
                .dec
                .next_packet()
                .map_err(|e| SoakError::Protocol(format!("from the broker: {e}")))?
            {
                return Ok(Some(p));
            }
            if !self.fill(usize::MAX).await? {
                return Ok(None);
            }
        }
    }

    /// Reads once (at most `limit` bytes, as a slow reader does) and returns
    /// every whole packet now in; `None` when the connection closed.
    pub async fn read_some(&mut self, limit: usize) -> Result<Option<Vec<Packet>>, SoakError> {
        if !self.fill(limit).await? {
            return Ok(None);
        }
        let mut out = Vec::new();
        while let Some(p) = self
            .dec
            .next_packet()
            .map_err(|e| SoakError::Protocol(format!("from the broker: {e}")))?
        {
            out.push(p);
        }
        Ok(Some(out))
    }

    async fn fill(&mut self, limit: usize) -> Result<bool, SoakError> {
        self.buf.clear();
        let n = if limit == usize::MAX {
            self.rd.read_buf(&mut self.buf).await
        } else {
            self.buf.resize(limit.min(64 * 1024), 0);
            let r = self.rd.read(&mut self.buf).await;
            if let Ok(n) = r {
                self.buf.truncate(n);
            }
            r
        };
        match n {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.dec.extend(&self.buf);
                Ok(true)
            }
            // A reset is the broker ending the connection, as a close is.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(false),
            Err(e) => Err(SoakError::io("reading", e)),
        }
    }
}

impl Writer {
    /// Encodes `p` into the pending batch.
    pub fn queue(&mut self, p: &Packet) -> Result<(), SoakError> {
        encode(p, &mut self.out)
    }

    /// Bytes waiting in the batch.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Queues `p` and flushes.
    pub async fn send(&mut self, p: &Packet) -> Result<(), SoakError> {
        self.queue(p)?;
        self.flush().await
    }

    /// Writes the batch out.
    pub async fn flush(&mut self) -> Result<(), SoakError> {
        if !self.out.is_empty() {
            self.wr
                .write_all(&self.out)
                .await
                .map_err(SoakError::write)?;
            self.out.clear();
        }
        self.wr.flush().await.map_err(SoakError::write)
    }

    /// Acknowledges a received QoS 1 PUBLISH.
    pub fn ack(&mut self, p: &Publish) -> Result<(), SoakError> {
        if p.qos == QoS::AtLeastOnce {
            self.queue(&Packet::Puback(PubResponse::new(p.packet_id)))?;
        }
        Ok(())
    }
}

/// A PUBLISH encoded once, for a publisher that sends the same bytes with
/// a fresh packet id each time.
pub struct Template {
    bytes: Bytes,
    /// Offset of the packet id (QoS 1), if any.
    pid_at: Option<usize>,
}

impl Template {
    /// `payload` on `topic` at `qos`.
    pub fn new(topic: &str, payload: Bytes, qos: QoS) -> Result<Template, SoakError> {
        let mut p = Publish::new(
            MqttString::new(topic).map_err(|e| SoakError::Protocol(format!("topic: {e}")))?,
            payload,
        );
        p.qos = qos;
        p.packet_id = if qos == QoS::AtMostOnce { 0 } else { 1 };
        let mut b = BytesMut::new();
        encode(&Packet::Publish(p), &mut b)?;
        let pid_at = (qos != QoS::AtMostOnce).then(|| {
            // Fixed header, then the topic (2-byte length + name), then the
            // packet id.
            let header = codec::parse_fixed_header(&b)
                .ok()
                .flatten()
                .map_or(2, |h| h.header_len);
            header + 2 + topic.len()
        });
        Ok(Template {
            bytes: b.freeze(),
            pid_at,
        })
    }

    /// Appends the packet with `pid` (ignored at QoS 0) to `w`.
    pub fn queue(&self, w: &mut Writer, pid: u16) {
        let start = w.out.len();
        w.out.extend_from_slice(&self.bytes);
        if let Some(at) = self.pid_at
            && let Some(slot) = w.out.get_mut(start + at..start + at + 2)
        {
            slot.copy_from_slice(&pid.to_be_bytes());
        }
    }
}
