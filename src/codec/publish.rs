//! PUBLISH: flags, topic name, packet identifier, MQTT 5 properties and
//! the payload, which stays a slice of the packet buffer.

use super::connect::topic_name_at;
use super::header::varint_len;
use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, once, put, read_block, read_bool,
    read_nonzero_u16, read_subscription_id, read_user, write_block,
};
use super::property_box::{PropertyBox, PropertySet};
use super::read::Reader;
use super::string::{CheckedTopic, MqttString, valid_topic_name_in};
use super::topic::NameField;
use super::write::{Counter, Sink, put_varint};
use super::{CodecError, PacketType, QoS, Version, json, spec};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;

const PT: PacketType = PacketType::Publish;

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    /// DUP: a re-delivery (never with QoS 0).
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name: no wildcards; empty only in MQTT 5 with a Topic Alias.
    pub topic: MqttString,
    /// Packet Identifier: non-zero for QoS 1 and 2, 0 for QoS 0 (absent on the wire).
    pub packet_id: u16,
    /// The application message (shares the packet buffer when decoded).
    #[serde(serialize_with = "json::bytes")]
    pub payload: Bytes,
    /// MQTT 5 properties (must be empty for 3.1.1); boxed, and no
    /// allocation while empty.
    pub properties: PropertyBox<PublishProperties>,
}

/// PUBLISH properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PublishProperties {
    /// Payload Format Indicator (0x01): true for UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format_indicator: Option<bool>,
    /// Message Expiry Interval (0x02), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_interval: Option<u32>,
    /// Topic Alias (0x23), non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_alias: Option<u16>,
    /// Response Topic (0x08), a topic name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<MqttString>,
    /// Correlation Data (0x09).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json::opt_bytes"
    )]
    pub correlation_data: Option<Bytes>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
    /// Subscription Identifiers (0x0B), may repeat, each 1 to 268 435 455.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscription_identifiers: Vec<u32>,
    /// Content Type (0x03).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<MqttString>,
}

impl Publish {
    /// A QoS 0 PUBLISH without properties.
    pub fn new(topic: MqttString, payload: Bytes) -> Self {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: 0,
            payload,
            properties: PropertyBox::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, flags: u8) -> Result<Self, CodecError> {
        let v = r.version;
        let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(CodecError::InvalidQos {
            offset: 0,
            what: "PUBLISH QoS",
            spec: Some("MQTT-3.3.1-4"),
        })?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(CodecError::DupOnQos0 { offset: 0 });
        }
        let topic_offset = r.pos() + 2;
        let (topic, plain_topic) = r.topic_string("topic name")?;
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            let at = r.pos();
            match r.u16("packet identifier")? {
                0 => {
                    return Err(CodecError::ZeroPacketId {
                        offset: at,
                        packet_type: PT,
                        spec: Some(spec(v, "MQTT-2.3.1-1", "MQTT-2.2.1-3")),
                    });
                }
                id => id,
            }
        };
        let properties = match v {
            Version::V5 => PublishProperties::read(r)?.into(),
            Version::V311 => PropertyBox::default(),
        };
        let aliased = topic.is_empty() && properties.topic_alias.is_some();
        if !plain_topic && !aliased {
            topic_name_at(&topic, topic_offset, v, NameField::Publish)?;
        }
        let payload = r.rest();
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            payload,
            properties,
        })
    }

    /// The common PUBLISH (a topic that is certainly a valid topic name, no
    /// properties) decoded from the frame it owns: the payload
    /// is the frame itself, advanced, so the only new reference is the
    /// topic's. Anything else, errors included, gives the frame back for
    /// [`decode`](Self::decode), which then reports exactly what it always
    /// did. `frame` is one whole packet whose fixed header is `header_len`
    /// bytes.
    #[inline]
    pub(crate) fn decode_plain(
        frame: Bytes,
        header_len: usize,
        flags: u8,
        v: Version,
    ) -> Result<Publish, Bytes> {
        match Plain::parse(&frame, frame.len(), header_len, flags, v) {
            Some(p) => Ok(p.publish(frame)),
            None => Err(frame),
        }
    }

    /// The fixed header flags nibble.
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    /// Checks what [`encode`](Self::encode) checks before it writes.
    fn check_encodable(&self, v: Version) -> Result<(), CodecError> {
        let invalid = |what, why| CodecError::InvalidField {
            offset: 0,
            packet_type: PT,
            what,
            why,
        };
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, 0) => {}
            (QoS::AtMostOnce, _) => {
                return Err(invalid("packet_id", "must be 0 for QoS 0 (it is not sent)"));
            }
            (_, 0) => return Err(invalid("packet_id", "must be non-zero for QoS 1 and 2")),
            _ => {}
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(invalid("dup", "must be false for QoS 0 (MQTT-3.3.1-2)"));
        }
        let aliased =
            self.topic.is_empty() && v == Version::V5 && self.properties.topic_alias.is_some();
        if !self.topic.is_valid_topic_name() && !aliased {
            topic_name_at(&self.topic, 0, v, NameField::Publish)?;
        }
        if v == Version::V311 && !self.properties.is_empty() {
            return Err(CodecError::NotInVersion {
                offset: 0,
                packet_type: PT,
                what: "properties",
                version: v,
            });
        }
        Ok(())
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        self.check_encodable(v)?;
        s.string(&self.topic);
        if self.qos != QoS::AtMostOnce {
            s.u16(self.packet_id);
        }
        if v == Version::V5 {
            write_block(s, &*self.properties, PT)?;
        }
        s.put(&self.payload);
        Ok(())
    }

    /// The whole packet appended to `out` in one pass: the Remaining Length
    /// is summed from the field lengths instead of a counting pass over the
    /// packet (only a non-empty property block is measured first). Writes
    /// nothing on error.
    pub(crate) fn encode_packet(&self, v: Version, out: &mut BytesMut) -> Result<(), CodecError> {
        // The common PUBLISH, without properties: nothing to measure and
        // no error possible once these hold.
        let plain = self.properties.is_empty()
            && match self.qos {
                QoS::AtMostOnce => self.packet_id == 0 && !self.dup,
                _ => self.packet_id != 0,
            }
            && self.topic.is_valid_topic_name()
            && self.payload.len() < (1 << 27);
        if plain {
            let id_len = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
            let body = 2 + self.topic.len() + id_len + usize::from(v == Version::V5);
            let rl = (body + self.payload.len()) as u32;
            out.reserve(5 + body + self.payload.len());
            out.put_u8(((PT as u8) << 4) | self.flags());
            put_varint(out, rl);
            out.string(&self.topic);
            if id_len != 0 {
                out.put_u16(self.packet_id);
            }
            if v == Version::V5 {
                out.put_u8(0);
            }
            out.put_slice(&self.payload);
            return Ok(());
        }
        self.check_encodable(v)?;
        let properties = match v {
            Version::V311 => None,
            Version::V5 if self.properties.is_empty() => Some(0),
            Version::V5 => {
                let mut c = Counter::default();
                self.properties.emit(&mut c, PT)?;
                let n = u32::try_from(c.0).unwrap_or(u32::MAX);
                // The same error write_block gives for an oversized block.
                Counter::default().varint(n, PT, "property length")?;
                Some(n)
            }
        };
        let id_len = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
        let block_len = properties.map_or(0, |n| varint_len(n) + n as usize);
        let body = 2 + self.topic.len() + id_len + block_len + self.payload.len();
        let rl = super::remaining_length(body)?;
        out.reserve(1 + varint_len(rl) + body);
        let start = out.len();
        out.u8(((PT as u8) << 4) | self.flags());
        let written = (|| {
            out.varint(rl, PT, "remaining length")?;
            out.string(&self.topic);
            if id_len != 0 {
                out.u16(self.packet_id);
            }
            match properties {
                Some(0) => out.u8(0),
                Some(n) => {
                    out.varint(n, PT, "property length")?;
                    self.properties.emit(out, PT)?;
                }
                None => {}
            }
            Sink::put(out, &self.payload);
            Ok(())
        })();
        if written.is_err() {
            out.truncate(start);
        }
        written
    }
}

/// Where the fields of the common PUBLISH (see [`Publish::decode_plain`])
/// lie in its frame, found before the frame is cut off the stream buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plain {
    flags: u8,
    qos: QoS,
    topic: CheckedTopic,
    packet_id: u16,
    payload_start: usize,
}

impl Plain {
    /// The common PUBLISH at the front of `window`, a frame of `frame_len`
    /// bytes, possibly followed by more of the stream (which the topic check
    /// reads ahead into, without looking at it); `None` if it is not one.
    /// The QoS decides no branch: on streams of mixed QoS each was
    /// mispredicted about as often as not.
    #[inline(always)]
    pub(crate) fn parse(
        window: &[u8],
        frame_len: usize,
        header_len: usize,
        flags: u8,
        v: Version,
    ) -> Option<Plain> {
        let frame = window.get(..frame_len)?;
        let qos = QoS::from_u8((flags >> 1) & 0x03)?;
        if qos == QoS::AtMostOnce && flags & 0x08 != 0 {
            return None;
        }
        let be16 = |at: usize| match frame.get(at..at + 2) {
            Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
            _ => None,
        };
        let topic_len = usize::from(be16(header_len)?);
        let topic_start = header_len + 2;
        let topic_end = topic_start + topic_len;
        // 0 where the frame ends first: an error for QoS 1 and 2 either way.
        let id = be16(topic_end).unwrap_or(0);
        let has_id = qos != QoS::AtMostOnce;
        if has_id && id == 0 {
            return None;
        }
        let packet_id = if has_id { id } else { 0 };
        let mut pos = topic_end + 2 * usize::from(has_id);
        if v == Version::V5 {
            // A property length of zero; anything else takes the full path.
            if frame.get(pos) != Some(&0) {
                return None;
            }
            pos += 1;
        }
        if pos > frame_len {
            return None;
        }
        let topic = valid_topic_name_in(window, topic_start, topic_len)?;
        Some(Plain {
            flags,
            qos,
            topic,
            packet_id,
            payload_start: pos,
        })
    }

    /// The packet, from `frame`: the frame whose fields `parse` found, cut
    /// from the stream.
    #[inline(always)]
    pub(crate) fn publish(self, frame: Bytes) -> Publish {
        let topic = MqttString::from_checked(&frame, self.topic);
        let mut payload = frame;
        payload.advance(self.payload_start);
        Publish {
            dup: self.flags & 0x08 != 0,
            qos: self.qos,
            retain: self.flags & 0x01 != 0,
            topic,
            packet_id: self.packet_id,
            payload,
            properties: PropertyBox::default(),
        }
    }
}

impl PublishProperties {
    /// True when no property is set (as in every 3.1.1 PUBLISH).
    pub fn is_empty(&self) -> bool {
        let PublishProperties {
            payload_format_indicator,
            message_expiry_interval,
            topic_alias,
            response_topic,
            correlation_data,
            user_properties,
            subscription_identifiers,
            content_type,
        } = self;
        payload_format_indicator.is_none()
            && message_expiry_interval.is_none()
            && topic_alias.is_none()
            && response_topic.is_none()
            && correlation_data.is_none()
            && user_properties.is_empty()
            && subscription_identifiers.is_empty()
            && content_type.is_none()
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut p = PublishProperties::default();
        let version = r.version;
        read_block(r, PT, |id, r, off| {
            match id {
                P::PayloadFormatIndicator => {
                    once(&mut p.payload_format_indicator, read_bool(r, id)?, id, off)?
                }
                P::MessageExpiryInterval => {
                    once(&mut p.message_expiry_interval, r.u32(id.name())?, id, off)?
                }
                P::TopicAlias => once(&mut p.topic_alias, read_nonzero_u16(r, id)?, id, off)?,
                P::ResponseTopic => {
                    let at = r.pos() + 2;
                    let t = r.string(id.name())?;
                    topic_name_at(&t, at, version, NameField::ResponseTopic)?;
                    once(&mut p.response_topic, t, id, off)?
                }
                P::CorrelationData => once(&mut p.correlation_data, r.binary(id.name())?, id, off)?,
                P::UserProperty => p.user_properties.push(read_user(r)?),
                P::SubscriptionIdentifier => {
                    p.subscription_identifiers.push(read_subscription_id(r)?)
                }
                P::ContentType => once(&mut p.content_type, r.string(id.name())?, id, off)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(p)
    }
}

impl PropertySet for PublishProperties {
    const EMPTY: &'static Self = &PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    };
}

impl PropertyBlock for PublishProperties {
    fn emit<S: Sink>(&self, s: &mut S, pt: PacketType) -> Result<(), CodecError> {
        if let Some(t) = &self.response_topic {
            topic_name_at(t, 0, Version::V5, NameField::ResponseTopic)?;
        }
        put::flag(s, P::PayloadFormatIndicator, self.payload_format_indicator);
        put::u32(s, P::MessageExpiryInterval, self.message_expiry_interval);
        put::nonzero(s, P::TopicAlias, self.topic_alias, pt, put::u16)?;
        put::string(s, P::ResponseTopic, &self.response_topic);
        put::binary(s, P::CorrelationData, &self.correlation_data)?;
        put::users(s, &self.user_properties);
        for id in &self.subscription_identifiers {
            put::subscription_id(s, *id, pt)?;
        }
        put::string(s, P::ContentType, &self.content_type);
        Ok(())
    }
}
