//! `codec_decode`: any bytes, decoded as each version, as a CONNECT of
//! either version and through the streaming frame decoder.

use super::Finding;
use crate::codec::{self, CodecError, FrameDecoder, Packet, Version};
use bytes::{Bytes, BytesMut};

/// Frames the streaming pass takes from one input at most.
const MAX_FRAMES: usize = 64;

/// Decodes `data` every way the kernels do. Never panics; every packet
/// that decodes must encode again, and that canonical encoding must decode
/// to the same packet (and so encode to the same bytes); the frame decoder
/// must agree with the whole-packet decoder on a lone CONNECT.
pub fn codec_decode(data: &[u8]) -> Result<(), Finding> {
    let buf = Bytes::copy_from_slice(data);
    // Every canonical encoding of this input goes through one buffer: under
    // ASan an allocation costs about as much as decoding a small packet,
    // and this target ran three of them per packet it checked.
    let mut scratch = BytesMut::new();
    for v in [Version::V311, Version::V5] {
        if let Ok(p) = codec::decode(&buf, v) {
            canonical(&p, v, Some(&buf[..]), &mut scratch)?;
        }
    }
    let mut whole_connect = None;
    if let Ok((p, v)) = codec::decode_connect_packet(&buf) {
        canonical(&p, v, Some(&buf[..]), &mut scratch)?;
        whole_connect = Some(p);
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
            Ok(Some(p)) => {
                let v = d.version().unwrap_or(Version::V5);
                // The input is that one CONNECT, whose canonical form was
                // checked above: the frame decoder, with its own fast
                // paths, must have read the same packet.
                match whole_connect.take() {
                    Some(whole) if whole != p => {
                        return Err(Finding::DecodersDisagree {
                            version: v,
                            whole: Box::new(whole),
                            frame: Box::new(p),
                        });
                    }
                    Some(_) => {}
                    None => canonical(&p, v, None, &mut scratch)?,
                }
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

/// Checks that `p` (decoded in `v`, from `wire` when it was the whole
/// input) has a stable canonical encoding, encoding it into `scratch`.
///
/// `decode(encode(p)) == p` is all the happy path checks: every codec type
/// compares by value (`PartialEq` is derived throughout) and `encode` is a
/// function of the value, so equal packets encode to equal bytes. Nor does
/// a canonical form equal to `wire` need decoding again: decoding is a
/// function of the bytes, and `p` is what these bytes decoded to. Encoding
/// the decoded packet a second time only tells a failure's report whether
/// the bytes moved too.
fn canonical(
    p: &Packet,
    v: Version,
    wire: Option<&[u8]>,
    scratch: &mut BytesMut,
) -> Result<(), Finding> {
    // Once the previous encoding and what was decoded from it are gone the
    // buffer is unique again, and reserving reuses it.
    scratch.clear();
    if let Err(error) = codec::encode(p, v, scratch) {
        return Err(Finding::DecodedNotEncodable {
            version: v,
            error,
            packet: Box::new(p.clone()),
        });
    }
    if wire == Some(&scratch[..]) {
        return Ok(());
    }
    let first = scratch.split().freeze();
    match decode_as(p, &first, v) {
        Ok(q) if q == *p => Ok(()),
        other => {
            let mut second = BytesMut::new();
            let canonical_differs = match &other {
                Ok(q) => codec::encode(q, v, &mut second).is_err() || second != first,
                Err(_) => true,
            };
            Err(Finding::RoundTrip {
                version: v,
                before: Box::new(p.clone()),
                after: match other {
                    Ok(q) => format!("{q:?}"),
                    Err(e) => format!("error: {e}"),
                },
                canonical_differs,
            })
        }
    }
}

/// Decodes `wire`, the encoding of `p`, the way a packet of its type is
/// decoded: a CONNECT by [`codec::decode_connect`] (its version is its
/// own), anything else as one packet of `v`.
pub(super) fn decode_as(p: &Packet, wire: &Bytes, v: Version) -> Result<Packet, CodecError> {
    match p {
        Packet::Connect(_) => codec::decode_connect_packet(wire).map(|(q, _)| q),
        _ => codec::decode(wire, v),
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
        let e = canonical(
            &Packet::Publish(p),
            Version::V311,
            None,
            &mut BytesMut::new(),
        )
        .unwrap_err();
        assert!(matches!(e, Finding::DecodedNotEncodable { .. }), "{e}");
    }
}
