//! The codec's error type: what was wrong, where, and which rule it broke.

use super::reason::ReasonCode;
use super::topic::TopicProblem;
use super::{PacketType, PropertyId, Version};
use thiserror::Error;

/// Why bytes could not be decoded into a packet, or a packet could not be
/// encoded.
///
/// Every variant carries `offset`: for decoding, the byte offset of the
/// offending field counted from the first byte of the packet (the
/// [`FrameDecoder`](super::FrameDecoder) counts from the start of the
/// stream instead); for encoding, where no byte exists yet, it is 0 and
/// `what` names the field. [`CodecError::spec`] gives the normative statement
/// of the specification version in use, and [`CodecError::reason_code`] the
/// MQTT 5 DISCONNECT reason the receiver should send before closing.
/// After any decoding error MQTT requires closing the network connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A field runs past the end of the packet (or of its property block).
    #[error(
        "byte {offset}: {what} needs {needed} bytes but only {available} remain in the packet; the peer sent a malformed packet, close the connection"
    )]
    Truncated {
        /// Where the field (or its length prefix) starts.
        offset: usize,
        /// The field.
        what: &'static str,
        /// Bytes the field claims or needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes remain after the last field the packet can hold.
    #[error(
        "byte {offset}: {extra} unexpected bytes after the end of the {packet_type} packet; the peer sent a malformed packet"
    )]
    TrailingBytes {
        /// First unexpected byte.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A Variable Byte Integer continues past its fourth byte.
    #[error(
        "byte {offset}: variable byte integer ({what}) is longer than 4 bytes; the peer sent a malformed packet"
    )]
    VarIntTooLong {
        /// First byte of the integer.
        offset: usize,
        /// What the integer encodes.
        what: &'static str,
    },
    /// A Variable Byte Integer uses more bytes than its value needs (an MQTT
    /// 5 rule: 3.1.1 only limits the Remaining Length to four bytes).
    #[error(
        "byte {offset}: variable byte integer ({what}) is not in its minimal form (MQTT-1.5.5-1); the peer sent a malformed packet"
    )]
    VarIntNotMinimal {
        /// First byte of the integer.
        offset: usize,
        /// What the integer encodes.
        what: &'static str,
    },
    /// The packet type nibble is reserved (0, or 15 in MQTT 3.1.1).
    #[error(
        "byte {offset}: packet type {type_code} is reserved in MQTT {version}; the peer sent a malformed packet or speaks another protocol"
    )]
    ReservedPacketType {
        /// Always 0 (the first byte).
        offset: usize,
        /// The type nibble.
        type_code: u8,
        /// The version decoded against.
        version: Version,
    },
    /// The fixed header's flag nibble differs from what the packet type requires.
    #[error(
        "byte {offset}: {packet_type} fixed header flags are {flags:#06b}, the specification requires {required:#06b}{}",
        spec_suffix(spec)
    )]
    InvalidHeaderFlags {
        /// Always 0 (the first byte).
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// The flags received.
        flags: u8,
        /// The flags required.
        required: u8,
        /// Normative statement.
        spec: &'static str,
    },
    /// A QoS field holds 3.
    #[error("byte {offset}: {what} is QoS 3, which does not exist{}", spec_suffix_opt(*spec))]
    InvalidQos {
        /// The byte holding the QoS bits.
        offset: usize,
        /// Which QoS field.
        what: &'static str,
        /// Normative statement, when there is one.
        spec: Option<&'static str>,
    },
    /// A QoS 0 PUBLISH has the DUP flag set.
    #[error("byte {offset}: PUBLISH has DUP set with QoS 0 (MQTT-3.3.1-2)")]
    DupOnQos0 {
        /// Always 0 (the first byte).
        offset: usize,
    },
    /// A packet identifier is 0 where a non-zero one is required.
    #[error("byte {offset}: {packet_type} has packet identifier 0, which is forbidden{}", spec_suffix_opt(*spec))]
    ZeroPacketId {
        /// The identifier's first byte.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// Normative statement (none for acknowledgements, which echo an identifier).
        spec: Option<&'static str>,
    },
    /// A string is not well-formed UTF-8 (this includes encoded surrogates).
    #[error("byte {offset}: {what} is not well-formed UTF-8{}", spec_suffix(spec))]
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
        /// Which string.
        what: &'static str,
        /// Normative statement.
        spec: &'static str,
    },
    /// A string contains U+0000.
    #[error(
        "byte {offset}: {what} contains the null character U+0000{}",
        spec_suffix(spec)
    )]
    NullCharacter {
        /// Where the null byte is.
        offset: usize,
        /// Which string.
        what: &'static str,
        /// Normative statement.
        spec: &'static str,
    },
    /// A topic name breaks the topic rules.
    #[error("byte {offset}: topic name {problem}{}", spec_suffix(spec))]
    InvalidTopicName {
        /// Where the name's bytes start.
        offset: usize,
        /// What is wrong.
        problem: TopicProblem,
        /// Normative statement.
        spec: &'static str,
    },
    /// A topic filter breaks the wildcard or shared-subscription rules.
    #[error("byte {offset}: topic filter {problem}{}", spec_suffix(spec))]
    InvalidTopicFilter {
        /// Where the filter's bytes start.
        offset: usize,
        /// What is wrong.
        problem: TopicProblem,
        /// Normative statement.
        spec: &'static str,
    },
    /// A property identifier that MQTT 5 does not define.
    #[error(
        "byte {offset}: unknown property identifier {id:#04x}; the peer sent a malformed packet"
    )]
    UnknownProperty {
        /// The identifier's byte.
        offset: usize,
        /// The identifier.
        id: u32,
    },
    /// A property that this packet type may not carry.
    #[error(
        "byte {offset}: property {property} is not allowed in {packet_type}; the peer sent a malformed packet"
    )]
    PropertyNotAllowed {
        /// The identifier's byte.
        offset: usize,
        /// The property.
        property: PropertyId,
        /// Where it appeared.
        packet_type: PacketType,
    },
    /// A property that may appear once appears again.
    #[error("byte {offset}: property {property} appears more than once (a protocol error)")]
    DuplicateProperty {
        /// The second occurrence's identifier byte.
        offset: usize,
        /// The property.
        property: PropertyId,
    },
    /// A property value outside its allowed range.
    #[error(
        "byte {offset}: property {property} has value {value}, expected {expected} (a protocol error)"
    )]
    InvalidPropertyValue {
        /// The value's first byte.
        offset: usize,
        /// The property.
        property: PropertyId,
        /// The value received.
        value: u32,
        /// What is allowed.
        expected: &'static str,
    },
    /// Authentication Data without Authentication Method.
    #[error(
        "byte {offset}: {packet_type} carries Authentication Data without an Authentication Method (a protocol error)"
    )]
    AuthDataWithoutMethod {
        /// Start of the property block.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
    },
    /// A property the packet must carry is absent (the specification gives
    /// no statement number for it, so `clause` names the section).
    #[error(
        "byte {offset}: {packet_type} omits the {property} property, which {clause} requires (a protocol error)"
    )]
    MissingProperty {
        /// Start of the property block.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// The property that must be present.
        property: PropertyId,
        /// The section of the specification that requires it.
        clause: &'static str,
    },
    /// A reason or return code this packet type may not carry.
    #[error(
        "byte {offset}: {code:#04x} is not a valid {packet_type} reason code in MQTT {version}"
    )]
    InvalidReasonCode {
        /// The code's byte.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// The code.
        code: u8,
        /// The version decoded against.
        version: Version,
    },
    /// CONNECT's protocol name is not "MQTT".
    #[error(
        "byte {offset}: protocol name is not \"MQTT\" (MQTT-3.1.2-1); the client speaks another protocol"
    )]
    InvalidProtocolName {
        /// Where the name starts.
        offset: usize,
    },
    /// CONNECT's protocol level is neither 4 (3.1.1) nor 5.
    #[error(
        "byte {offset}: protocol level {level} is not supported, only 4 (MQTT 3.1.1) and 5 (MQTT 5.0) are (MQTT-3.1.2-2); answer with CONNACK 0x01 (3.1.1) or 0x84 (5.0)"
    )]
    UnsupportedProtocolVersion {
        /// The level byte.
        offset: usize,
        /// The level received.
        level: u8,
    },
    /// CONNECT's protocol level differs from the version the caller decodes.
    #[error(
        "byte {offset}: CONNECT is MQTT {found} but MQTT {expected} was expected; decode it with decode_connect or the right version"
    )]
    VersionMismatch {
        /// The level byte.
        offset: usize,
        /// The version asked for.
        expected: Version,
        /// The version in the packet.
        found: Version,
    },
    /// The first packet of a connection is not CONNECT, so the version is unknown.
    #[error(
        "byte {offset}: the first packet is {packet_type}, not CONNECT (MQTT-3.1.0-1); without CONNECT the protocol version is unknown"
    )]
    ExpectedConnect {
        /// Start of the packet.
        offset: usize,
        /// What arrived instead.
        packet_type: PacketType,
    },
    /// A reserved bit is set in a flags byte.
    #[error("byte {offset}: reserved bit set in {what}{}", spec_suffix_opt(*spec))]
    ReservedBitSet {
        /// The flags byte.
        offset: usize,
        /// Which flags byte.
        what: &'static str,
        /// Normative statement, when there is one.
        spec: Option<&'static str>,
    },
    /// Will QoS or Will Retain set while the Will Flag is 0.
    #[error(
        "byte {offset}: CONNECT sets {what} without the Will Flag{}",
        spec_suffix(spec)
    )]
    WillFlagsWithoutWill {
        /// The connect flags byte.
        offset: usize,
        /// Which flag.
        what: &'static str,
        /// Normative statement.
        spec: &'static str,
    },
    /// MQTT 3.1.1 CONNECT with a password but no user name.
    #[error(
        "byte {offset}: CONNECT sets the Password Flag without the User Name Flag (MQTT-3.1.2-22)"
    )]
    PasswordWithoutUsername {
        /// The connect flags byte.
        offset: usize,
    },
    /// CONNACK with a failure code claims a session is present.
    #[error(
        "byte {offset}: CONNACK refuses the connection but sets Session Present{}",
        spec_suffix(spec)
    )]
    SessionPresentOnFailure {
        /// The acknowledge flags byte.
        offset: usize,
        /// Normative statement.
        spec: &'static str,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter, or an ack without codes.
    #[error("byte {offset}: {packet_type} has an empty payload, at least one entry is required{}", spec_suffix_opt(*spec))]
    EmptyPayload {
        /// Where the payload should start.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// Normative statement, when there is one.
        spec: Option<&'static str>,
    },
    /// Subscription option Retain Handling is 3.
    #[error(
        "byte {offset}: subscription option Retain Handling is 3, which is reserved (a protocol error)"
    )]
    InvalidRetainHandling {
        /// The options byte.
        offset: usize,
    },
    /// No Local set on a shared subscription.
    #[error("byte {offset}: No Local is set on a shared subscription (MQTT-3.8.3-4)")]
    NoLocalOnSharedSubscription {
        /// The options byte.
        offset: usize,
    },
    /// The packet exceeds the maximum packet size.
    #[error(
        "byte {offset}: packet of {size} bytes exceeds the maximum packet size of {max} bytes; raise the limit or close the connection"
    )]
    PacketTooLarge {
        /// Start of the packet.
        offset: usize,
        /// Its total size (fixed header included).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input ended inside a packet.
    #[error("byte {offset}: input ends inside a packet ({buffered} bytes of it received)")]
    IncompletePacket {
        /// Start of the incomplete packet.
        offset: usize,
        /// How many of its bytes arrived.
        buffered: usize,
    },
    /// A string, binary field or packet is longer than its length field allows.
    #[error("byte {offset}: {what} is {len} bytes long, the most MQTT allows is {max}")]
    TooLong {
        /// Where the field starts (0 when encoding).
        offset: usize,
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Encoding: the packet holds something its version cannot express.
    #[error(
        "cannot encode {packet_type} as MQTT {version}: {what} does not exist in that version; drop it or encode as MQTT 5"
    )]
    NotInVersion {
        /// Always 0 for encoding errors.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// The field or value.
        what: &'static str,
        /// The version encoded to.
        version: Version,
    },
    /// Encoding: a field holds a value the specification forbids.
    #[error("cannot encode {packet_type}: {what} {why}")]
    InvalidField {
        /// Always 0 for encoding errors.
        offset: usize,
        /// The packet.
        packet_type: PacketType,
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

fn spec_suffix(spec: &str) -> String {
    format!(" ({spec})")
}

fn spec_suffix_opt(spec: Option<&str>) -> String {
    spec.map(spec_suffix).unwrap_or_default()
}

/// Matches every variant's `offset` field once, for both the shared and
/// the mutable accessor (default binding modes give `&usize` or
/// `&mut usize`).
macro_rules! offset_field {
    ($e:expr) => {{
        use CodecError::*;
        match $e {
            Truncated { offset, .. }
            | TrailingBytes { offset, .. }
            | VarIntTooLong { offset, .. }
            | VarIntNotMinimal { offset, .. }
            | ReservedPacketType { offset, .. }
            | InvalidHeaderFlags { offset, .. }
            | InvalidQos { offset, .. }
            | DupOnQos0 { offset }
            | ZeroPacketId { offset, .. }
            | InvalidUtf8 { offset, .. }
            | NullCharacter { offset, .. }
            | InvalidTopicName { offset, .. }
            | InvalidTopicFilter { offset, .. }
            | UnknownProperty { offset, .. }
            | PropertyNotAllowed { offset, .. }
            | DuplicateProperty { offset, .. }
            | InvalidPropertyValue { offset, .. }
            | AuthDataWithoutMethod { offset, .. }
            | MissingProperty { offset, .. }
            | InvalidReasonCode { offset, .. }
            | InvalidProtocolName { offset }
            | UnsupportedProtocolVersion { offset, .. }
            | VersionMismatch { offset, .. }
            | ExpectedConnect { offset, .. }
            | ReservedBitSet { offset, .. }
            | WillFlagsWithoutWill { offset, .. }
            | PasswordWithoutUsername { offset }
            | SessionPresentOnFailure { offset, .. }
            | EmptyPayload { offset, .. }
            | InvalidRetainHandling { offset }
            | NoLocalOnSharedSubscription { offset }
            | PacketTooLarge { offset, .. }
            | IncompletePacket { offset, .. }
            | TooLong { offset, .. }
            | NotInVersion { offset, .. }
            | InvalidField { offset, .. } => offset,
        }
    }};
}

impl CodecError {
    /// The byte offset the error refers to (see the type's documentation).
    pub fn offset(&self) -> usize {
        *self.offset_ref()
    }

    /// Moves the offset by `base` bytes (the frame decoder reports stream offsets).
    pub(crate) fn shifted(mut self, base: usize) -> Self {
        let o = self.offset_mut();
        *o = o.saturating_add(base);
        self
    }

    fn offset_ref(&self) -> &usize {
        offset_field!(self)
    }

    fn offset_mut(&mut self) -> &mut usize {
        offset_field!(self)
    }

    /// The normative statement of the specification this error breaks, when
    /// the specification numbers it (e.g. `MQTT-3.8.3-2`).
    pub fn spec(&self) -> Option<&'static str> {
        use CodecError::*;
        match self {
            VarIntNotMinimal { .. } => Some("MQTT-1.5.5-1"),
            InvalidHeaderFlags { spec, .. }
            | InvalidUtf8 { spec, .. }
            | NullCharacter { spec, .. }
            | InvalidTopicName { spec, .. }
            | InvalidTopicFilter { spec, .. }
            | WillFlagsWithoutWill { spec, .. }
            | SessionPresentOnFailure { spec, .. } => Some(spec),
            ReservedBitSet { spec, .. }
            | EmptyPayload { spec, .. }
            | ZeroPacketId { spec, .. }
            | InvalidQos { spec, .. } => *spec,
            DupOnQos0 { .. } => Some("MQTT-3.3.1-2"),
            InvalidProtocolName { .. } => Some("MQTT-3.1.2-1"),
            UnsupportedProtocolVersion { .. } => Some("MQTT-3.1.2-2"),
            ExpectedConnect { .. } => Some("MQTT-3.1.0-1"),
            PasswordWithoutUsername { .. } => Some("MQTT-3.1.2-22"),
            NoLocalOnSharedSubscription { .. } => Some("MQTT-3.8.3-4"),
            // A 3.1.1 server whose outcome is none of the listed return codes
            // must close without a CONNACK, so a CONNACK carrying a reserved
            // code breaks that rule; 3.1.1 SUBACK reserves its other codes.
            InvalidReasonCode {
                packet_type: PacketType::Connack,
                version: Version::V311,
                ..
            } => Some("MQTT-3.2.2-6"),
            InvalidReasonCode {
                packet_type: PacketType::Suback,
                version: Version::V311,
                ..
            } => Some("MQTT-3.9.3-2"),
            _ => None,
        }
    }

    /// The MQTT 5 reason code the receiver should put in its DISCONNECT (or,
    /// for CONNECT problems, its CONNACK) before closing the connection.
    pub fn reason_code(&self) -> ReasonCode {
        use CodecError::*;
        match self {
            DuplicateProperty { .. }
            | InvalidPropertyValue { .. }
            | AuthDataWithoutMethod { .. }
            | MissingProperty { .. }
            | ZeroPacketId { .. }
            | EmptyPayload { .. }
            | InvalidRetainHandling { .. }
            | NoLocalOnSharedSubscription { .. }
            | ExpectedConnect { .. }
            | SessionPresentOnFailure { .. }
            | PasswordWithoutUsername { .. } => ReasonCode::ProtocolError,
            InvalidTopicName { .. } => ReasonCode::TopicNameInvalid,
            InvalidTopicFilter { .. } => ReasonCode::TopicFilterInvalid,
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            InvalidProtocolName { .. }
            | UnsupportedProtocolVersion { .. }
            | VersionMismatch { .. } => ReasonCode::UnsupportedProtocolVersion,
            NotInVersion { .. } | InvalidField { .. } => ReasonCode::ImplementationSpecificError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}
