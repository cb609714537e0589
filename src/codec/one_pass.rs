//! The common packets without properties, written in one pass: their
//! Remaining Length is a sum of field lengths, so the counting pass the
//! general encoder makes first (and the property block's own) is skipped,
//! and the fixed part goes out as one small array.
//!
//! Only packets these forms can express validly are written: anything
//! else, invalid packets included, is left to the general encoder, which
//! writes it or reports exactly what is wrong. `tests` checks both write
//! the same bytes for every packet written here.

use super::header::varint_len;
use super::subscribe::is_plain_filter;
use super::write::{Sink, put_varint};
use super::{Packet, PacketType, PubResponse, ReasonCode, Subscribe, Unsubscribe, Version};
use bytes::{BufMut, BytesMut};

/// Writes `packet` to `out` if it is one of the forms handled here and
/// valid in `v`; false (nothing written) otherwise.
#[inline]
pub(crate) fn encode(packet: &Packet, v: Version, out: &mut BytesMut) -> bool {
    match packet {
        Packet::Pingreq => out.put_slice(&[0xc0, 0]),
        Packet::Pingresp => out.put_slice(&[0xd0, 0]),
        Packet::Puback(a) => return ack(a, PacketType::Puback, 0x40, v, out),
        Packet::Pubrec(a) => return ack(a, PacketType::Pubrec, 0x50, v, out),
        Packet::Pubrel(a) => return ack(a, PacketType::Pubrel, 0x62, v, out),
        Packet::Pubcomp(a) => return ack(a, PacketType::Pubcomp, 0x70, v, out),
        Packet::Disconnect(d) if d.properties.is_empty() => match (v, d.reason) {
            (_, ReasonCode::Success) => out.put_slice(&[0xe0, 0]),
            (Version::V5, r) if r.is_wire_byte_in(PacketType::Disconnect, v) => {
                out.put_slice(&[0xe0, 1, r.as_u8()])
            }
            _ => return false,
        },
        Packet::Suback(s) if s.properties.is_empty() && s.packet_id != 0 => {
            return codes(0x90, s.packet_id, &s.reasons, PacketType::Suback, v, out);
        }
        Packet::Unsuback(u) if u.properties.is_empty() && u.packet_id != 0 => {
            if v == Version::V311 {
                if !u.reasons.is_empty() {
                    return false;
                }
                let [hi, lo] = u.packet_id.to_be_bytes();
                out.put_slice(&[0xb0, 2, hi, lo]);
                return true;
            }
            return codes(0xb0, u.packet_id, &u.reasons, PacketType::Unsuback, v, out);
        }
        Packet::Subscribe(s) => return subscribe(s, v, out),
        Packet::Unsubscribe(u) => return unsubscribe(u, v, out),
        _ => return false,
    }
    true
}

/// The fixed header and packet identifier, and in 5.0 an empty property
/// block: the part every packet here starts with.
/// Callers keep `rl` far below the largest Variable Byte Integer (at most
/// 1023 entries of at most 65 538 bytes).
#[inline]
fn head(byte1: u8, rl: usize, packet_id: u16, v: Version, out: &mut BytesMut) {
    let rl = rl as u32;
    out.reserve(1 + varint_len(rl) + rl as usize);
    out.put_u8(byte1);
    put_varint(out, rl);
    out.put_u16(packet_id);
    if v == Version::V5 {
        out.put_u8(0);
    }
}

fn ack(a: &PubResponse, pt: PacketType, byte1: u8, v: Version, out: &mut BytesMut) -> bool {
    if a.packet_id == 0 || !a.properties.is_empty() {
        return false;
    }
    let [hi, lo] = a.packet_id.to_be_bytes();
    match (v, a.reason) {
        (_, ReasonCode::Success) => out.put_slice(&[byte1, 2, hi, lo]),
        (Version::V5, r) if r.is_wire_byte_in(pt, v) => {
            out.put_slice(&[byte1, 3, hi, lo, r.as_u8()])
        }
        _ => return false,
    }
    true
}

/// SUBACK or UNSUBACK: identifier, (5.0) an empty property block, codes.
fn codes(
    byte1: u8,
    packet_id: u16,
    reasons: &[ReasonCode],
    pt: PacketType,
    v: Version,
    out: &mut BytesMut,
) -> bool {
    let short = reasons.len() < 1024;
    if !short || reasons.is_empty() || !reasons.iter().all(|r| r.is_wire_byte_in(pt, v)) {
        return false;
    }
    let rl = 2 + usize::from(v == Version::V5) + reasons.len();
    head(byte1, rl, packet_id, v, out);
    for r in reasons {
        out.put_u8(r.as_u8());
    }
    true
}

fn subscribe(s: &Subscribe, v: Version, out: &mut BytesMut) -> bool {
    let plain = s.packet_id != 0
        && !s.filters.is_empty()
        && s.filters.len() < 1024
        && s.properties.subscription_identifier.is_none()
        && s.properties.user_properties.is_empty()
        && s.filters.iter().all(|f| {
            // 3.1.1 subscription options carry the QoS alone.
            let options_ok = v == Version::V5
                || (!f.options.no_local
                    && !f.options.retain_as_published
                    && f.options.retain_handling as u8 == 0);
            options_ok && is_plain_filter(&f.filter, v)
        });
    if !plain {
        return false;
    }
    let filters: usize = s.filters.iter().map(|f| 3 + f.filter.len()).sum();
    head(
        0x82,
        2 + usize::from(v == Version::V5) + filters,
        s.packet_id,
        v,
        out,
    );
    for f in &s.filters {
        out.string(&f.filter);
        let o = &f.options;
        out.put_u8(
            (o.qos as u8)
                | (u8::from(o.no_local) << 2)
                | (u8::from(o.retain_as_published) << 3)
                | ((o.retain_handling as u8) << 4),
        );
    }
    true
}

fn unsubscribe(u: &Unsubscribe, v: Version, out: &mut BytesMut) -> bool {
    let plain = u.packet_id != 0
        && !u.filters.is_empty()
        && u.filters.len() < 1024
        && u.properties.user_properties.is_empty()
        && u.filters.iter().all(|f| is_plain_filter(f, v));
    if !plain {
        return false;
    }
    let filters: usize = u.filters.iter().map(|f| 2 + f.len()).sum();
    head(
        0xa2,
        2 + usize::from(v == Version::V5) + filters,
        u.packet_id,
        v,
        out,
    );
    for f in &u.filters {
        out.string(f);
    }
    true
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::codec::arbitrary::valid_packet;
    use crate::codec::encode_general;
    use ::arbitrary::Unstructured;

    /// Valid packets of every type from `codec::arbitrary`, plus packets
    /// made invalid: whatever this module (or PUBLISH's own one-pass form)
    /// writes, the general encoder writes the same, and what it leaves is
    /// left whole (nothing written).
    #[test]
    fn writes_what_the_general_encoder_writes() {
        let mut written = 0;
        for seed in 0..20_000u32 {
            let raw: Vec<u8> = (0..200u32)
                .map(|i| (seed.wrapping_mul(2_654_435_761) ^ i.wrapping_mul(40_503)) as u8)
                .collect();
            for v in [Version::V311, Version::V5] {
                let Ok(mut p) = valid_packet(&mut Unstructured::new(&raw), v) else {
                    continue;
                };
                // Every third packet is spoiled where this module decides.
                if seed % 3 == 0 {
                    match &mut p {
                        Packet::Puback(a) => a.packet_id = 0,
                        Packet::Suback(s) => s.reasons.clear(),
                        Packet::Subscribe(s) => s.packet_id = 0,
                        Packet::Unsubscribe(u) => u.filters.clear(),
                        Packet::Publish(p) if p.qos != crate::codec::QoS::AtMostOnce => {
                            p.packet_id = 0
                        }
                        _ => {}
                    }
                }
                let mut fast = BytesMut::new();
                let mut general = BytesMut::new();
                let general_result = encode_general(&p, v, &mut general);
                // PUBLISH has its own one-pass form (`Publish::encode_packet`).
                if let Packet::Publish(publish) = &p {
                    let mut out = BytesMut::new();
                    let result = publish.encode_packet(v, &mut out);
                    assert_eq!((result, out), (general_result, general), "{v} {p:?}");
                    continue;
                }
                let wrote = encode(&p, v, &mut fast);
                if wrote {
                    written += 1;
                    assert_eq!(general_result, Ok(()), "{v} {p:?}");
                    assert_eq!(fast, general, "{v} {p:?}");
                } else {
                    assert!(fast.is_empty(), "{v} {p:?}");
                }
            }
        }
        assert!(written > 5_000, "{written}");
    }
}
