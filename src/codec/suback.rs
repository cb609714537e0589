//! SUBACK: packet identifier, MQTT 5 properties, one code per filter.

use super::properties::{AckProperties, write_block};
use super::read::Reader;
use super::reason::ReasonCode;
use super::write::Sink;
use super::{CodecError, PacketType, Version};
use serde::Serialize;

const PT: PacketType = PacketType::Suback;

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suback {
    /// Packet Identifier of the SUBSCRIBE answered.
    pub packet_id: u16,
    /// One code per requested filter, in order (3.1.1: GrantedQos*/Success or
    /// UnspecifiedError for Failure 0x80).
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties (must be empty for 3.1.1).
    #[serde(skip_serializing_if = "AckProperties::is_empty")]
    pub properties: AckProperties,
}

impl Suback {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let v = r.version;
        let at = r.pos();
        let packet_id = r.u16("packet identifier")?;
        if packet_id == 0 {
            return Err(CodecError::ZeroPacketId {
                offset: at,
                packet_type: PT,
                spec: None,
            });
        }
        let properties = match v {
            Version::V5 => AckProperties::read(r, PT)?,
            Version::V311 => AckProperties::default(),
        };
        let reasons = ReasonCode::read_list(r, PT, v)?;
        Ok(Suback {
            packet_id,
            reasons,
            properties,
        })
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        if self.packet_id == 0 {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: PT,
                what: "packet_id",
                why: "must be non-zero",
            });
        }
        if self.reasons.is_empty() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: PT,
                what: "reasons",
                why: "must hold one code per filter",
            });
        }
        s.u16(self.packet_id);
        match v {
            Version::V5 => write_block(s, &self.properties, PT)?,
            Version::V311 if !self.properties.is_empty() => {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "properties",
                    version: v,
                });
            }
            Version::V311 => {}
        }
        for code in &self.reasons {
            s.u8(code.encode(PT, v)?);
        }
        Ok(())
    }
}
