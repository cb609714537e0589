//! UNSUBACK: packet identifier and, in MQTT 5, properties and one reason
//! code per filter (3.1.1 has neither).

use super::properties::{AckProperties, write_block};
use super::read::Reader;
use super::reason::ReasonCode;
use super::write::Sink;
use super::{CodecError, PacketType, Version};
use serde::Serialize;

const PT: PacketType = PacketType::Unsuback;

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsuback {
    /// Packet Identifier of the UNSUBSCRIBE answered.
    pub packet_id: u16,
    /// MQTT 5: one code per filter, at least one. 3.1.1: empty.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties (must be empty for 3.1.1).
    #[serde(skip_serializing_if = "AckProperties::is_empty")]
    pub properties: AckProperties,
}

impl Unsuback {
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
        if v == Version::V311 {
            return Ok(Unsuback {
                packet_id,
                reasons: Vec::new(),
                properties: AckProperties::default(),
            });
        }
        let properties = AckProperties::read(r, PT)?;
        let reasons = ReasonCode::read_list(r, PT, v)?;
        Ok(Unsuback {
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
        s.u16(self.packet_id);
        if v == Version::V311 {
            if !self.reasons.is_empty() || !self.properties.is_empty() {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "reason codes and properties",
                    version: v,
                });
            }
            return Ok(());
        }
        if self.reasons.is_empty() {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: PT,
                what: "reasons",
                why: "must hold one code per filter",
            });
        }
        write_block(s, &self.properties, PT)?;
        for code in &self.reasons {
            s.u8(code.encode(PT, v)?);
        }
        Ok(())
    }
}
