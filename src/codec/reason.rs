//! MQTT 5 reason codes, the MQTT 3.1.1 return codes mapped onto them, and
//! which codes each packet type may carry.

use super::read::Reader;
use super::{CodecError, PacketType, Version};
use serde::Serialize;
use std::fmt;

macro_rules! reason_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// An MQTT 5 reason code. One enum serves every packet; each packet
        /// type accepts only its own subset (see [`ReasonCode::allowed_in`]).
        /// MQTT 3.1.1 CONNACK return codes and SUBACK codes are carried as their
        /// MQTT 5 equivalents.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[repr(u8)]
        pub enum ReasonCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl ReasonCode {
            /// Every reason code, in numeric order.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$name,)*];

            /// The code for a byte, if MQTT 5 defines one.
            pub fn from_u8(b: u8) -> Option<Self> {
                match b {
                    $($value => Some(ReasonCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: Success, Normal disconnection, Granted QoS 0.
    Success = 0x00,
    /// 0x01: Granted QoS 1.
    GrantedQos1 = 0x01,
    /// 0x02: Granted QoS 2.
    GrantedQos2 = 0x02,
    /// 0x04: Disconnect with Will Message.
    DisconnectWithWill = 0x04,
    /// 0x10: No matching subscribers.
    NoMatchingSubscribers = 0x10,
    /// 0x11: No subscription existed.
    NoSubscriptionExisted = 0x11,
    /// 0x18: Continue authentication.
    ContinueAuthentication = 0x18,
    /// 0x19: Re-authenticate.
    ReAuthenticate = 0x19,
    /// 0x80: Unspecified error (also MQTT 3.1.1 SUBACK Failure).
    UnspecifiedError = 0x80,
    /// 0x81: Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82: Protocol Error.
    ProtocolError = 0x82,
    /// 0x83: Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// 0x84: Unsupported Protocol Version (3.1.1 return code 1).
    UnsupportedProtocolVersion = 0x84,
    /// 0x85: Client Identifier not valid (3.1.1 return code 2).
    ClientIdentifierNotValid = 0x85,
    /// 0x86: Bad User Name or Password (3.1.1 return code 4).
    BadUserNameOrPassword = 0x86,
    /// 0x87: Not authorized (3.1.1 return code 5).
    NotAuthorized = 0x87,
    /// 0x88: Server unavailable (3.1.1 return code 3).
    ServerUnavailable = 0x88,
    /// 0x89: Server busy.
    ServerBusy = 0x89,
    /// 0x8A: Banned.
    Banned = 0x8A,
    /// 0x8B: Server shutting down.
    ServerShuttingDown = 0x8B,
    /// 0x8C: Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D: Keep Alive timeout.
    KeepAliveTimeout = 0x8D,
    /// 0x8E: Session taken over.
    SessionTakenOver = 0x8E,
    /// 0x8F: Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90: Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// 0x91: Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// 0x92: Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93: Receive Maximum exceeded.
    ReceiveMaximumExceeded = 0x93,
    /// 0x94: Topic Alias invalid.
    TopicAliasInvalid = 0x94,
    /// 0x95: Packet too large.
    PacketTooLarge = 0x95,
    /// 0x96: Message rate too high.
    MessageRateTooHigh = 0x96,
    /// 0x97: Quota exceeded.
    QuotaExceeded = 0x97,
    /// 0x98: Administrative action.
    AdministrativeAction = 0x98,
    /// 0x99: Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A: Retain not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B: QoS not supported.
    QosNotSupported = 0x9B,
    /// 0x9C: Use another server.
    UseAnotherServer = 0x9C,
    /// 0x9D: Server moved.
    ServerMoved = 0x9D,
    /// 0x9E: Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F: Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0: Maximum connect time.
    MaximumConnectTime = 0xA0,
    /// 0xA1: Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2: Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

use ReasonCode as R;

const CONNACK: &[ReasonCode] = &[
    R::Success,
    R::UnspecifiedError,
    R::MalformedPacket,
    R::ProtocolError,
    R::ImplementationSpecificError,
    R::UnsupportedProtocolVersion,
    R::ClientIdentifierNotValid,
    R::BadUserNameOrPassword,
    R::NotAuthorized,
    R::ServerUnavailable,
    R::ServerBusy,
    R::Banned,
    R::BadAuthenticationMethod,
    R::TopicNameInvalid,
    R::PacketTooLarge,
    R::QuotaExceeded,
    R::PayloadFormatInvalid,
    R::RetainNotSupported,
    R::QosNotSupported,
    R::UseAnotherServer,
    R::ServerMoved,
    R::ConnectionRateExceeded,
];
const PUBACK: &[ReasonCode] = &[
    R::Success,
    R::NoMatchingSubscribers,
    R::UnspecifiedError,
    R::ImplementationSpecificError,
    R::NotAuthorized,
    R::TopicNameInvalid,
    R::PacketIdentifierInUse,
    R::QuotaExceeded,
    R::PayloadFormatInvalid,
];
const PUBREL: &[ReasonCode] = &[R::Success, R::PacketIdentifierNotFound];
const SUBACK: &[ReasonCode] = &[
    R::Success,
    R::GrantedQos1,
    R::GrantedQos2,
    R::UnspecifiedError,
    R::ImplementationSpecificError,
    R::NotAuthorized,
    R::TopicFilterInvalid,
    R::PacketIdentifierInUse,
    R::QuotaExceeded,
    R::SharedSubscriptionsNotSupported,
    R::SubscriptionIdentifiersNotSupported,
    R::WildcardSubscriptionsNotSupported,
];
const UNSUBACK: &[ReasonCode] = &[
    R::Success,
    R::NoSubscriptionExisted,
    R::UnspecifiedError,
    R::ImplementationSpecificError,
    R::NotAuthorized,
    R::TopicFilterInvalid,
    R::PacketIdentifierInUse,
];
const DISCONNECT: &[ReasonCode] = &[
    R::Success,
    R::DisconnectWithWill,
    R::UnspecifiedError,
    R::MalformedPacket,
    R::ProtocolError,
    R::ImplementationSpecificError,
    R::NotAuthorized,
    R::ServerBusy,
    R::ServerShuttingDown,
    R::KeepAliveTimeout,
    R::SessionTakenOver,
    R::TopicFilterInvalid,
    R::TopicNameInvalid,
    R::ReceiveMaximumExceeded,
    R::TopicAliasInvalid,
    R::PacketTooLarge,
    R::MessageRateTooHigh,
    R::QuotaExceeded,
    R::AdministrativeAction,
    R::PayloadFormatInvalid,
    R::RetainNotSupported,
    R::QosNotSupported,
    R::UseAnotherServer,
    R::ServerMoved,
    R::SharedSubscriptionsNotSupported,
    R::ConnectionRateExceeded,
    R::MaximumConnectTime,
    R::SubscriptionIdentifiersNotSupported,
    R::WildcardSubscriptionsNotSupported,
];
const AUTH: &[ReasonCode] = &[R::Success, R::ContinueAuthentication, R::ReAuthenticate];
/// MQTT 3.1.1 CONNACK return codes 0..=5, in order.
const CONNACK_V311: &[ReasonCode] = &[
    R::Success,
    R::UnsupportedProtocolVersion,
    R::ClientIdentifierNotValid,
    R::ServerUnavailable,
    R::BadUserNameOrPassword,
    R::NotAuthorized,
];
const SUBACK_V311: &[ReasonCode] = &[
    R::Success,
    R::GrantedQos1,
    R::GrantedQos2,
    R::UnspecifiedError,
];

/// A set of code bytes, one bit per value, for a lookup in place of a
/// search of the tables above.
#[derive(Clone, Copy)]
struct CodeSet([u64; 4]);

impl CodeSet {
    const fn of(codes: &[ReasonCode]) -> Self {
        let mut bits = [0u64; 4];
        let mut i = 0;
        while i < codes.len() {
            let b = codes[i] as u8 as usize;
            bits[b / 64] |= 1 << (b % 64);
            i += 1;
        }
        CodeSet(bits)
    }

    #[inline]
    fn contains(self, b: u8) -> bool {
        let b = usize::from(b);
        self.0.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0)
    }
}

const SET_CONNACK: CodeSet = CodeSet::of(CONNACK);
const SET_PUBACK: CodeSet = CodeSet::of(PUBACK);
const SET_PUBREL: CodeSet = CodeSet::of(PUBREL);
const SET_SUBACK: CodeSet = CodeSet::of(SUBACK);
const SET_UNSUBACK: CodeSet = CodeSet::of(UNSUBACK);
const SET_DISCONNECT: CodeSet = CodeSet::of(DISCONNECT);
const SET_AUTH: CodeSet = CodeSet::of(AUTH);
const SET_SUBACK_V311: CodeSet = CodeSet::of(SUBACK_V311);
const SET_SUCCESS: CodeSet = CodeSet::of(&[R::Success]);
const SET_NONE: CodeSet = CodeSet::of(&[]);

/// The code bytes `packet_type` may carry in `version` (3.1.1 CONNACK,
/// whose return codes are not the MQTT 5 bytes, excepted).
#[inline]
fn code_set(packet_type: PacketType, version: Version) -> CodeSet {
    match (version, packet_type) {
        (Version::V311, PacketType::Suback) => SET_SUBACK_V311,
        (Version::V311, PacketType::Connack) => SET_NONE,
        (Version::V311, _) => SET_SUCCESS,
        (Version::V5, PacketType::Connack) => SET_CONNACK,
        (Version::V5, PacketType::Puback | PacketType::Pubrec) => SET_PUBACK,
        (Version::V5, PacketType::Pubrel | PacketType::Pubcomp) => SET_PUBREL,
        (Version::V5, PacketType::Suback) => SET_SUBACK,
        (Version::V5, PacketType::Unsuback) => SET_UNSUBACK,
        (Version::V5, PacketType::Disconnect) => SET_DISCONNECT,
        (Version::V5, PacketType::Auth) => SET_AUTH,
        (Version::V5, _) => SET_NONE,
    }
}

impl ReasonCode {
    /// True if `packet_type` may carry this code in `version` with its MQTT
    /// 5 byte on the wire (everything but the 3.1.1 CONNACK).
    #[inline]
    pub(crate) fn is_wire_byte_in(self, packet_type: PacketType, version: Version) -> bool {
        code_set(packet_type, version).contains(self.as_u8())
    }

    /// The MQTT 5 byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for codes 0x80 and above (failures).
    pub fn is_error(self) -> bool {
        self.as_u8() >= 0x80
    }

    /// The codes `packet_type` may carry in MQTT 5 (empty if it carries none).
    pub fn allowed_in(packet_type: PacketType) -> &'static [ReasonCode] {
        match packet_type {
            PacketType::Connack => CONNACK,
            PacketType::Puback | PacketType::Pubrec => PUBACK,
            PacketType::Pubrel | PacketType::Pubcomp => PUBREL,
            PacketType::Suback => SUBACK,
            PacketType::Unsuback => UNSUBACK,
            PacketType::Disconnect => DISCONNECT,
            PacketType::Auth => AUTH,
            _ => &[],
        }
    }

    /// Reads the payload of a SUBACK or UNSUBACK: one code per filter, at
    /// least one, each one the packet may carry in `version`.
    pub(crate) fn read_list(
        r: &mut Reader<'_>,
        packet_type: PacketType,
        version: Version,
    ) -> Result<Vec<Self>, CodecError> {
        if r.is_empty() {
            return Err(CodecError::EmptyPayload {
                offset: r.pos(),
                packet_type,
                spec: None,
            });
        }
        let mut reasons = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let at = r.pos();
            reasons.push(ReasonCode::decode(
                r.u8("reason code")?,
                packet_type,
                version,
                at,
            )?);
        }
        Ok(reasons)
    }

    /// Decodes the code byte of `packet_type` at `offset`, checking it is
    /// one that packet may carry in `version`.
    pub(crate) fn decode(
        b: u8,
        packet_type: PacketType,
        version: Version,
        offset: usize,
    ) -> Result<Self, CodecError> {
        let bad = || CodecError::InvalidReasonCode {
            offset,
            packet_type,
            code: b,
            version,
        };
        match (version, packet_type) {
            (Version::V311, PacketType::Connack) => {
                CONNACK_V311.get(usize::from(b)).copied().ok_or_else(bad)
            }
            _ if code_set(packet_type, version).contains(b) => {
                ReasonCode::from_u8(b).ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }

    /// The byte to put on the wire for `packet_type` in `version`, or an
    /// error if that version cannot express this code there.
    pub(crate) fn encode(
        self,
        packet_type: PacketType,
        version: Version,
    ) -> Result<u8, CodecError> {
        let table = match (version, packet_type) {
            (Version::V311, PacketType::Connack) => {
                return CONNACK_V311
                    .iter()
                    .position(|c| *c == self)
                    .and_then(|i| u8::try_from(i).ok())
                    .ok_or(CodecError::NotInVersion {
                        offset: 0,
                        packet_type,
                        what: "this return code",
                        version,
                    });
            }
            (Version::V311, PacketType::Suback) => SUBACK_V311,
            (Version::V311, _) => &[ReasonCode::Success][..],
            _ => Self::allowed_in(packet_type),
        };
        if table.contains(&self) {
            Ok(self.as_u8())
        } else if version == Version::V311 {
            Err(CodecError::NotInVersion {
                offset: 0,
                packet_type,
                what: "this reason code",
                version,
            })
        } else {
            Err(CodecError::InvalidField {
                offset: 0,
                packet_type,
                what: "reason code",
                why: "is not one this packet type may carry",
            })
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} {:?}", self.as_u8(), self)
    }
}
