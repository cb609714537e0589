//! `codec_decode`: any bytes, decoded as each version, as a CONNECT of
//! either version and through the streaming frame decoder.

use super::Finding;
use crate::codec::{self, FrameDecoder, Packet, Version};
use bytes::{Bytes, BytesMut};

/// Frames the streaming pass takes from one input at most.
const MAX_FRAMES: usize = 64;

/// Decodes `data` every way the kernels do. Never panics; every packet
/// that decodes must encode again, and that canonical encoding must decode
/// to the same packet and encode to the same bytes.
pub fn codec_decode(data: &[u8]) -> Result<(), Finding> {
    let buf = Bytes::copy_from_slice(data);
    let mut whole = false;
    for v in [Version::V311, Version::V5] {
        if let Ok(p) = codec::decode(&buf, v) {
            canonical(&p, v)?;
            whole = true;
        }
    }
    if let Ok((c, v)) = codec::decode_connect(&buf) {
        canonical(&Packet::Connect(Box::new(c)), v)?;
        whole = true;
    }
    // The stream as a broker reads it (version learnt from CONNECT), cut
    // where the first byte says, so frames straddle the chunks.
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (a, b) = data.split_at(cut);
    let mut d = FrameDecoder::new(None, codec::DEFAULT_MAX_PACKET_SIZE);
    d.extend(a);
    let mut fed_rest = b.is_empty();
    for _ in 0..MAX_FRAMES {
        match d.next_packet() {
            // A single packet that the whole-buffer decodes took already
            // had its canonical form checked.
            Ok(Some(_)) if whole && fed_rest && d.buffered() == 0 => whole = false,
            Ok(Some(p)) => {
                whole = false;
                let v = d.version().unwrap_or(Version::V5);
                canonical(&p, v)?;
            }
            Ok(None) if !fed_rest => {
                d.extend(b);
                fed_rest = true;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = d.finish();
    Ok(())
}

/// Checks that `p` (decoded in `v`) has a stable canonical encoding.
fn canonical(p: &Packet, v: Version) -> Result<(), Finding> {
    let mut first = BytesMut::new();
    if let Err(error) = codec::encode(p, v, &mut first) {
        return Err(Finding::DecodedNotEncodable {
            version: v,
            error,
            packet: Box::new(p.clone()),
        });
    }
    let first = first.freeze();
    let again = match p.packet_type() {
        codec::PacketType::Connect => {
            codec::decode_connect(&first).map(|(c, _)| Packet::Connect(Box::new(c)))
        }
        _ => codec::decode(&first, v),
    };
    let mut second = BytesMut::new();
    let stable = match &again {
        Ok(q) => codec::encode(q, v, &mut second).is_ok() && second == first,
        Err(_) => false,
    };
    match again {
        Ok(q) if q == *p && stable => Ok(()),
        other => Err(Finding::RoundTrip {
            version: v,
            before: Box::new(p.clone()),
            after: match other {
                Ok(q) => format!("{q:?}"),
                Err(e) => format!("error: {e}"),
            },
            canonical_differs: !stable,
        }),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_garbage_input() {
        // A 3.1.1 SUBSCRIBE, a CONNECT, and the malicious SUBSCRIBE of
        // NanoNNG 1505.
        assert!(codec_decode(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]).is_ok());
        let connect = [
            0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c',
        ];
        assert!(codec_decode(&connect).is_ok());
        let evil = [
            0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78, 0x78, 0x00,
        ];
        assert!(codec_decode(&evil).is_ok());
        assert!(codec_decode(&[]).is_ok());
        assert!(codec_decode(&[0xff; 9]).is_ok());
    }

    #[test]
    fn canonical_reports_a_packet_that_cannot_be_encoded() {
        // A topic alias is only valid in MQTT 5: as 3.1.1 it does not encode.
        let mut p = codec::Publish::new(codec::MqttString::new("t").unwrap(), Bytes::new());
        p.properties.topic_alias = Some(1);
        let e = canonical(&Packet::Publish(p), Version::V311).unwrap_err();
        assert!(matches!(e, Finding::DecodedNotEncodable { .. }), "{e}");
    }
}
