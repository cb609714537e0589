//! How a queued message becomes bytes on the wire.
//!
//! Most messages are complete encoded packets ([`OutFrame::Raw`]). A PUBLISH
//! delivered by the broker is shared by every subscriber it fans out to, so
//! its message holds only the payload and each delivery carries its own
//! header fields ([`OutFrame::Deliver`]): the writer encodes that header per
//! subscriber and reads the payload through the ledger at write time, which
//! is where a message freed under the queue shows up.

use super::outbox::WriteJob;
use crate::codec::{self, CodecError, Packet, PacketType, Publish, QoS, Version};
use crate::ledger::{LedgerError, MsgKind};
use crate::sync::StdArc;
use bytes::BytesMut;
use thiserror::Error;

/// One subscriber's copy of a shared PUBLISH.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Topic, properties and flags as published; its payload field is
    /// empty (the payload is the ledger message).
    pub meta: StdArc<Publish>,
    /// QoS granted to this subscriber.
    pub qos: QoS,
    /// Packet id for QoS 1 and 2 (0 for QoS 0).
    pub packet_id: u16,
    /// Re-delivery after reconnect.
    pub dup: bool,
    /// The RETAIN flag as this subscriber sees it.
    pub retain: bool,
    /// Subscription identifiers of the matching subscriptions (MQTT 5).
    pub subscription_ids: Vec<u32>,
    /// Protocol version of the receiving connection.
    pub version: Version,
}

/// What the writer does with a queued message.
#[derive(Debug, Clone)]
pub enum OutFrame {
    /// The message is one complete encoded packet.
    Raw,
    /// The message is a PUBLISH payload; encode this delivery's header.
    Deliver(Box<Delivery>),
}

/// Why a write job produced no bytes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The message was freed under the queue (already a ledger violation).
    #[error(transparent)]
    Freed(#[from] LedgerError),
    /// The delivery could not be encoded (a bug in the broker's routing).
    #[error("cannot encode the delivery: {0}")]
    Encode(#[from] CodecError),
}

/// Appends the bytes of `job` to `out`.
pub fn encode_job(job: &WriteJob<OutFrame>, out: &mut BytesMut) -> Result<(), FrameError> {
    let data = job.data()?;
    match job.frame() {
        OutFrame::Raw => {
            out.extend_from_slice(&data);
            Ok(())
        }
        OutFrame::Deliver(d) => {
            let mut p: Publish = (*d.meta).clone();
            p.payload = data;
            p.qos = d.qos;
            p.packet_id = if d.qos == QoS::AtMostOnce {
                0
            } else {
                d.packet_id
            };
            p.dup = d.dup && d.qos != QoS::AtMostOnce;
            p.retain = d.retain;
            p.properties.topic_alias = None;
            p.properties.subscription_identifiers = if d.version == Version::V5 {
                d.subscription_ids.clone()
            } else {
                Vec::new()
            };
            if d.version == Version::V311 {
                p.properties = Default::default();
            }
            codec::encode(&Packet::Publish(p), d.version, out)?;
            Ok(())
        }
    }
}

/// The ledger's name for a packet type.
pub fn msg_kind(pt: PacketType) -> MsgKind {
    match pt {
        PacketType::Connect => MsgKind::Connect,
        PacketType::Connack => MsgKind::Connack,
        PacketType::Publish => MsgKind::Publish,
        PacketType::Puback => MsgKind::Puback,
        PacketType::Pubrec => MsgKind::Pubrec,
        PacketType::Pubrel => MsgKind::Pubrel,
        PacketType::Pubcomp => MsgKind::Pubcomp,
        PacketType::Subscribe => MsgKind::Subscribe,
        PacketType::Suback => MsgKind::Suback,
        PacketType::Unsubscribe => MsgKind::Unsubscribe,
        PacketType::Unsuback => MsgKind::Unsuback,
        PacketType::Pingreq => MsgKind::Pingreq,
        PacketType::Pingresp => MsgKind::Pingresp,
        PacketType::Disconnect => MsgKind::Disconnect,
        PacketType::Auth => MsgKind::Auth,
    }
}
