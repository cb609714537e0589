//! How a queued message becomes bytes on the wire.
//!
//! Most messages are complete encoded packets ([`OutFrame::Raw`]). A PUBLISH
//! delivered by the broker is shared by every subscriber it fans out to, so
//! its message holds only the payload and each delivery carries its own
//! header fields ([`OutFrame::Deliver`]): the writer encodes that header per
//! subscriber and reads the payload through the ledger at write time, which
//! is where a message freed under the queue shows up.

use super::outbox::WriteJob;
use super::topic_alias::{AliasTable, AliasUse};
use crate::codec::{self, CodecError, MqttString, Packet, PacketType, Publish, QoS, Version};
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
    /// When the message stops being deliverable (ms on the broker's clock;
    /// `None`: it never expires). Fixed when the broker received it.
    pub expires_at_ms: Option<u64>,
    /// The Message Expiry Interval written: what was left of it when the
    /// delivery was handed to the connection [MQTT-3.3.2-6].
    pub message_expiry: Option<u32>,
    /// The receiving connection's outbound topic aliases (MQTT 5, when the
    /// client accepts them). Only the copy queued on that connection holds
    /// it, never the one a session keeps for a resend.
    pub aliases: Option<AliasTable>,
}

impl Delivery {
    /// True once the message expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|t| t <= now_ms)
    }

    /// Sets the interval to write from what is left at `now_ms`, rounded up
    /// so that a message still deliverable never says 0.
    pub fn stamp_expiry(&mut self, now_ms: u64) {
        self.message_expiry = self.expires_at_ms.map(|t| {
            let left = t.saturating_sub(now_ms).div_ceil(1000).max(1);
            u32::try_from(left).unwrap_or(u32::MAX)
        });
    }
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
            if d.message_expiry.is_some() {
                p.properties.message_expiry_interval = d.message_expiry;
            }
            if let (Version::V5, Some(table)) = (d.version, &d.aliases) {
                match table.name(p.topic.as_str()) {
                    AliasUse::Topic => {}
                    AliasUse::Assign(a) => p.properties.topic_alias = Some(a),
                    AliasUse::Reuse(a) => {
                        p.properties.topic_alias = Some(a);
                        p.topic = MqttString::default();
                    }
                }
            }
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
