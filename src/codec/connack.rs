//! CONNACK: session present, the connect reason (3.1.1 return codes carried
//! as their MQTT 5 equivalents) and MQTT 5 properties.

use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, check_auth_pair, once, put, read_block,
    read_bool, read_nonzero_u16, read_nonzero_u32, read_user, write_block,
};
use super::property_box::{PropertyBox, PropertySet};
use super::read::Reader;
use super::reason::ReasonCode;
use super::string::MqttString;
use super::write::Sink;
use super::{CodecError, PacketType, QoS, Version, json, spec};
use bytes::Bytes;
use serde::Serialize;

const PT: PacketType = PacketType::Connack;

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connack {
    /// Session Present (must be false when `reason` is a failure).
    pub session_present: bool,
    /// Connect Reason Code (3.1.1: return codes 0..=5 map to Success,
    /// UnsupportedProtocolVersion, ClientIdentifierNotValid,
    /// ServerUnavailable, BadUserNameOrPassword, NotAuthorized).
    pub reason: ReasonCode,
    /// MQTT 5 properties (must be empty for 3.1.1); boxed, and no
    /// allocation while empty.
    pub properties: PropertyBox<ConnackProperties>,
}

/// CONNACK properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConnackProperties {
    /// Session Expiry Interval (0x11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum (0x21), non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_maximum: Option<u16>,
    /// Maximum QoS (0x24): QoS 0 or 1 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_qos: Option<QoS>,
    /// Retain Available (0x25).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_available: Option<bool>,
    /// Maximum Packet Size (0x27), non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_packet_size: Option<u32>,
    /// Assigned Client Identifier (0x12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_client_identifier: Option<MqttString>,
    /// Topic Alias Maximum (0x22).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_alias_maximum: Option<u16>,
    /// Reason String (0x1F).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_string: Option<MqttString>,
    /// Wildcard Subscription Available (0x28).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wildcard_subscription_available: Option<bool>,
    /// Subscription Identifier Available (0x29).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_identifiers_available: Option<bool>,
    /// Shared Subscription Available (0x2A).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_subscription_available: Option<bool>,
    /// Server Keep Alive (0x13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_keep_alive: Option<u16>,
    /// Response Information (0x1A).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_information: Option<MqttString>,
    /// Server Reference (0x1C).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_reference: Option<MqttString>,
    /// Authentication Method (0x15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json::opt_bytes"
    )]
    pub authentication_data: Option<Bytes>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

impl Connack {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let v = r.version;
        let flags_offset = r.pos();
        let flags = r.u8("acknowledge flags")?;
        if flags & 0xfe != 0 {
            return Err(CodecError::ReservedBitSet {
                offset: flags_offset,
                what: "CONNACK acknowledge flags",
                spec: (v == Version::V5).then_some("MQTT-3.2.2-1"),
            });
        }
        let code_offset = r.pos();
        let reason = ReasonCode::decode(r.u8("connect reason code")?, PT, v, code_offset)?;
        let session_present = flags & 0x01 != 0;
        if session_present && reason.is_error() {
            return Err(CodecError::SessionPresentOnFailure {
                offset: flags_offset,
                spec: spec(v, "MQTT-3.2.2-4", "MQTT-3.2.2-6"),
            });
        }
        let properties = match v {
            Version::V5 => ConnackProperties::read(r)?.into(),
            Version::V311 => PropertyBox::default(),
        };
        Ok(Connack {
            session_present,
            reason,
            properties,
        })
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        if self.session_present && self.reason.is_error() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: PT,
                what: "session_present",
                why: "must be false when the connection is refused",
            });
        }
        s.u8(u8::from(self.session_present));
        s.u8(self.reason.encode(PT, v)?);
        match v {
            Version::V5 => write_block(s, &*self.properties, PT),
            Version::V311 if !self.properties.is_empty() => Err(CodecError::NotInVersion {
                offset: 0,
                packet_type: PT,
                what: "properties",
                version: v,
            }),
            Version::V311 => Ok(()),
        }
    }
}

impl ConnackProperties {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut p = ConnackProperties::default();
        let start = read_block(r, PT, |id, r, off| {
            match id {
                P::SessionExpiryInterval => {
                    once(&mut p.session_expiry_interval, r.u32(id.name())?, id, off)?
                }
                P::ReceiveMaximum => {
                    once(&mut p.receive_maximum, read_nonzero_u16(r, id)?, id, off)?
                }
                P::MaximumQos => {
                    let at = r.pos();
                    let q = match r.u8(id.name())? {
                        0 => QoS::AtMostOnce,
                        1 => QoS::AtLeastOnce,
                        v => {
                            return Err(CodecError::InvalidPropertyValue {
                                offset: at,
                                property: id,
                                value: u32::from(v),
                                expected: "0 or 1",
                            });
                        }
                    };
                    once(&mut p.maximum_qos, q, id, off)?
                }
                P::RetainAvailable => once(&mut p.retain_available, read_bool(r, id)?, id, off)?,
                P::MaximumPacketSize => once(
                    &mut p.maximum_packet_size,
                    read_nonzero_u32(r, id)?,
                    id,
                    off,
                )?,
                P::AssignedClientIdentifier => once(
                    &mut p.assigned_client_identifier,
                    r.string(id.name())?,
                    id,
                    off,
                )?,
                P::TopicAliasMaximum => {
                    once(&mut p.topic_alias_maximum, r.u16(id.name())?, id, off)?
                }
                P::ReasonString => once(&mut p.reason_string, r.string(id.name())?, id, off)?,
                P::WildcardSubscriptionAvailable => once(
                    &mut p.wildcard_subscription_available,
                    read_bool(r, id)?,
                    id,
                    off,
                )?,
                P::SubscriptionIdentifierAvailable => once(
                    &mut p.subscription_identifiers_available,
                    read_bool(r, id)?,
                    id,
                    off,
                )?,
                P::SharedSubscriptionAvailable => once(
                    &mut p.shared_subscription_available,
                    read_bool(r, id)?,
                    id,
                    off,
                )?,
                P::ServerKeepAlive => once(&mut p.server_keep_alive, r.u16(id.name())?, id, off)?,
                P::ResponseInformation => {
                    once(&mut p.response_information, r.string(id.name())?, id, off)?
                }
                P::ServerReference => once(&mut p.server_reference, r.string(id.name())?, id, off)?,
                P::AuthenticationMethod => {
                    once(&mut p.authentication_method, r.string(id.name())?, id, off)?
                }
                P::AuthenticationData => {
                    once(&mut p.authentication_data, r.binary(id.name())?, id, off)?
                }
                P::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        check_auth_pair(
            p.authentication_data.is_some(),
            p.authentication_method.is_some(),
            start,
            PT,
        )?;
        Ok(p)
    }
}

impl PropertySet for ConnackProperties {
    const EMPTY: &'static Self = &ConnackProperties {
        session_expiry_interval: None,
        receive_maximum: None,
        maximum_qos: None,
        retain_available: None,
        maximum_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_maximum: None,
        reason_string: None,
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
        user_properties: Vec::new(),
    };
}

impl PropertyBlock for ConnackProperties {
    fn emit<S: Sink>(&self, s: &mut S, pt: PacketType) -> Result<(), CodecError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: pt,
                what: "Authentication Data",
                why: "needs an Authentication Method",
            });
        }
        if self.maximum_qos == Some(QoS::ExactlyOnce) {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: pt,
                what: "Maximum QoS",
                why: "must be 0 or 1 (omit it to allow QoS 2)",
            });
        }
        put::u32(s, P::SessionExpiryInterval, self.session_expiry_interval);
        put::nonzero(s, P::ReceiveMaximum, self.receive_maximum, pt, put::u16)?;
        put::byte(s, P::MaximumQos, self.maximum_qos.map(|q| q as u8));
        put::flag(s, P::RetainAvailable, self.retain_available);
        put::nonzero(
            s,
            P::MaximumPacketSize,
            self.maximum_packet_size,
            pt,
            put::u32,
        )?;
        put::string(
            s,
            P::AssignedClientIdentifier,
            &self.assigned_client_identifier,
        );
        put::u16(s, P::TopicAliasMaximum, self.topic_alias_maximum);
        put::string(s, P::ReasonString, &self.reason_string);
        put::flag(
            s,
            P::WildcardSubscriptionAvailable,
            self.wildcard_subscription_available,
        );
        put::flag(
            s,
            P::SubscriptionIdentifierAvailable,
            self.subscription_identifiers_available,
        );
        put::flag(
            s,
            P::SharedSubscriptionAvailable,
            self.shared_subscription_available,
        );
        put::u16(s, P::ServerKeepAlive, self.server_keep_alive);
        put::string(s, P::ResponseInformation, &self.response_information);
        put::string(s, P::ServerReference, &self.server_reference);
        put::string(s, P::AuthenticationMethod, &self.authentication_method);
        put::binary(s, P::AuthenticationData, &self.authentication_data)?;
        put::users(s, &self.user_properties);
        Ok(())
    }
}
