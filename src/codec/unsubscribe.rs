//! UNSUBSCRIBE: packet identifier, MQTT 5 properties, one or more filters.

use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, put, read_block, read_user, write_block,
};
use super::read::Reader;
use super::string::MqttString;
use super::subscribe::{filter_at, is_plain_filter, request_packet_id};
use super::write::Sink;
use super::{CodecError, PacketType, Version};
use serde::Serialize;

const PT: PacketType = PacketType::Unsubscribe;

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribe {
    /// Packet Identifier, non-zero.
    pub packet_id: u16,
    /// The topic filters, at least one.
    pub filters: Vec<MqttString>,
    /// MQTT 5 properties (must be empty for 3.1.1).
    pub properties: UnsubscribeProperties,
}

/// UNSUBSCRIBE properties (MQTT 5): only User Properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnsubscribeProperties {
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let v = r.version;
        let packet_id = request_packet_id(r, PT)?;
        let mut properties = UnsubscribeProperties::default();
        if v == Version::V5 {
            read_block(r, PT, |id, r, _| {
                if id != P::UserProperty {
                    return Ok(false);
                }
                properties.user_properties.push(read_user(r)?);
                Ok(true)
            })?;
        }
        if r.is_empty() {
            return Err(CodecError::EmptyPayload {
                offset: r.pos(),
                packet_type: PT,
                spec: Some("MQTT-3.10.3-2"),
            });
        }
        // The capacity the first push would give, without the growth path.
        let mut filters = Vec::with_capacity(4);
        while !r.is_empty() {
            let at = r.pos() + 2;
            let filter = r.string("topic filter")?;
            if !is_plain_filter(&filter, v) {
                filter_at(&filter, at, v)?;
            }
            filters.push(filter);
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        let invalid = |what, why| CodecError::InvalidField {
            offset: 0,
            packet_type: PT,
            what,
            why,
        };
        if self.packet_id == 0 {
            return Err(invalid("packet_id", "must be non-zero"));
        }
        if self.filters.is_empty() {
            return Err(invalid(
                "filters",
                "must hold at least one topic filter (MQTT-3.10.3-2)",
            ));
        }
        s.u16(self.packet_id);
        match v {
            Version::V5 => write_block(s, &self.properties, PT)?,
            Version::V311 if self.properties != UnsubscribeProperties::default() => {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "properties",
                    version: v,
                });
            }
            Version::V311 => {}
        }
        for f in &self.filters {
            filter_at(f, 0, v)?;
            s.string(f);
        }
        Ok(())
    }
}

impl PropertyBlock for UnsubscribeProperties {
    fn emit<S: Sink>(&self, s: &mut S, _: PacketType) -> Result<(), CodecError> {
        put::users(s, &self.user_properties);
        Ok(())
    }
}
