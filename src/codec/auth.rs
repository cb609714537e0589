//! AUTH (MQTT 5 only): extended authentication exchange.

use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, once, put, read_block, read_user, write_block,
};
use super::property_box::{PropertyBox, PropertySet};
use super::read::Reader;
use super::reason::ReasonCode;
use super::string::MqttString;
use super::write::Sink;
use super::{CodecError, PacketType, Version, json};
use bytes::Bytes;
use serde::Serialize;

const PT: PacketType = PacketType::Auth;

/// AUTH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// Success, ContinueAuthentication or ReAuthenticate.
    pub reason: ReasonCode,
    /// Properties; boxed, and no allocation while empty.
    pub properties: PropertyBox<AuthProperties>,
}

/// AUTH properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AuthProperties {
    /// Authentication Method (0x15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16); only with a method.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json::opt_bytes"
    )]
    pub authentication_data: Option<Bytes>,
    /// Reason String (0x1F).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

impl Auth {
    /// Decodes the body. The Reason Code and the Property Length may be
    /// left out only together (§3.15.2.1: Remaining Length 0 means Success
    /// without properties); unlike PUBACK (§3.4.2.2.1) and DISCONNECT
    /// (§3.14.2.2.1), AUTH has no rule that a missing Property Length reads
    /// as 0, so a Remaining Length of 1 is a truncated packet. Any AUTH
    /// with properties must carry the Authentication Method (§3.15.2.2.2).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut a = Auth {
            reason: ReasonCode::Success,
            properties: PropertyBox::default(),
        };
        if r.is_empty() {
            return Ok(a);
        }
        let at = r.pos();
        a.reason = ReasonCode::decode(r.u8("reason code")?, PT, Version::V5, at)?;
        let mut props = AuthProperties::default();
        let p = &mut props;
        let start = read_block(r, PT, |id, r, off| {
            match id {
                P::AuthenticationMethod => {
                    once(&mut p.authentication_method, r.string(id.name())?, id, off)?
                }
                P::AuthenticationData => {
                    once(&mut p.authentication_data, r.binary(id.name())?, id, off)?
                }
                P::ReasonString => once(&mut p.reason_string, r.string(id.name())?, id, off)?,
                P::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        // Only the bare AUTH (Remaining Length 0, above) may leave it out.
        if p.authentication_method.is_none() {
            return Err(CodecError::MissingProperty {
                offset: start,
                packet_type: PT,
                property: P::AuthenticationMethod,
                clause: "§3.15.2.2.2",
            });
        }
        a.properties = props.into();
        Ok(a)
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        if v == Version::V311 {
            return Err(CodecError::NotInVersion {
                offset: 0,
                packet_type: PT,
                what: "AUTH",
                version: v,
            });
        }
        let code = self.reason.encode(PT, v)?;
        if self.reason == ReasonCode::Success && self.properties.is_empty() {
            return Ok(());
        }
        if self.properties.authentication_method.is_none() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: PT,
                what: "Authentication Method",
                why: "must be present unless the AUTH is a bare Success (§3.15.2.2.2)",
            });
        }
        s.u8(code);
        write_block(s, &*self.properties, PT)
    }
}

impl PropertySet for AuthProperties {
    const EMPTY: &'static Self = &AuthProperties {
        authentication_method: None,
        authentication_data: None,
        reason_string: None,
        user_properties: Vec::new(),
    };
}

impl PropertyBlock for AuthProperties {
    fn emit<S: Sink>(&self, s: &mut S, pt: PacketType) -> Result<(), CodecError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: pt,
                what: "Authentication Data",
                why: "needs an Authentication Method",
            });
        }
        put::string(s, P::AuthenticationMethod, &self.authentication_method);
        put::binary(s, P::AuthenticationData, &self.authentication_data)?;
        put::string(s, P::ReasonString, &self.reason_string);
        put::users(s, &self.user_properties);
        Ok(())
    }
}
