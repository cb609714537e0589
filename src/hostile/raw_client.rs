//! A minimal TLS MQTT 3.1.1 client on the codec, for the probe: it sends
//! whatever it is told (well-formed packets or raw bytes) and reports what
//! the broker answers, without the protections a real client has.

use super::packets;
use super::session::ReadEnd;
use crate::codec::{FrameDecoder, Packet, QoS, ReasonCode, Version};
use crate::tls::ClientTls;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Largest packet the probe accepts from a broker.
const MAX_PACKET: usize = 1 << 20;

/// The broker under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its address.
    pub addr: SocketAddr,
    /// The TLS client configuration (trusted CA, server name, identity).
    pub tls: ClientTls,
}

/// One connection to the broker under test.
pub struct RawClient {
    tls: TlsStream<TcpStream>,
    decoder: FrameDecoder,
    disconnects: Vec<usize>,
}

impl RawClient {
    /// TCP and TLS, within `limit`.
    pub async fn open(target: &Target, limit: Duration) -> Result<Self, String> {
        Self::open_with(target, &target.tls, limit).await
    }

    /// TCP and TLS with another TLS configuration (a broken certificate).
    pub async fn open_with(
        target: &Target,
        tls: &ClientTls,
        limit: Duration,
    ) -> Result<Self, String> {
        let handshake = async {
            let tcp = TcpStream::connect(target.addr)
                .await
                .map_err(|e| format!("TCP connect failed: {e}"))?;
            tls.connect(tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))
        };
        let stream = tokio::time::timeout(limit, handshake)
            .await
            .map_err(|_| format!("TLS handshake not finished within {limit:?}"))??;
        Ok(RawClient {
            tls: stream,
            decoder: FrameDecoder::new(Some(Version::V311), MAX_PACKET),
            disconnects: Vec::new(),
        })
    }

    /// Opens a connection and completes CONNECT/CONNACK.
    pub async fn connect(
        target: &Target,
        client_id: &str,
        limit: Duration,
    ) -> Result<Self, String> {
        let mut c = Self::open(target, limit).await?;
        let connect = packets::connect(client_id).ok_or("cannot build CONNECT")?;
        c.send(&connect).await?;
        match c.next_packet(limit).await {
            Ok(Packet::Connack(a)) if a.reason == ReasonCode::Success => Ok(c),
            Ok(Packet::Connack(a)) => Err(format!("CONNACK refused: {:?}", a.reason)),
            Ok(other) => Err(format!("expected CONNACK, got {}", other.packet_type())),
            Err(e) => Err(format!("no CONNACK: broker {e}")),
        }
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), String> {
        let wire = packets::encode(packet, Version::V311)
            .ok_or_else(|| format!("cannot encode {}", packet.packet_type()))?;
        self.send_raw(&wire).await
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        let io = async {
            self.tls.write_all(bytes).await?;
            self.tls.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(10), io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err("write blocked for 10 s".to_owned()),
        }
    }

    /// The next packet from the broker.
    pub async fn next_packet(&mut self, limit: Duration) -> Result<Packet, ReadEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    // MQTT 3.1.1 has no DISCONNECT from the server: note
                    // every one, decodable or not, with its size.
                    if frame.bytes.first().is_some_and(|b| b >> 4 == 14) {
                        self.disconnects.push(frame.bytes.len());
                    }
                    return self
                        .decoder
                        .decode_frame(&frame)
                        .map_err(|e| ReadEnd::Malformed(e.to_string()));
                }
                Ok(None) => {}
                Err(e) => return Err(ReadEnd::Malformed(e.to_string())),
            }
            match tokio::time::timeout_at(deadline, self.tls.read(&mut buf)).await {
                Err(_) => return Err(ReadEnd::Timeout),
                Ok(Ok(0)) => return Err(ReadEnd::Closed),
                Ok(Ok(n)) => self.decoder.extend(buf.get(..n).unwrap_or_default()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ReadEnd::Closed);
                }
                Ok(Err(e)) => return Err(ReadEnd::Broken(e.to_string())),
            }
        }
    }

    /// After a packet the codec rejected: reads (and drops) whatever comes
    /// until the broker closes the connection (true) or `limit` passes.
    pub async fn wait_closed(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.tls.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The sizes (fixed header included) of the DISCONNECT packets the
    /// broker sent on this MQTT 3.1.1 connection, where only clients send
    /// DISCONNECT.
    pub fn disconnects(&self) -> &[usize] {
        &self.disconnects
    }

    /// Reads until a packet `want` accepts (answering nothing), or the end.
    pub async fn expect(
        &mut self,
        limit: Duration,
        what: &str,
        want: impl Fn(&Packet) -> bool,
    ) -> Result<Packet, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_packet(left).await {
                Ok(p) if want(&p) => return Ok(p),
                Ok(_) => {}
                Err(e) => return Err(format!("no {what}: broker {e}")),
            }
        }
    }

    /// Closes cleanly (close_notify, FIN).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tls.shutdown()).await;
    }

    /// Ends with a TCP reset.
    pub fn reset(self) {
        let (tcp, _) = self.tls.into_inner();
        // Without SO_LINGER 0 this is a FIN, which is still a drop.
        let _ = tcp.set_zero_linger();
        drop(tcp);
    }
}

/// The liveness check: a fresh client connects, subscribes to a topic of
/// its own, publishes to it at QoS 1 and receives the message, within
/// `limit`. `n` keeps topics and client ids apart.
pub async fn liveness(target: &Target, n: usize, limit: Duration) -> Result<(), String> {
    let check = async {
        let topic = format!("mqtls/probe/live/{n}");
        let mut c = RawClient::connect(target, &format!("mqtls-probe-live-{n}"), limit).await?;
        let sub =
            packets::subscribe(1, &topic, QoS::AtLeastOnce).ok_or("cannot build SUBSCRIBE")?;
        c.send(&sub).await?;
        c.expect(
            limit,
            "SUBACK",
            |p| matches!(p, Packet::Suback(s) if s.packet_id == 1),
        )
        .await?;
        let publ = packets::publish(&topic, QoS::AtLeastOnce, 2).ok_or("cannot build PUBLISH")?;
        c.send(&publ).await?;
        c.expect(limit, "PUBLISH back", |p| {
            matches!(p, Packet::Publish(m) if m.topic.as_str() == topic && m.payload.as_ref() == packets::PAYLOAD)
        })
        .await?;
        c.send(&Packet::Disconnect(Default::default())).await.ok();
        c.close().await;
        Ok::<(), String>(())
    };
    tokio::time::timeout(limit, check)
        .await
        .map_err(|_| format!("not served within {limit:?}"))?
}
