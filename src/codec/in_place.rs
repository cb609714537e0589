//! The packets whose decoded form holds none of the frame's bytes (pings,
//! the acknowledgements, DISCONNECT, the bare AUTH), in their common forms,
//! decoded where they lie in the stream buffer. The frame decoder then
//! skips them with one `advance` instead of cutting each into its own
//! `Bytes` (an allocation on the first cut, a reference count taken and
//! dropped on every one), which on streams of PUBACKs is most of the cost.
//!
//! Only valid packets are claimed: anything else, errors included, is left
//! to [`decode_frame`](super::decode_frame), which reports exactly what it
//! always did. `tests` checks both agree on every frame claimed.

use super::header::FixedHeader;
use super::{
    Auth, Disconnect, Packet, PacketType, PubResponse, ReasonCode, Suback, Unsuback, Version,
};

/// The packet in `frame` (one whole frame, header `h`) if it is one of the
/// forms handled here and valid in `v`.
#[inline]
pub(crate) fn decode(frame: &[u8], h: &FixedHeader, v: Version) -> Option<Packet> {
    let body = frame.get(h.header_len..)?;
    if v == Version::V5 && !h.is_minimal() {
        return None;
    }
    decode_body(h.byte1, body, v)
}

/// The packet at the front of `bytes`, and its frame's length, if that
/// frame has arrived whole, has a one-byte Remaining Length (minimal in
/// any version) and is one of the forms handled here: the frame decoder's
/// fast path, which then needs no header parse of its own. Inlined with
/// `decode_body`: out of line, the 96-byte `Option<Packet>` each returns
/// was copied into the caller's result, a fifth of a PINGREQ's cost.
#[inline(always)]
pub(crate) fn decode_short(bytes: &[u8], v: Version) -> Option<(Packet, usize)> {
    let [byte1, rl, rest @ ..] = bytes else {
        return None;
    };
    // PUBLISH, the most common frame, is never one of them: out first.
    if *rl >= 0x80 || *byte1 >> 4 == PacketType::Publish as u8 {
        return None;
    }
    let body = rest.get(..usize::from(*rl))?;
    Some((decode_body(*byte1, body, v)?, 2 + body.len()))
}

/// The packet whose first byte is `byte1` and whose body is `body`.
#[inline(always)]
fn decode_body(byte1: u8, body: &[u8], v: Version) -> Option<Packet> {
    match byte1 {
        0xc0 if body.is_empty() => Some(Packet::Pingreq),
        0xd0 if body.is_empty() => Some(Packet::Pingresp),
        0x40 => ack(body, PacketType::Puback, v).map(Packet::Puback),
        0x50 => ack(body, PacketType::Pubrec, v).map(Packet::Pubrec),
        0x62 => ack(body, PacketType::Pubrel, v).map(Packet::Pubrel),
        0x70 => ack(body, PacketType::Pubcomp, v).map(Packet::Pubcomp),
        0x90 => suback(body, v).map(Packet::Suback),
        0xb0 => unsuback(body, v).map(Packet::Unsuback),
        0xe0 => disconnect(body, v).map(Packet::Disconnect),
        0xf0 if body.is_empty() && v == Version::V5 => Some(Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Default::default(),
        })),
        _ => None,
    }
}

/// A non-zero packet identifier at the front of `body`, and the rest.
#[inline]
fn packet_id(body: &[u8]) -> Option<(u16, &[u8])> {
    match body {
        [a, b, rest @ ..] if (*a, *b) != (0, 0) => Some((u16::from_be_bytes([*a, *b]), rest)),
        _ => None,
    }
}

/// A code `pt` may carry in `v`.
#[inline]
fn code(b: u8, pt: PacketType, v: Version) -> Option<ReasonCode> {
    ReasonCode::decode(b, pt, v, 0).ok()
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: identifier, then in 5.0 a reason
/// code and an empty property block, each of which may be left out.
#[inline]
fn ack(body: &[u8], pt: PacketType, v: Version) -> Option<PubResponse> {
    let (id, rest) = packet_id(body)?;
    let reason = match (v, rest) {
        (_, []) => ReasonCode::Success,
        (Version::V5, [c] | [c, 0]) => code(*c, pt, v)?,
        _ => return None,
    };
    Some(PubResponse {
        reason,
        ..PubResponse::new(id)
    })
}

/// The reason codes of a SUBACK or UNSUBACK, at least one.
fn codes(list: &[u8], pt: PacketType, v: Version) -> Option<Vec<ReasonCode>> {
    if list.is_empty() {
        return None;
    }
    // Sized up front: collecting through `Option` starts from a size hint
    // of zero and grows.
    let mut codes = Vec::with_capacity(list.len());
    for b in list {
        codes.push(code(*b, pt, v)?);
    }
    Some(codes)
}

/// SUBACK without properties.
fn suback(body: &[u8], v: Version) -> Option<Suback> {
    let (packet_id, rest) = packet_id(body)?;
    let list = match (v, rest) {
        (Version::V311, list) => list,
        (Version::V5, [0, list @ ..]) => list,
        _ => return None,
    };
    Some(Suback {
        packet_id,
        reasons: codes(list, PacketType::Suback, v)?,
        properties: Default::default(),
    })
}

/// UNSUBACK without properties (3.1.1: the identifier alone).
fn unsuback(body: &[u8], v: Version) -> Option<Unsuback> {
    let (packet_id, rest) = packet_id(body)?;
    let reasons = match (v, rest) {
        (Version::V311, []) => Vec::new(),
        (Version::V5, [0, list @ ..]) => codes(list, PacketType::Unsuback, v)?,
        _ => return None,
    };
    Some(Unsuback {
        packet_id,
        reasons,
        properties: Default::default(),
    })
}

/// DISCONNECT without properties.
fn disconnect(body: &[u8], v: Version) -> Option<Disconnect> {
    let reason = match (v, body) {
        (_, []) => ReasonCode::Success,
        (Version::V5, [c] | [c, 0]) => code(*c, PacketType::Disconnect, v)?,
        _ => return None,
    };
    Some(Disconnect {
        reason,
        ..Disconnect::default()
    })
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::codec::{decode_frame, parse_fixed_header};
    use bytes::Bytes;

    /// Every frame of a set of first bytes (each type, right and wrong
    /// flags) and bodies of up to 4 bytes from codes on the edges: what
    /// this module claims, the full decoder decodes the same.
    #[test]
    fn claims_only_what_the_full_decoder_decodes_the_same() {
        const FIRST: &[u8] = &[
            0x40, 0x41, 0x50, 0x60, 0x62, 0x70, 0x90, 0x92, 0xb0, 0xc0, 0xc1, 0xd0, 0xe0, 0xe2,
            0xf0, 0xf1, 0x30, 0x82,
        ];
        const BODY: &[u8] = &[
            0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x80, 0x87, 0x92, 0x9e, 0xff,
        ];
        let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = bodies
                .iter()
                .filter(|b| b.len() == bodies.last().map_or(0, Vec::len))
                .flat_map(|b| {
                    BODY.iter().map(move |x| {
                        let mut b = b.clone();
                        b.push(*x);
                        b
                    })
                })
                .collect();
            bodies.extend(longer);
        }
        let mut claimed = 0;
        for v in [Version::V311, Version::V5] {
            for &first in FIRST {
                for body in &bodies {
                    let mut frame = vec![first, body.len() as u8];
                    frame.extend_from_slice(body);
                    let h = parse_fixed_header(&frame).unwrap().unwrap();
                    let Some(p) = decode(&frame, &h, v) else {
                        assert_eq!(decode_short(&frame, v), None, "{v} {}", hex::encode(&frame));
                        continue;
                    };
                    claimed += 1;
                    let full = decode_frame(&Bytes::from(frame.clone()), &h, Some(v));
                    assert_eq!(
                        full.map(|(p, _)| p),
                        Ok(p.clone()),
                        "{v} {}",
                        hex::encode(&frame)
                    );
                    // The fast path claims the same, with a byte to spare
                    // after the frame, and nothing of a frame cut short.
                    frame.push(0xc0);
                    let len = frame.len() - 1;
                    assert_eq!(
                        decode_short(&frame, v),
                        Some((p, len)),
                        "{}",
                        hex::encode(&frame)
                    );
                    assert_eq!(
                        decode_short(&frame[..len - 1], v),
                        None,
                        "{}",
                        hex::encode(&frame)
                    );
                }
            }
        }
        assert!(claimed > 1000, "{claimed}");
    }

    /// A Remaining Length in a longer form than needed: 3.1.1 allows it,
    /// 5.0 leaves it to the full decoder's error.
    #[test]
    fn non_minimal_remaining_length_is_claimed_in_3_1_1_only() {
        let frame = [0xc0, 0x80, 0x00];
        let h = parse_fixed_header(&frame).unwrap().unwrap();
        assert_eq!(decode(&frame, &h, Version::V311), Some(Packet::Pingreq));
        assert_eq!(decode(&frame, &h, Version::V5), None);
    }
}
