//! Hostile input over TLS: the malicious SUBSCRIBE of NanoNNG 1505, an
//! oversize packet, a second CONNECT, a reserved packet type. Each gets a
//! clean close (a DISCONNECT with the reason code in MQTT 5), and the
//! broker keeps serving.

use super::pubsub::recv_n;
use super::{Env, ScenarioOutcome, Tls, scenario, step};
use crate::codec::{self, Connect, MqttString, Packet, QoS, ReasonCode, Version};
use crate::faults::FaultSet;
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The SUBSCRIBE from ZOO.md whose second filter claims 100 bytes.
pub const MALICIOUS_SUBSCRIBE: [u8; 14] = [
    0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78, 0x78, 0x00,
];

/// An encoded CONNECT for `version` with a clean session.
pub fn connect_bytes(client_id: &str, version: Version) -> Vec<u8> {
    let c = Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: MqttString::new(client_id).unwrap_or_default(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    };
    let mut buf = BytesMut::new();
    // Encoding our own well-formed CONNECT cannot fail; an empty buffer
    // would make the case fail visibly anyway.
    let _ = codec::encode(&Packet::Connect(Box::new(c)), version, &mut buf);
    buf.to_vec()
}

/// Opens a TLS connection, sends `bytes`, and reads until the broker
/// closes (bounded by `limit`). Returns what the broker sent.
pub async fn send_raw(env: &Env, bytes: &[u8], limit: Duration) -> Result<Vec<u8>, String> {
    let tcp = step(
        "TCP connect",
        tokio::net::TcpStream::connect(("127.0.0.1", env.port())).await,
    )?;
    let mut tls = step("TLS handshake", env.tls.client.connect(tcp).await)?;
    step("write", tls.write_all(bytes).await)?;
    step("flush", tls.flush().await)?;
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    })
    .await;
    match read {
        Ok(()) => Ok(got),
        Err(_) => Err(format!(
            "the broker did not close within {limit:?} (sent {got:02x?})"
        )),
    }
}

/// The reason code of the last packet in `got` when it is a DISCONNECT.
pub fn disconnect_reason(got: &[u8]) -> Option<u8> {
    // CONNACK (4 bytes in 3.1.1, more in 5.0) then DISCONNECT `e0 LEN CODE ..`.
    let at = got.iter().rposition(|b| *b == 0xe0)?;
    got.get(at + 2).copied()
}

/// One hostile case: bytes and, for MQTT 5, the DISCONNECT reason code the
/// broker must send before closing.
pub struct Case {
    /// What it is.
    pub name: &'static str,
    /// The bytes sent after the TLS handshake.
    pub bytes: Vec<u8>,
    /// The reason code expected in a DISCONNECT (MQTT 5 cases).
    pub reason: Option<ReasonCode>,
}

/// The hostile cases.
pub fn cases() -> Vec<Case> {
    let v311 = connect_bytes("hostile-4", Version::V311);
    let v5 = connect_bytes("hostile-5", Version::V5);
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    // PUBLISH claiming 2 MB of remaining length (over the broker's maximum).
    let oversize = [0x30, 0x80, 0x80, 0x80, 0x01];
    vec![
        Case {
            name: "malicious SUBSCRIBE (NanoNNG 1505), 3.1.1",
            bytes: cat(&v311, &MALICIOUS_SUBSCRIBE),
            reason: None,
        },
        Case {
            name: "malicious SUBSCRIBE, 5.0",
            bytes: cat(&v5, &MALICIOUS_SUBSCRIBE),
            reason: Some(ReasonCode::MalformedPacket),
        },
        Case {
            name: "oversize PUBLISH, 5.0",
            bytes: cat(&v5, &oversize),
            reason: Some(ReasonCode::PacketTooLarge),
        },
        Case {
            name: "second CONNECT, 5.0",
            bytes: cat(&v5, &v5),
            reason: Some(ReasonCode::ProtocolError),
        },
        Case {
            name: "second CONNECT, 3.1.1",
            bytes: cat(&v311, &v311),
            reason: None,
        },
        Case {
            name: "reserved packet type 0 before CONNECT",
            bytes: vec![0x00, 0x00],
            reason: None,
        },
        Case {
            name: "SUBSCRIBE before CONNECT",
            bytes: MALICIOUS_SUBSCRIBE.to_vec(),
            reason: None,
        },
    ]
}

/// Every hostile case against one broker, then a normal publish and
/// subscribe to show it still serves.
pub async fn hostile_packets(tls: &Tls, faults: FaultSet) -> ScenarioOutcome {
    scenario(
        "malformed and hostile packets",
        tls,
        faults,
        |env| async move {
            let all = cases();
            for case in &all {
                let got = send_raw(&env, &case.bytes, Duration::from_secs(3))
                    .await
                    .map_err(|e| format!("{}: {e}", case.name))?;
                if let Some(code) = case.reason
                    && disconnect_reason(&got) != Some(code as u8)
                {
                    return Err(format!(
                        "{}: expected DISCONNECT {code:?}, got {got:02x?}",
                        case.name
                    ));
                }
            }
            let mut sub = step(
                "subscriber connect",
                env.connect("after-hostile", Version::V5).await,
            )?;
            step(
                "subscribe",
                sub.subscribe(&[("e2e/still", QoS::AtLeastOnce)]).await,
            )?;
            step(
                "publish",
                sub.publish("e2e/still", "serving", QoS::AtLeastOnce, false)
                    .await,
            )?;
            recv_n(&mut sub, 1, Duration::from_secs(5)).await?;
            step("disconnect", sub.disconnect().await)?;
            Ok((
                1,
                format!(
                    "{} hostile inputs closed cleanly; the broker still serves",
                    all.len()
                ),
            ))
        },
    )
    .await
}
