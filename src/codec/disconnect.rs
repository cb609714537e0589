//! DISCONNECT: empty in 3.1.1; in MQTT 5 a reason code and properties, both
//! omitted on the wire for a normal disconnection without properties.

use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, once, put, read_block, read_user, write_block,
};
use super::property_box::{PropertyBox, PropertySet};
use super::read::Reader;
use super::reason::ReasonCode;
use super::string::MqttString;
use super::write::Sink;
use super::{CodecError, PacketType, Version};
use serde::Serialize;

const PT: PacketType = PacketType::Disconnect;

/// DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disconnect {
    /// Reason code (3.1.1: always Success, i.e. normal disconnection).
    pub reason: ReasonCode,
    /// MQTT 5 properties (must be empty for 3.1.1); boxed, and no
    /// allocation while empty.
    pub properties: PropertyBox<DisconnectProperties>,
}

impl Default for Disconnect {
    fn default() -> Self {
        Disconnect {
            reason: ReasonCode::Success,
            properties: PropertyBox::default(),
        }
    }
}

/// DISCONNECT properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DisconnectProperties {
    /// Session Expiry Interval (0x11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expiry_interval: Option<u32>,
    /// Reason String (0x1F).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
    /// Server Reference (0x1C).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_reference: Option<MqttString>,
}

impl Disconnect {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut d = Disconnect::default();
        if r.version == Version::V311 || r.is_empty() {
            return Ok(d);
        }
        let at = r.pos();
        d.reason = ReasonCode::decode(r.u8("reason code")?, PT, Version::V5, at)?;
        if r.is_empty() {
            return Ok(d);
        }
        let mut props = DisconnectProperties::default();
        let p = &mut props;
        read_block(r, PT, |id, r, off| {
            match id {
                P::SessionExpiryInterval => {
                    once(&mut p.session_expiry_interval, r.u32(id.name())?, id, off)?
                }
                P::ReasonString => once(&mut p.reason_string, r.string(id.name())?, id, off)?,
                P::ServerReference => once(&mut p.server_reference, r.string(id.name())?, id, off)?,
                P::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        d.properties = props.into();
        Ok(d)
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        let code = self.reason.encode(PT, v)?;
        let no_props = self.properties.is_empty();
        if v == Version::V311 {
            if !no_props {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "properties",
                    version: v,
                });
            }
            return Ok(());
        }
        if no_props {
            if self.reason != ReasonCode::Success {
                s.u8(code);
            }
            return Ok(());
        }
        s.u8(code);
        write_block(s, &*self.properties, PT)
    }
}

impl PropertySet for DisconnectProperties {
    const EMPTY: &'static Self = &DisconnectProperties {
        session_expiry_interval: None,
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: None,
    };
}

impl PropertyBlock for DisconnectProperties {
    fn emit<S: Sink>(&self, s: &mut S, _: PacketType) -> Result<(), CodecError> {
        put::u32(s, P::SessionExpiryInterval, self.session_expiry_interval);
        put::string(s, P::ReasonString, &self.reason_string);
        put::users(s, &self.user_properties);
        put::string(s, P::ServerReference, &self.server_reference);
        Ok(())
    }
}
