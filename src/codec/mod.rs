//! MQTT 3.1.1 and 5.0 codec: every control packet, strict validation with
//! located errors, and a streaming frame decoder.
//!
//! - [`decode`] turns exactly one complete packet into a [`Packet`];
//!   [`encode`] writes the canonical form, and `decode(encode(p)) == p` for
//!   every packet `encode` accepts.
//! - The version is not known until CONNECT: [`decode_connect`] reads a
//!   CONNECT of either version and tells which it is, and
//!   [`FrameDecoder::new`]`(None, max)` uses it to learn the version from
//!   the first packet (a server's situation).
//! - Strings, topics and payloads of decoded packets are slices of the
//!   packet's `Bytes`: no copies, and no allocation on the PUBLISH path
//!   unless it carries user properties or subscription identifiers.
//! - Errors ([`CodecError`]) carry the byte offset, the normative statement
//!   where the specification numbers it, and the MQTT 5 reason code to send.
//!
//! Each version's rules, no more and no fewer: a rule of one version is
//! never applied to the other (a 3.1.1 Remaining Length may take more bytes
//! than needed, a level-5 CONNECT met where 3.1.1 is expected is a version
//! mismatch before any 5.0 rule reads it). Rules enforced: Remaining Length
//! and every Variable Byte Integer at most 4 bytes (and minimal, in 5.0);
//! reserved packet types and fixed-header flags; QoS 3;
//! DUP on QoS 0; packet identifier 0; UTF-8 strings (ill-formed sequences,
//! surrogates, U+0000); topic names versus filters (wildcards, `#` last, `+`
//! a whole level, shared subscriptions); empty SUBSCRIBE/UNSUBSCRIBE;
//! reserved bits in CONNECT flags, CONNACK flags and subscription options;
//! will flags; unknown, duplicate and misplaced properties and their value
//! ranges; the Authentication Method of every AUTH but the bare one;
//! reason codes per packet type; trailing bytes; the maximum packet
//! size (in the frame decoder). Semantic checks that need connection state
//! (topic alias ranges, receive maximum, a second CONNECT) belong to the
//! protocol layer, not here.
//!
//! ```
//! # #[cfg(not(feature = "loom"))] {
//! use bytes::{Bytes, BytesMut};
//! use mqtls_harness::codec::{self, Packet, Version};
//!
//! let wire = Bytes::from_static(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]);
//! let packet = codec::decode(&wire, Version::V311).unwrap();
//! assert_eq!(packet.packet_id(), Some(1));
//! let mut out = BytesMut::new();
//! codec::encode(&packet, Version::V311, &mut out).unwrap();
//! assert_eq!(out.freeze(), wire);
//! # }
//! ```

mod ack;
pub mod arbitrary;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod error;
mod frame;
mod header;
mod in_place;
mod json;
mod one_pass;
mod properties;
mod property_box;
mod publish;
mod read;
mod reason;
mod string;
mod suback;
mod subscribe;
pub mod topic;
mod unsuback;
mod unsubscribe;
mod utf8;
mod write;

pub use ack::PubResponse;
pub use auth::{Auth, AuthProperties};
pub use connack::{Connack, ConnackProperties};
pub use connect::{Connect, ConnectProperties, Will, WillProperties};
pub use disconnect::{Disconnect, DisconnectProperties};
pub use error::CodecError;
pub use frame::{DEFAULT_MAX_PACKET_SIZE, Frame, FrameDecoder};
pub use header::{FixedHeader, MAX_VARINT, parse_fixed_header};
pub use properties::{AckProperties, PropertyId, UserProperty};
pub use property_box::{PropertyBox, PropertySet};
pub use publish::{Publish, PublishProperties};
pub use reason::ReasonCode;
pub use string::{MAX_STRING_LEN, MqttString};
pub use suback::Suback;
pub use subscribe::{
    RetainHandling, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
};
pub use topic::TopicProblem;
pub use unsuback::Unsuback;
pub use unsubscribe::{Unsubscribe, UnsubscribeProperties};

use bytes::{Bytes, BytesMut};
use read::Reader;
use serde::Serialize;
use std::fmt;
use write::{Counter, Sink};

/// The protocol version: MQTT 3.1.1 (protocol level 4) or 5.0 (level 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Version {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

impl Version {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }

    /// The version for a protocol level, if supported.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            4 => Some(Version::V311),
            5 => Some(Version::V5),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5.0",
        })
    }
}

/// Picks the statement number of the version in use.
pub(crate) fn spec(v: Version, v311: &'static str, v5: &'static str) -> &'static str {
    match v {
        Version::V311 => v311,
        Version::V5 => v5,
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[repr(u8)]
pub enum QoS {
    /// 0: at most once.
    #[default]
    AtMostOnce = 0,
    /// 1: at least once.
    AtLeastOnce = 1,
    /// 2: exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for 0, 1 or 2.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// The control packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[repr(u8)]
pub enum PacketType {
    /// 1.
    Connect = 1,
    /// 2.
    Connack = 2,
    /// 3.
    Publish = 3,
    /// 4.
    Puback = 4,
    /// 5.
    Pubrec = 5,
    /// 6.
    Pubrel = 6,
    /// 7.
    Pubcomp = 7,
    /// 8.
    Subscribe = 8,
    /// 9.
    Suback = 9,
    /// 10.
    Unsubscribe = 10,
    /// 11.
    Unsuback = 11,
    /// 12.
    Pingreq = 12,
    /// 13.
    Pingresp = 13,
    /// 14.
    Disconnect = 14,
    /// 15 (MQTT 5 only).
    Auth = 15,
}

impl PacketType {
    /// The type for a type nibble (0 is reserved).
    pub fn from_u8(b: u8) -> Option<Self> {
        use PacketType::*;
        Some(match b {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The fixed-header flags this type requires (PUBLISH has its own).
    fn required_flags(self) -> u8 {
        match self {
            PacketType::Pubrel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{self:?}").to_uppercase();
        f.write_str(&s)
    }
}

/// Checks the flags nibble of every type but PUBLISH.
pub(crate) fn check_header_flags(pt: PacketType, flags: u8, v: Version) -> Result<(), CodecError> {
    let required = pt.required_flags();
    if pt == PacketType::Publish || flags == required {
        return Ok(());
    }
    let spec = match pt {
        PacketType::Pubrel => "MQTT-3.6.1-1",
        PacketType::Subscribe => "MQTT-3.8.1-1",
        PacketType::Unsubscribe => "MQTT-3.10.1-1",
        PacketType::Disconnect => "MQTT-3.14.1-1",
        PacketType::Auth => "MQTT-3.15.1-1",
        _ => spec(v, "MQTT-2.2.2-1", "MQTT-2.1.3-1"),
    };
    Err(CodecError::InvalidHeaderFlags {
        offset: 0,
        packet_type: pt,
        flags,
        required,
        spec,
    })
}

/// An MQTT control packet of either version. Fields that exist only in
/// MQTT 5 (properties, most reason codes) are empty/default in 3.1.1
/// packets, and encoding a packet that uses them as 3.1.1 is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum Packet {
    /// CONNECT (boxed: it is large and rare).
    Connect(Box<Connect>),
    /// CONNACK.
    Connack(Connack),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    Puback(PubResponse),
    /// PUBREC.
    Pubrec(PubResponse),
    /// PUBREL.
    Pubrel(PubResponse),
    /// PUBCOMP.
    Pubcomp(PubResponse),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    Suback(Suback),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    Unsuback(Unsuback),
    /// PINGREQ.
    Pingreq,
    /// PINGRESP.
    Pingresp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

impl Packet {
    /// The control packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::Connack(_) => PacketType::Connack,
            Packet::Publish(_) => PacketType::Publish,
            Packet::Puback(_) => PacketType::Puback,
            Packet::Pubrec(_) => PacketType::Pubrec,
            Packet::Pubrel(_) => PacketType::Pubrel,
            Packet::Pubcomp(_) => PacketType::Pubcomp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::Suback(_) => PacketType::Suback,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::Unsuback(_) => PacketType::Unsuback,
            Packet::Pingreq => PacketType::Pingreq,
            Packet::Pingresp => PacketType::Pingresp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The packet identifier, for packets that carry one (a QoS 0 PUBLISH does not).
    pub fn packet_id(&self) -> Option<u16> {
        match self {
            Packet::Publish(p) if p.qos != QoS::AtMostOnce => Some(p.packet_id),
            Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
                Some(a.packet_id)
            }
            Packet::Subscribe(s) => Some(s.packet_id),
            Packet::Suback(s) => Some(s.packet_id),
            Packet::Unsubscribe(u) => Some(u.packet_id),
            Packet::Unsuback(u) => Some(u.packet_id),
            _ => None,
        }
    }

    /// Writes the body through `s`; returns the fixed header's first byte.
    fn encode_body<S: Sink>(&self, v: Version, s: &mut S) -> Result<u8, CodecError> {
        let pt = self.packet_type();
        let flags = match self {
            Packet::Connect(c) => c.encode(v, s).map(|_| 0)?,
            Packet::Connack(c) => c.encode(v, s).map(|_| 0)?,
            Packet::Publish(p) => p.encode(v, s).map(|_| p.flags())?,
            Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
                a.encode(pt, v, s).map(|_| pt.required_flags())?
            }
            Packet::Subscribe(x) => x.encode(v, s).map(|_| pt.required_flags())?,
            Packet::Suback(x) => x.encode(v, s).map(|_| 0)?,
            Packet::Unsubscribe(x) => x.encode(v, s).map(|_| pt.required_flags())?,
            Packet::Unsuback(x) => x.encode(v, s).map(|_| 0)?,
            Packet::Pingreq | Packet::Pingresp => 0,
            Packet::Disconnect(d) => d.encode(v, s).map(|_| 0)?,
            Packet::Auth(a) => a.encode(v, s).map(|_| 0)?,
        };
        Ok(((pt as u8) << 4) | flags)
    }
}

/// Decodes exactly one complete packet (`buf` holds it and nothing else).
/// A CONNECT must be of `version`; use [`decode_connect`] when the version
/// is not known yet.
pub fn decode(buf: &Bytes, version: Version) -> Result<Packet, CodecError> {
    let h = whole_frame(buf)?;
    decode_owned_frame(buf.clone(), &h, Some(version)).map(|(p, _)| p)
}

/// Decodes exactly one complete CONNECT of either version and returns the
/// version it declares. Any other packet type is [`CodecError::ExpectedConnect`].
pub fn decode_connect(buf: &Bytes) -> Result<(Connect, Version), CodecError> {
    match decode_connect_packet(buf)? {
        (Packet::Connect(c), v) => Ok((*c, v)),
        (p, _) => Err(CodecError::ExpectedConnect {
            offset: 0,
            packet_type: p.packet_type(),
        }),
    }
}

/// [`decode_connect`] for a caller that wants the CONNECT as a [`Packet`]:
/// it stays in the box it was decoded into instead of moving to a new one.
pub(crate) fn decode_connect_packet(buf: &Bytes) -> Result<(Packet, Version), CodecError> {
    let h = whole_frame(buf)?;
    decode_frame(buf, &h, None)
}

/// Parses the fixed header and checks `buf` is exactly one frame.
fn whole_frame(buf: &Bytes) -> Result<FixedHeader, CodecError> {
    let h = parse_fixed_header(buf)?.ok_or(CodecError::Truncated {
        offset: buf.len().min(1),
        what: "fixed header",
        needed: 2,
        available: buf.len(),
    })?;
    let body = buf.len().saturating_sub(h.header_len);
    let rl = h.remaining_length as usize;
    if body < rl {
        return Err(CodecError::Truncated {
            offset: h.header_len,
            what: "packet body",
            needed: rl,
            available: body,
        });
    }
    if body > rl {
        let v = Version::V5;
        return Err(CodecError::TrailingBytes {
            offset: h.frame_len(),
            packet_type: h.packet_type(v).unwrap_or(PacketType::Connect),
            extra: body - rl,
        });
    }
    Ok(h)
}

/// [`decode_frame`] for a frame the caller gives up: the common PUBLISH
/// then shares the frame's reference instead of taking new ones.
#[inline]
pub(crate) fn decode_owned_frame(
    buf: Bytes,
    h: &FixedHeader,
    version: Option<Version>,
) -> Result<(Packet, Version), CodecError> {
    if let Some(v) = version
        && h.byte1 >> 4 == PacketType::Publish as u8
    {
        return match Publish::decode_plain(buf, h.header_len, h.flags(), v) {
            Ok(p) => Ok((Packet::Publish(p), v)),
            Err(buf) => decode_frame(&buf, h, version),
        };
    }
    decode_frame(&buf, h, version)
}

/// Decodes the frame `buf` (whose header is `h`). With `version` None only
/// a CONNECT is accepted, and its protocol level sets the version.
pub(crate) fn decode_frame(
    buf: &Bytes,
    h: &FixedHeader,
    version: Option<Version>,
) -> Result<(Packet, Version), CodecError> {
    let flags = h.flags();
    let pt = h.packet_type(version.unwrap_or(Version::V5))?;
    let mut r = Reader::new(
        buf,
        h.header_len,
        h.frame_len(),
        version.unwrap_or(Version::V5),
    );
    let Some(v) = version else {
        if pt != PacketType::Connect {
            return Err(CodecError::ExpectedConnect {
                offset: 0,
                packet_type: pt,
            });
        }
        let (c, v) = Connect::decode(&mut r, h, None)?;
        r.finish(pt)?;
        return Ok((Packet::Connect(Box::new(c)), v));
    };
    if v == Version::V5 && !h.is_minimal() {
        return Err(header::not_minimal_remaining_length());
    }
    if pt != PacketType::Publish && pt != PacketType::Connect {
        check_header_flags(pt, flags, v)?;
    }
    let packet = match pt {
        PacketType::Connect => Packet::Connect(Box::new(Connect::decode(&mut r, h, Some(v))?.0)),
        PacketType::Connack => Packet::Connack(Connack::decode(&mut r)?),
        PacketType::Publish => Packet::Publish(Publish::decode(&mut r, flags)?),
        PacketType::Puback => Packet::Puback(PubResponse::decode(&mut r, pt)?),
        PacketType::Pubrec => Packet::Pubrec(PubResponse::decode(&mut r, pt)?),
        PacketType::Pubrel => Packet::Pubrel(PubResponse::decode(&mut r, pt)?),
        PacketType::Pubcomp => Packet::Pubcomp(PubResponse::decode(&mut r, pt)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r)?),
        PacketType::Suback => Packet::Suback(Suback::decode(&mut r)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r)?),
        PacketType::Unsuback => Packet::Unsuback(Unsuback::decode(&mut r)?),
        PacketType::Pingreq => Packet::Pingreq,
        PacketType::Pingresp => Packet::Pingresp,
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r)?),
        PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
    };
    r.finish(pt)?;
    Ok((packet, v))
}

/// The size `packet` takes on the wire in `version` (fixed header included).
pub fn encoded_len(packet: &Packet, version: Version) -> Result<usize, CodecError> {
    let mut c = Counter::default();
    packet.encode_body(version, &mut c)?;
    let rl = remaining_length(c.0)?;
    Ok(1 + header::varint_len(rl) + c.0)
}

fn remaining_length(len: usize) -> Result<u32, CodecError> {
    u32::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_VARINT)
        .ok_or(CodecError::TooLong {
            offset: 0,
            what: "packet",
            len,
            max: MAX_VARINT as usize,
        })
}

/// Appends the canonical encoding of `packet` in `version` to `out`. Fails,
/// writing nothing, if the packet is not valid in that version.
pub fn encode(packet: &Packet, version: Version, out: &mut BytesMut) -> Result<(), CodecError> {
    if let Packet::Publish(p) = packet {
        return p.encode_packet(version, out);
    }
    if one_pass::encode(packet, version, out) {
        return Ok(());
    }
    encode_general(packet, version, out)
}

/// [`encode`] for every packet: a counting pass for the Remaining Length,
/// then the writing pass.
pub(crate) fn encode_general(
    packet: &Packet,
    version: Version,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let mut c = Counter::default();
    let byte1 = packet.encode_body(version, &mut c)?;
    let rl = remaining_length(c.0)?;
    out.reserve(1 + header::varint_len(rl) + c.0);
    let start = out.len();
    out.u8(byte1);
    out.varint(rl, packet.packet_type(), "remaining length")?;
    if let Err(e) = packet.encode_body(version, out) {
        out.truncate(start);
        return Err(e);
    }
    Ok(())
}
