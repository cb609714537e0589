//! CONNECT: protocol name and level, connect flags, keep alive, client
//! identifier, will message, user name and password (and MQTT 5 properties).

use super::header::{FixedHeader, not_minimal_remaining_length};
use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, check_auth_pair, once, put, read_block,
    read_bool, read_nonzero_u16, read_nonzero_u32, read_user, write_block,
};
use super::read::Reader;
use super::string::MqttString;
use super::topic::{NameField, check_topic_name};
use super::write::Sink;
use super::{CodecError, PacketType, QoS, Version, json, spec};
use bytes::Bytes;
use serde::Serialize;

const PT: PacketType = PacketType::Connect;

/// CONNECT: the first packet a client sends. The protocol version is not a
/// field: it is the version the packet is encoded in (see
/// [`decode_connect`](super::decode_connect)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Connect {
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep Alive, seconds (0 disables).
    pub keep_alive: u16,
    /// Client Identifier (may be empty).
    pub client_id: MqttString,
    /// The will message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will: Option<Will>,
    /// User Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<MqttString>,
    /// Password (binary).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json::opt_bytes"
    )]
    pub password: Option<Bytes>,
    /// MQTT 5 properties (must be empty for 3.1.1).
    pub properties: ConnectProperties,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Will {
    /// Will Topic (a topic name: no wildcards).
    pub topic: MqttString,
    /// Will Payload.
    #[serde(serialize_with = "json::bytes")]
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// MQTT 5 will properties (must be empty for 3.1.1).
    pub properties: WillProperties,
}

/// CONNECT properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConnectProperties {
    /// Session Expiry Interval (0x11), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum (0x21), non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_maximum: Option<u16>,
    /// Maximum Packet Size (0x27), non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum (0x22).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_alias_maximum: Option<u16>,
    /// Request Response Information (0x19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_response_information: Option<bool>,
    /// Request Problem Information (0x17).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_problem_information: Option<bool>,
    /// Authentication Method (0x15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16); only with a method.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "json::opt_bytes"
    )]
    pub authentication_data: Option<Bytes>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

/// Will properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct WillProperties {
    /// Will Delay Interval (0x18), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_delay_interval: Option<u32>,
    /// Payload Format Indicator (0x01): true for UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format_indicator: Option<bool>,
    /// Message Expiry Interval (0x02), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_interval: Option<u32>,
    /// Content Type (0x03).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<MqttString>,
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
}

/// Checks the topic name `field` (which starts at `offset`).
pub(crate) fn topic_name_at(
    s: &MqttString,
    offset: usize,
    version: Version,
    field: NameField,
) -> Result<(), CodecError> {
    check_topic_name(s).map_err(|problem| CodecError::InvalidTopicName {
        offset,
        problem,
        spec: field.spec(problem, version),
    })
}

impl Connect {
    /// Decodes the body; learns the version from the protocol level, which
    /// must be `expected` if given. The rest of the packet is read by the
    /// rules of that version only: a level-5 CONNECT met where 3.1.1 is
    /// expected is a version mismatch, never a 5.0 parse error.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        header: &FixedHeader,
        expected: Option<Version>,
    ) -> Result<(Connect, Version), CodecError> {
        let name_offset = r.pos();
        let name = r.binary("protocol name")?;
        if name.as_ref() != b"MQTT" {
            return Err(CodecError::InvalidProtocolName {
                offset: name_offset,
            });
        }
        let level_offset = r.pos();
        let level = r.u8("protocol level")?;
        let version = Version::from_level(level).ok_or(CodecError::UnsupportedProtocolVersion {
            offset: level_offset,
            level,
        })?;
        if let Some(expected) = expected.filter(|e| *e != version) {
            return Err(CodecError::VersionMismatch {
                offset: level_offset,
                expected,
                found: version,
            });
        }
        if version == Version::V5 && !header.is_minimal() {
            return Err(not_minimal_remaining_length());
        }
        r.version = version;
        super::check_header_flags(PT, header.flags(), version)?;

        let flags_offset = r.pos();
        let flags = r.u8("connect flags")?;
        if flags & 0x01 != 0 {
            return Err(CodecError::ReservedBitSet {
                offset: flags_offset,
                what: "CONNECT flags",
                spec: Some("MQTT-3.1.2-3"),
            });
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !will_flag && will_qos != 0 {
            return Err(CodecError::WillFlagsWithoutWill {
                offset: flags_offset,
                what: "Will QoS",
                spec: spec(version, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
            });
        }
        if !will_flag && will_retain {
            return Err(CodecError::WillFlagsWithoutWill {
                offset: flags_offset,
                what: "Will Retain",
                spec: spec(version, "MQTT-3.1.2-15", "MQTT-3.1.2-13"),
            });
        }
        let will_qos = QoS::from_u8(will_qos).ok_or(CodecError::InvalidQos {
            offset: flags_offset,
            what: "Will QoS",
            spec: Some(spec(version, "MQTT-3.1.2-14", "MQTT-3.1.2-12")),
        })?;
        if version == Version::V311 && has_password && !has_username {
            return Err(CodecError::PasswordWithoutUsername {
                offset: flags_offset,
            });
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = match version {
            Version::V5 => ConnectProperties::read(r)?,
            Version::V311 => ConnectProperties::default(),
        };
        let client_id = r.string("client identifier")?;
        let will = if will_flag {
            let properties = match version {
                Version::V5 => WillProperties::read(r)?,
                Version::V311 => WillProperties::default(),
            };
            let topic_offset = r.pos() + 2;
            let topic = r.string("will topic")?;
            topic_name_at(&topic, topic_offset, version, NameField::WillTopic)?;
            let payload = r.binary("will payload")?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string("user name")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary("password")?)
        } else {
            None
        };
        let connect = Connect {
            clean_start: flags & 0x02 != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        };
        Ok((connect, version))
    }

    /// Writes the body.
    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        if v == Version::V311 {
            if self.password.is_some() && self.username.is_none() {
                return Err(CodecError::InvalidField {
                    offset: 0,
                    packet_type: PT,
                    what: "password",
                    why: "needs a user name in MQTT 3.1.1 (MQTT-3.1.2-22)",
                });
            }
            if self.properties != ConnectProperties::default() {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "properties",
                    version: v,
                });
            }
            if self
                .will
                .as_ref()
                .is_some_and(|w| w.properties != WillProperties::default())
            {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "will properties",
                    version: v,
                });
            }
        }
        s.u16(4);
        s.put(b"MQTT");
        s.u8(v.level());
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | ((w.qos as u8) << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        s.u8(flags);
        s.u16(self.keep_alive);
        if v == Version::V5 {
            write_block(s, &self.properties, PT)?;
        }
        s.string(&self.client_id);
        if let Some(w) = &self.will {
            if v == Version::V5 {
                write_block(s, &w.properties, PT)?;
            }
            topic_name_at(&w.topic, 0, v, NameField::WillTopic)?;
            s.string(&w.topic);
            s.binary(&w.payload, "will payload")?;
        }
        if let Some(u) = &self.username {
            s.string(u);
        }
        if let Some(p) = &self.password {
            s.binary(p, "password")?;
        }
        Ok(())
    }
}

impl ConnectProperties {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut p = ConnectProperties::default();
        let start = read_block(r, PT, |id, r, off| {
            match id {
                P::SessionExpiryInterval => {
                    once(&mut p.session_expiry_interval, r.u32(id.name())?, id, off)?
                }
                P::ReceiveMaximum => {
                    once(&mut p.receive_maximum, read_nonzero_u16(r, id)?, id, off)?
                }
                P::MaximumPacketSize => once(
                    &mut p.maximum_packet_size,
                    read_nonzero_u32(r, id)?,
                    id,
                    off,
                )?,
                P::TopicAliasMaximum => {
                    once(&mut p.topic_alias_maximum, r.u16(id.name())?, id, off)?
                }
                P::RequestResponseInformation => once(
                    &mut p.request_response_information,
                    read_bool(r, id)?,
                    id,
                    off,
                )?,
                P::RequestProblemInformation => once(
                    &mut p.request_problem_information,
                    read_bool(r, id)?,
                    id,
                    off,
                )?,
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

impl PropertyBlock for ConnectProperties {
    fn emit<S: Sink>(&self, s: &mut S, pt: PacketType) -> Result<(), CodecError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: pt,
                what: "Authentication Data",
                why: "needs an Authentication Method",
            });
        }
        put::u32(s, P::SessionExpiryInterval, self.session_expiry_interval);
        put::nonzero(s, P::ReceiveMaximum, self.receive_maximum, pt, put::u16)?;
        put::nonzero(
            s,
            P::MaximumPacketSize,
            self.maximum_packet_size,
            pt,
            put::u32,
        )?;
        put::u16(s, P::TopicAliasMaximum, self.topic_alias_maximum);
        put::flag(
            s,
            P::RequestResponseInformation,
            self.request_response_information,
        );
        put::flag(
            s,
            P::RequestProblemInformation,
            self.request_problem_information,
        );
        put::string(s, P::AuthenticationMethod, &self.authentication_method);
        put::binary(s, P::AuthenticationData, &self.authentication_data)?;
        put::users(s, &self.user_properties);
        Ok(())
    }
}

impl WillProperties {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut p = WillProperties::default();
        let version = r.version;
        read_block(r, PT, |id, r, off| {
            match id {
                P::WillDelayInterval => {
                    once(&mut p.will_delay_interval, r.u32(id.name())?, id, off)?
                }
                P::PayloadFormatIndicator => {
                    once(&mut p.payload_format_indicator, read_bool(r, id)?, id, off)?
                }
                P::MessageExpiryInterval => {
                    once(&mut p.message_expiry_interval, r.u32(id.name())?, id, off)?
                }
                P::ContentType => once(&mut p.content_type, r.string(id.name())?, id, off)?,
                P::ResponseTopic => {
                    let at = r.pos() + 2;
                    let t = r.string(id.name())?;
                    topic_name_at(&t, at, version, NameField::ResponseTopic)?;
                    once(&mut p.response_topic, t, id, off)?
                }
                P::CorrelationData => once(&mut p.correlation_data, r.binary(id.name())?, id, off)?,
                P::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(p)
    }
}

impl PropertyBlock for WillProperties {
    fn emit<S: Sink>(&self, s: &mut S, _: PacketType) -> Result<(), CodecError> {
        if let Some(t) = &self.response_topic {
            topic_name_at(t, 0, Version::V5, NameField::ResponseTopic)?;
        }
        put::u32(s, P::WillDelayInterval, self.will_delay_interval);
        put::flag(s, P::PayloadFormatIndicator, self.payload_format_indicator);
        put::u32(s, P::MessageExpiryInterval, self.message_expiry_interval);
        put::string(s, P::ContentType, &self.content_type);
        put::string(s, P::ResponseTopic, &self.response_topic);
        put::binary(s, P::CorrelationData, &self.correlation_data)?;
        put::users(s, &self.user_properties);
        Ok(())
    }
}
