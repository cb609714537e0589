//! MQTT 5 properties: identifiers, the property block reader (duplicates,
//! unknown identifiers and identifiers not allowed in the packet are
//! errors), the writers, and the properties shared by the acknowledgements.

use super::read::Reader;
use super::string::MqttString;
use super::write::{Counter, Sink};
use super::{CodecError, PacketType};
use bytes::Bytes;
use serde::Serialize;
use std::fmt;

macro_rules! property_ids {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        /// An MQTT 5 property identifier.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[repr(u8)]
        pub enum PropertyId {
            $($(#[$doc])* $name = $value,)*
        }

        impl PropertyId {
            /// The property for an identifier, if MQTT 5 defines one.
            pub fn from_u32(id: u32) -> Option<Self> {
                match id {
                    $($value => Some(PropertyId::$name),)*
                    _ => None,
                }
            }

            /// The name the specification uses.
            pub fn name(self) -> &'static str {
                match self {
                    $(PropertyId::$name => $text,)*
                }
            }
        }
    };
}

property_ids! {
    /// 0x01, byte.
    PayloadFormatIndicator = 0x01, "Payload Format Indicator";
    /// 0x02, four-byte integer.
    MessageExpiryInterval = 0x02, "Message Expiry Interval";
    /// 0x03, string.
    ContentType = 0x03, "Content Type";
    /// 0x08, string.
    ResponseTopic = 0x08, "Response Topic";
    /// 0x09, binary.
    CorrelationData = 0x09, "Correlation Data";
    /// 0x0B, variable byte integer.
    SubscriptionIdentifier = 0x0B, "Subscription Identifier";
    /// 0x11, four-byte integer.
    SessionExpiryInterval = 0x11, "Session Expiry Interval";
    /// 0x12, string.
    AssignedClientIdentifier = 0x12, "Assigned Client Identifier";
    /// 0x13, two-byte integer.
    ServerKeepAlive = 0x13, "Server Keep Alive";
    /// 0x15, string.
    AuthenticationMethod = 0x15, "Authentication Method";
    /// 0x16, binary.
    AuthenticationData = 0x16, "Authentication Data";
    /// 0x17, byte.
    RequestProblemInformation = 0x17, "Request Problem Information";
    /// 0x18, four-byte integer.
    WillDelayInterval = 0x18, "Will Delay Interval";
    /// 0x19, byte.
    RequestResponseInformation = 0x19, "Request Response Information";
    /// 0x1A, string.
    ResponseInformation = 0x1A, "Response Information";
    /// 0x1C, string.
    ServerReference = 0x1C, "Server Reference";
    /// 0x1F, string.
    ReasonString = 0x1F, "Reason String";
    /// 0x21, two-byte integer.
    ReceiveMaximum = 0x21, "Receive Maximum";
    /// 0x22, two-byte integer.
    TopicAliasMaximum = 0x22, "Topic Alias Maximum";
    /// 0x23, two-byte integer.
    TopicAlias = 0x23, "Topic Alias";
    /// 0x24, byte.
    MaximumQos = 0x24, "Maximum QoS";
    /// 0x25, byte.
    RetainAvailable = 0x25, "Retain Available";
    /// 0x26, string pair.
    UserProperty = 0x26, "User Property";
    /// 0x27, four-byte integer.
    MaximumPacketSize = 0x27, "Maximum Packet Size";
    /// 0x28, byte.
    WildcardSubscriptionAvailable = 0x28, "Wildcard Subscription Available";
    /// 0x29, byte.
    SubscriptionIdentifierAvailable = 0x29, "Subscription Identifier Available";
    /// 0x2A, byte.
    SharedSubscriptionAvailable = 0x2A, "Shared Subscription Available";
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), *self as u8)
    }
}

/// A User Property: a name and a value, both strings. May repeat, and the
/// order is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserProperty {
    /// The name.
    pub name: MqttString,
    /// The value.
    pub value: MqttString,
}

impl UserProperty {
    /// A pair from two strings (fails on U+0000 or over-long strings).
    pub fn new(name: &str, value: &str) -> Result<Self, CodecError> {
        Ok(UserProperty {
            name: MqttString::new(name)?,
            value: MqttString::new(value)?,
        })
    }
}

/// Reads a property block (its Variable Byte Integer length, then the
/// properties). `f` reads the value of each property it accepts and returns
/// `Ok(false)` for one this packet may not carry. Returns the block's offset.
pub(crate) fn read_block<'a>(
    r: &mut Reader<'a>,
    packet_type: PacketType,
    mut f: impl FnMut(PropertyId, &mut Reader<'a>, usize) -> Result<bool, CodecError>,
) -> Result<usize, CodecError> {
    let start = r.pos();
    let len = r.varint("property length")?;
    let mut block = r.sub(len as usize, "properties")?;
    while !block.is_empty() {
        let offset = block.pos();
        let id = block.varint("property identifier")?;
        let property =
            PropertyId::from_u32(id).ok_or(CodecError::UnknownProperty { offset, id })?;
        if !f(property, &mut block, offset)? {
            return Err(CodecError::PropertyNotAllowed {
                offset,
                property,
                packet_type,
            });
        }
    }
    Ok(start)
}

/// Stores a property that may appear once.
#[inline]
pub(crate) fn once<T>(
    slot: &mut Option<T>,
    v: T,
    property: PropertyId,
    offset: usize,
) -> Result<(), CodecError> {
    if slot.is_some() {
        return Err(CodecError::DuplicateProperty { offset, property });
    }
    *slot = Some(v);
    Ok(())
}

/// Reads a byte property that must be 0 or 1.
pub(crate) fn read_bool(r: &mut Reader<'_>, property: PropertyId) -> Result<bool, CodecError> {
    let offset = r.pos();
    match r.u8(property.name())? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(CodecError::InvalidPropertyValue {
            offset,
            property,
            value: u32::from(v),
            expected: "0 or 1",
        }),
    }
}

/// Reads a two-byte property that must not be 0.
pub(crate) fn read_nonzero_u16(
    r: &mut Reader<'_>,
    property: PropertyId,
) -> Result<u16, CodecError> {
    let offset = r.pos();
    match r.u16(property.name())? {
        0 => Err(CodecError::InvalidPropertyValue {
            offset,
            property,
            value: 0,
            expected: "a non-zero value",
        }),
        v => Ok(v),
    }
}

/// Reads a four-byte property that must not be 0.
pub(crate) fn read_nonzero_u32(
    r: &mut Reader<'_>,
    property: PropertyId,
) -> Result<u32, CodecError> {
    let offset = r.pos();
    match r.u32(property.name())? {
        0 => Err(CodecError::InvalidPropertyValue {
            offset,
            property,
            value: 0,
            expected: "a non-zero value",
        }),
        v => Ok(v),
    }
}

/// Reads a Subscription Identifier (1 to 268 435 455).
pub(crate) fn read_subscription_id(r: &mut Reader<'_>) -> Result<u32, CodecError> {
    let offset = r.pos();
    match r.varint("Subscription Identifier")? {
        0 => Err(CodecError::InvalidPropertyValue {
            offset,
            property: PropertyId::SubscriptionIdentifier,
            value: 0,
            expected: "1 to 268435455",
        }),
        v => Ok(v),
    }
}

/// [MQTT-3.1.2-22] and its twins: Authentication Data only with an
/// Authentication Method. `start` is the property block's offset.
pub(crate) fn check_auth_pair(
    has_data: bool,
    has_method: bool,
    start: usize,
    packet_type: PacketType,
) -> Result<(), CodecError> {
    if has_data && !has_method {
        return Err(CodecError::AuthDataWithoutMethod {
            offset: start,
            packet_type,
        });
    }
    Ok(())
}

/// Reads a User Property's value (after its identifier).
pub(crate) fn read_user(r: &mut Reader<'_>) -> Result<UserProperty, CodecError> {
    let name = r.string("User Property name")?;
    let value = r.string("User Property value")?;
    Ok(UserProperty { name, value })
}

/// A packet's property block, written through a [`Sink`].
pub(crate) trait PropertyBlock {
    /// Writes the properties (without the length).
    fn emit<S: Sink>(&self, s: &mut S, packet_type: PacketType) -> Result<(), CodecError>;
}

/// Writes a property block: its length, then the properties.
pub(crate) fn write_block<S: Sink, P: PropertyBlock>(
    s: &mut S,
    p: &P,
    packet_type: PacketType,
) -> Result<(), CodecError> {
    let mut c = Counter::default();
    p.emit(&mut c, packet_type)?;
    s.varint(
        u32::try_from(c.0).unwrap_or(u32::MAX),
        packet_type,
        "property length",
    )?;
    p.emit(s, packet_type)
}

/// Writers for single properties; `None` writes nothing.
pub(crate) mod put {
    use super::*;

    /// A byte property.
    pub fn byte<S: Sink>(s: &mut S, id: PropertyId, v: Option<u8>) {
        if let Some(v) = v {
            s.u8(id as u8);
            s.u8(v);
        }
    }

    /// A 0/1 byte property.
    pub fn flag<S: Sink>(s: &mut S, id: PropertyId, v: Option<bool>) {
        byte(s, id, v.map(u8::from));
    }

    /// A two-byte property.
    pub fn u16<S: Sink>(s: &mut S, id: PropertyId, v: Option<u16>) {
        if let Some(v) = v {
            s.u8(id as u8);
            s.u16(v);
        }
    }

    /// A four-byte property.
    pub fn u32<S: Sink>(s: &mut S, id: PropertyId, v: Option<u32>) {
        if let Some(v) = v {
            s.u8(id as u8);
            s.u32(v);
        }
    }

    /// A property whose value may not be 0.
    pub fn nonzero<S: Sink, T: Into<u32> + Copy>(
        s: &mut S,
        id: PropertyId,
        v: Option<T>,
        packet_type: PacketType,
        write: fn(&mut S, PropertyId, Option<T>),
    ) -> Result<(), CodecError> {
        if v.is_some_and(|x| x.into() == 0) {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type,
                what: id.name(),
                why: "must not be 0",
            });
        }
        write(s, id, v);
        Ok(())
    }

    /// A string property.
    pub fn string<S: Sink>(s: &mut S, id: PropertyId, v: &Option<MqttString>) {
        if let Some(v) = v {
            s.u8(id as u8);
            s.string(v);
        }
    }

    /// A binary property.
    pub fn binary<S: Sink>(s: &mut S, id: PropertyId, v: &Option<Bytes>) -> Result<(), CodecError> {
        if let Some(v) = v {
            s.u8(id as u8);
            s.binary(v, id.name())?;
        }
        Ok(())
    }

    /// A Subscription Identifier.
    pub fn subscription_id<S: Sink>(
        s: &mut S,
        v: u32,
        packet_type: PacketType,
    ) -> Result<(), CodecError> {
        if v == 0 {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type,
                what: "Subscription Identifier",
                why: "must be 1 to 268435455",
            });
        }
        s.u8(PropertyId::SubscriptionIdentifier as u8);
        s.varint(v, packet_type, "Subscription Identifier")
    }

    /// User Properties, in order.
    pub fn users<S: Sink>(s: &mut S, v: &[UserProperty]) {
        for p in v {
            s.u8(PropertyId::UserProperty as u8);
            s.string(&p.name);
            s.string(&p.value);
        }
    }
}

/// The properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AckProperties {
    /// Reason String (0x1F).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }

    pub(crate) fn read(r: &mut Reader<'_>, packet_type: PacketType) -> Result<Self, CodecError> {
        let mut p = AckProperties::default();
        read_block(r, packet_type, |id, r, off| {
            match id {
                PropertyId::ReasonString => {
                    once(&mut p.reason_string, r.string(id.name())?, id, off)?
                }
                PropertyId::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(p)
    }
}

impl PropertyBlock for AckProperties {
    fn emit<S: Sink>(&self, s: &mut S, _: PacketType) -> Result<(), CodecError> {
        put::string(s, PropertyId::ReasonString, &self.reason_string);
        put::users(s, &self.user_properties);
        Ok(())
    }
}
