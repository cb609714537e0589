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

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::faults::FaultSet;
    use crate::kernels::outbox::{Entry, Outbox, WriteResult};
    use crate::ledger::{Ledger, Mode};
    use bytes::Bytes;

    fn delivery(qos: QoS, dup: bool, version: Version) -> Delivery {
        let topic = MqttString::new("a/b").unwrap();
        Delivery {
            meta: StdArc::new(Publish::new(topic, Bytes::new())),
            qos,
            packet_id: 7,
            dup,
            retain: false,
            subscription_ids: vec![3, 9],
            version,
            expires_at_ms: Some(2_500),
            message_expiry: None,
            aliases: None,
        }
    }

    /// What the subscriber reads for one delivery, through the outbox and
    /// the writer's encoder.
    fn written(d: Delivery) -> Publish {
        let ledger = Ledger::new(Mode::Full);
        let version = d.version;
        let outbox = Outbox::new(FaultSet::NONE, 4);
        let msg = ledger.alloc(MsgKind::Publish, Bytes::from_static(b"hi"), "test: publish");
        let frame = OutFrame::Deliver(Box::new(d));
        outbox.enqueue(Entry::Msg { msg, frame }).unwrap();
        let job = outbox.start_write().unwrap();
        let mut out = BytesMut::new();
        encode_job(&job, &mut out).unwrap();
        outbox.write_done(job, WriteResult::Complete);
        assert!(ledger.audit().is_clean());
        match codec::decode(&out.freeze(), version).unwrap() {
            Packet::Publish(p) => p,
            other => panic!("the writer wrote {other:?}"),
        }
    }

    // A first delivery with DUP set makes a QoS 1 receiver treat it as a
    // resend, and DUP on QoS 0 is a protocol error [MQTT-3.3.1-2].
    #[test]
    fn dup_only_on_a_resend_and_never_at_qos_0() {
        let first = written(delivery(QoS::AtLeastOnce, false, Version::V311));
        assert!(!first.dup);
        assert_eq!(first.packet_id, 7);
        assert_eq!(first.payload, Bytes::from_static(b"hi"));
        assert!(written(delivery(QoS::AtLeastOnce, true, Version::V311)).dup);
        let qos0 = written(delivery(QoS::AtMostOnce, true, Version::V311));
        assert!(!qos0.dup);
        assert_eq!(qos0.packet_id, 0);
    }

    // A 5.0 subscriber routes by its Subscription Identifiers and learns
    // what is left of the expiry [MQTT-3.3.4-3, MQTT-3.3.2-6].
    #[test]
    fn a_5_0_delivery_carries_its_subscription_ids_and_remaining_expiry() {
        let mut d = delivery(QoS::AtLeastOnce, false, Version::V5);
        d.stamp_expiry(1_000);
        let p = written(d);
        assert_eq!(p.properties.subscription_identifiers, vec![3, 9]);
        assert_eq!(p.properties.message_expiry_interval, Some(2));
    }

    // A delivery expires at its instant, not a millisecond later, and one
    // that is still deliverable never says 0 seconds left.
    #[test]
    fn expiry_is_inclusive_and_rounds_up() {
        let mut d = delivery(QoS::AtLeastOnce, false, Version::V5);
        assert!(!d.expired(2_499));
        assert!(d.expired(2_500));
        d.stamp_expiry(2_499);
        assert_eq!(d.message_expiry, Some(1));
        d.expires_at_ms = None;
        assert!(!d.expired(u64::MAX));
        d.stamp_expiry(0);
        assert_eq!(d.message_expiry, None);
    }
}
