//! PUBACK, PUBREC, PUBREL and PUBCOMP: a packet identifier and, in MQTT 5,
//! a reason code and properties (both omitted on the wire when default).

use super::properties::{AckProperties, write_block};
use super::read::Reader;
use super::reason::ReasonCode;
use super::write::Sink;
use super::{CodecError, PacketType, Version};
use serde::Serialize;

/// The body of PUBACK, PUBREC, PUBREL and PUBCOMP (which one is given by the
/// [`Packet`](super::Packet) variant holding it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PubResponse {
    /// Packet Identifier of the PUBLISH (or PUBREL) answered, non-zero.
    pub packet_id: u16,
    /// Reason code (3.1.1: always Success).
    pub reason: ReasonCode,
    /// MQTT 5 properties (must be empty for 3.1.1).
    #[serde(skip_serializing_if = "AckProperties::is_empty")]
    pub properties: AckProperties,
}

impl PubResponse {
    /// A successful response for `packet_id`.
    pub fn new(packet_id: u16) -> Self {
        PubResponse {
            packet_id,
            reason: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, pt: PacketType) -> Result<Self, CodecError> {
        let at = r.pos();
        let packet_id = r.u16("packet identifier")?;
        if packet_id == 0 {
            return Err(CodecError::ZeroPacketId {
                offset: at,
                packet_type: pt,
                spec: None,
            });
        }
        let mut ack = PubResponse::new(packet_id);
        if r.version == Version::V5 && !r.is_empty() {
            let at = r.pos();
            ack.reason = ReasonCode::decode(r.u8("reason code")?, pt, Version::V5, at)?;
            if !r.is_empty() {
                ack.properties = AckProperties::read(r, pt)?;
            }
        }
        Ok(ack)
    }

    pub(crate) fn encode<S: Sink>(
        &self,
        pt: PacketType,
        v: Version,
        s: &mut S,
    ) -> Result<(), CodecError> {
        if self.packet_id == 0 {
            return Err(CodecError::InvalidField {
                offset: 0,
                packet_type: pt,
                what: "packet_id",
                why: "must be non-zero",
            });
        }
        let code = self.reason.encode(pt, v)?;
        s.u16(self.packet_id);
        if v == Version::V311 {
            if !self.properties.is_empty() {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: pt,
                    what: "properties",
                    version: v,
                });
            }
            return Ok(());
        }
        // The shortest form the receiver reads back to the same value.
        if self.properties.is_empty() {
            if self.reason != ReasonCode::Success {
                s.u8(code);
            }
            return Ok(());
        }
        s.u8(code);
        write_block(s, &self.properties, pt)
    }
}
