//! `codec_roundtrip`: a valid packet built from the input by
//! [`crate::codec::arbitrary`], encoded, then decoded whole and as a stream.

use super::Finding;
use super::codec_decode::decode_as;
use crate::codec::{self, FrameDecoder, PacketType, Version, arbitrary};
use ::arbitrary::Unstructured;
use bytes::BytesMut;

/// Byte 0 picks the version, byte 1 the packet type, the rest fills the
/// packet. It must encode (with `encoded_len` telling its size), and
/// decoding the encoding, at once or split in two chunks, gives it back.
pub fn codec_roundtrip(data: &[u8]) -> Result<(), Finding> {
    let mut u = Unstructured::new(data);
    let v = if u.arbitrary::<u8>().unwrap_or(0) & 1 == 0 {
        Version::V311
    } else {
        Version::V5
    };
    let pt = PacketType::from_u8(u.arbitrary::<u8>().unwrap_or(0) % 15 + 1)
        .unwrap_or(PacketType::Pingreq);
    let Ok(p) = arbitrary::valid_packet_of(&mut u, v, pt) else {
        return Ok(());
    };
    let mut wire = BytesMut::new();
    if let Err(error) = codec::encode(&p, v, &mut wire) {
        return Err(Finding::ValidNotEncodable {
            version: v,
            error,
            packet: Box::new(p),
        });
    }
    let wire = wire.freeze();
    let len_ok = codec::encoded_len(&p, v).is_ok_and(|n| n == wire.len());
    let whole = decode_as(&p, &wire, v);
    let mismatch = |after: String| Finding::RoundTrip {
        version: v,
        before: Box::new(p.clone()),
        after,
        canonical_differs: false,
    };
    match whole {
        Ok(q) if q == p && len_ok => {}
        Ok(q) if q == p => return Err(mismatch("encoded_len disagrees with encode".into())),
        Ok(q) => return Err(mismatch(format!("{q:?}"))),
        Err(e) => return Err(mismatch(format!("error: {e}"))),
    }
    let cut = u.arbitrary::<u8>().map_or(0, usize::from).min(wire.len());
    let (a, b) = wire.split_at(cut);
    let mut d = FrameDecoder::new(Some(v), codec::DEFAULT_MAX_PACKET_SIZE);
    d.extend(a);
    let early = d.next_packet();
    d.extend(b);
    let streamed = match early {
        Ok(Some(q)) => Ok(Some(q)),
        Ok(None) => d.next_packet(),
        Err(e) => Err(e),
    };
    match streamed {
        Ok(Some(q)) if q == p => Ok(()),
        other => Err(mismatch(format!("frame decoder: {other:?}"))),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_version_round_trips() {
        for v in 0..2u8 {
            for t in 0..15u8 {
                let mut data = vec![v, t];
                data.extend((0..200u8).map(|i| i.wrapping_mul(37).wrapping_add(t)));
                codec_roundtrip(&data).unwrap();
            }
        }
        codec_roundtrip(&[]).unwrap();
    }
}
