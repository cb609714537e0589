//! The caller's side of the ownership rules: building a request message
//! and putting it on its operation (rule 1), and reaping the operation once
//! it is finished.

use super::ClientError;
use crate::codec::{
    self, MqttString, Packet, Publish, QoS, Subscribe, Subscription, SubscriptionOptions,
    Unsubscribe, Version,
};
use crate::ledger::{Ledger, MsgKind, MsgRef, Op, OpKind, Outcome};
use bytes::{Bytes, BytesMut};

fn encode(packet: &Packet, version: Version) -> Result<Bytes, ClientError> {
    let mut buf = BytesMut::new();
    codec::encode(packet, version, &mut buf)
        .map_err(|_| ClientError::BadRequest(packet_name(packet)))?;
    Ok(buf.freeze())
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        _ => "PUBLISH",
    }
}

fn filter(s: &str) -> Result<MqttString, ClientError> {
    MqttString::new(s).map_err(|_| ClientError::BadRequest("topic"))
}

/// The caller allocates the SUBSCRIBE (count 1) and puts it on a new
/// operation. The packet id is a placeholder until the SDK numbers it.
pub fn subscribe(
    ledger: &Ledger,
    version: Version,
    filters: &[(&str, QoS)],
) -> Result<Op, ClientError> {
    let filters = filters
        .iter()
        .map(|(f, qos)| {
            Ok(Subscription {
                filter: filter(f)?,
                options: SubscriptionOptions {
                    qos: *qos,
                    ..Default::default()
                },
            })
        })
        .collect::<Result<Vec<_>, ClientError>>()?;
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters,
        properties: Default::default(),
    });
    Ok(on_new_op(
        ledger,
        OpKind::Subscribe,
        MsgKind::Subscribe,
        encode(&packet, version)?,
        "caller: subscribe",
    ))
}

/// The caller allocates the UNSUBSCRIBE and puts it on a new operation.
pub fn unsubscribe(ledger: &Ledger, version: Version, filters: &[&str]) -> Result<Op, ClientError> {
    let filters = filters
        .iter()
        .map(|f| filter(f))
        .collect::<Result<Vec<_>, ClientError>>()?;
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: 1,
        filters,
        properties: Default::default(),
    });
    Ok(on_new_op(
        ledger,
        OpKind::Unsubscribe,
        MsgKind::Unsubscribe,
        encode(&packet, version)?,
        "caller: unsubscribe",
    ))
}

/// The caller allocates the PUBLISH and puts it on a new operation.
pub fn publish(
    ledger: &Ledger,
    version: Version,
    topic: &str,
    payload: Bytes,
    qos: QoS,
    retain: bool,
) -> Result<Op, ClientError> {
    let topic = MqttString::new(topic).map_err(|_| ClientError::BadRequest("topic"))?;
    let mut p = Publish::new(topic, payload);
    p.qos = qos;
    p.retain = retain;
    publish_packet(ledger, version, p)
}

/// Like [`publish`], for a PUBLISH the caller built itself (MQTT 5
/// properties such as a Message Expiry Interval). Its packet id is the
/// SDK's to choose.
pub fn publish_packet(
    ledger: &Ledger,
    version: Version,
    mut p: Publish,
) -> Result<Op, ClientError> {
    p.packet_id = if p.qos == QoS::AtMostOnce { 0 } else { 1 };
    let data = encode(&Packet::Publish(p), version)?;
    Ok(on_new_op(
        ledger,
        OpKind::Publish,
        MsgKind::Publish,
        data,
        "caller: publish",
    ))
}

fn on_new_op(
    ledger: &Ledger,
    op_kind: OpKind,
    kind: MsgKind,
    data: Bytes,
    site: &'static str,
) -> Op {
    let op = ledger.begin_op(op_kind, site);
    let msg = ledger.alloc(kind, data, site);
    if let Some(old) = op.set_msg(msg, site) {
        old.release(site);
    }
    op
}

/// What the caller gets back from a finished operation.
#[derive(Debug)]
pub struct Reaped {
    /// How it finished.
    pub outcome: Outcome,
    /// The acknowledgement (CONNACK, SUBACK, UNSUBACK), now the caller's.
    pub result: Option<MsgRef>,
}

/// Collects a finished operation. Whatever the SDK left in the request
/// slot is the caller's to free: on error that is the documented rule, and
/// after success the fixed protocol has cleared it, so anything there is a
/// message the SDK handed back.
pub fn reap(op: &Op, site: &'static str) -> Option<Reaped> {
    let outcome = op.outcome()?;
    if let Some(m) = op.take_msg() {
        m.release(site);
    }
    Some(Reaped {
        outcome,
        result: op.take_result(),
    })
}

/// Reaps a finished operation and frees its result too (a caller that
/// only wants the outcome). `None` while the operation is unfinished.
pub fn reap_all(op: &Op, site: &'static str) -> Option<Outcome> {
    let r = reap(op, site)?;
    if let Some(m) = r.result {
        m.release(site);
    }
    Some(r.outcome)
}

/// `data` (an encoded SUBSCRIBE, UNSUBSCRIBE or PUBLISH) with its packet id
/// set to `pid`.
pub fn with_packet_id(data: &Bytes, version: Version, pid: u16) -> Result<Bytes, ClientError> {
    let mut packet =
        codec::decode(data, version).map_err(|e| ClientError::Protocol(e.to_string()))?;
    match &mut packet {
        Packet::Subscribe(s) => s.packet_id = pid,
        Packet::Unsubscribe(u) => u.packet_id = pid,
        Packet::Publish(p) if p.qos != QoS::AtMostOnce => p.packet_id = pid,
        _ => {
            return Err(ClientError::BadRequest(
                "SUBSCRIBE, UNSUBSCRIBE or QoS 1/2 PUBLISH",
            ));
        }
    }
    encode(&packet, version)
}

/// `data` (an encoded PUBLISH) with the DUP flag set for a resend.
pub fn with_dup(data: &Bytes, version: Version) -> Result<Bytes, ClientError> {
    let mut packet =
        codec::decode(data, version).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Packet::Publish(p) = &mut packet {
        p.dup = p.qos != QoS::AtMostOnce;
    }
    encode(&packet, version)
}

/// Frees a delivered message after the application read it.
pub fn consume(msg: MsgRef) {
    msg.release("caller: message consumed");
}
