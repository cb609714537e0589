#![cfg(not(feature = "loom"))]
//! The streaming frame decoder under arbitrary chunking: whatever the split,
//! the same packets come out, in order, and partial packets wait.

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use mqtls_harness::codec::{self, FrameDecoder, Packet, Version, arbitrary::valid_packet};
use proptest::prelude::*;

fn stream(v: Version) -> impl Strategy<Value = (Vec<Packet>, Bytes)> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..12).prop_map(
        move |raws| {
            let mut packets = Vec::new();
            let mut out = BytesMut::new();
            for raw in raws {
                if let Ok(p) = valid_packet(&mut Unstructured::new(&raw), v)
                    && !matches!(p, Packet::Connect(_))
                {
                    codec::encode(&p, v, &mut out).unwrap();
                    packets.push(p);
                }
            }
            (packets, out.freeze())
        },
    )
}

/// Feeds `wire` cut at `cuts` and collects every packet.
fn feed(v: Option<Version>, wire: &[u8], cuts: &[usize]) -> Vec<Packet> {
    let mut d = FrameDecoder::new(v, 1 << 20);
    let mut got = Vec::new();
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(wire.len());
    for end in ends {
        d.extend(&wire[start..end]);
        start = end;
        while let Some(p) = d.next_packet().unwrap() {
            got.push(p);
        }
    }
    d.finish().unwrap();
    got
}

proptest! {
    #[test]
    fn any_chunking_yields_the_same_packets_v311((packets, wire) in stream(Version::V311),
                                                 cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
        prop_assert_eq!(feed(Some(Version::V311), &wire, &cuts), packets);
    }

    #[test]
    fn any_chunking_yields_the_same_packets_v5((packets, wire) in stream(Version::V5),
                                               cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
        prop_assert_eq!(feed(Some(Version::V5), &wire, &cuts), packets);
    }
}

#[test]
fn byte_at_a_time() {
    let wire = hex::decode("82060001000161003007000361_2f_62_6869c000".replace('_', "")).unwrap();
    let cuts: Vec<usize> = (0..wire.len()).collect();
    let got = feed(Some(Version::V311), &wire, &cuts);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], Packet::Pingreq);
}

#[test]
fn version_is_learnt_from_connect() {
    let mut wire = BytesMut::new();
    let c = codec::Connect {
        client_id: codec::MqttString::new("c").unwrap(),
        ..Default::default()
    };
    codec::encode(&Packet::Connect(Box::new(c)), Version::V5, &mut wire).unwrap();
    // A 5.0 PUBACK with a reason code only parses as 5.0.
    wire.extend_from_slice(&[0x40, 0x03, 0x00, 0x01, 0x10]);
    let got = feed(None, &wire, &[3, 9, 17]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].packet_id(), Some(1));
}

#[test]
fn payload_is_a_slice_of_the_stream() {
    let mut d = FrameDecoder::new(Some(Version::V311), 1 << 20);
    let payload = vec![7u8; 4000];
    let mut wire = BytesMut::new();
    let p = codec::Publish::new(
        codec::MqttString::new("t").unwrap(),
        Bytes::from(payload.clone()),
    );
    codec::encode(&Packet::Publish(p), Version::V311, &mut wire).unwrap();
    for chunk in wire.chunks(1000) {
        d.extend(chunk);
    }
    let Some(Packet::Publish(got)) = d.next_packet().unwrap() else {
        panic!("expected PUBLISH")
    };
    assert_eq!(&got.payload[..], &payload[..]);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn error_offsets_count_from_the_stream_start() {
    let mut d = FrameDecoder::new(Some(Version::V311), 1 << 20);
    // PINGREQ (2 bytes), then the NanoNNG 1505 SUBSCRIBE.
    let wire = hex::decode("c000820c000100027430000064787800").unwrap();
    d.extend(&wire[..5]);
    d.extend(&wire[5..]);
    assert_eq!(d.next_packet(), Ok(Some(Packet::Pingreq)));
    let e = d.next_packet().unwrap_err();
    assert_eq!(e.offset(), 2 + 9);
}

#[test]
fn truncated_stream_is_reported_at_finish() {
    let mut d = FrameDecoder::new(Some(Version::V311), 1 << 20);
    d.extend(&[0x30, 0x05, 0x00, 0x01]);
    assert_eq!(d.next_packet(), Ok(None));
    assert_eq!(
        d.finish(),
        Err(codec::CodecError::IncompletePacket {
            offset: 0,
            buffered: 4
        })
    );
}

/// A chunk far longer than the decoder scans ahead of the reader (a
/// megabyte of PUBLISH or 120 KB of PUBACK, then a bad header): every
/// packet before the bad one
/// still comes out, in order, and the bad header gets the error and offset
/// it gets inside the scanned window, whether it lies inside or past it.
#[test]
fn a_bad_header_past_the_scan_window_gets_the_same_error() {
    let mut one = BytesMut::new();
    let mut p = codec::Publish::new(
        codec::MqttString::new("sensors/7").unwrap(),
        Bytes::from(vec![b'x'; 1000]),
    );
    p.qos = codec::QoS::AtLeastOnce;
    p.packet_id = 7;
    codec::encode(&Packet::Publish(p), Version::V311, &mut one).unwrap();
    // PUBACKs are decoded in place, PUBLISH cut: both ways past the window.
    let mut puback = BytesMut::new();
    codec::encode(
        &Packet::Puback(codec::PubResponse::new(7)),
        Version::V311,
        &mut puback,
    )
    .unwrap();
    for (one, frames) in [(&one, 3), (&one, 1000), (&puback, 30_000)] {
        let good = one.repeat(frames);
        let max = 4096;
        // An oversize PUBLISH header, and a Remaining Length of five bytes.
        let cases = [
            (
                &[0x30, 0xff, 0x7f][..],
                codec::CodecError::PacketTooLarge {
                    offset: good.len(),
                    size: 3 + 0x3fff,
                    max,
                },
            ),
            (
                &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01][..],
                codec::CodecError::VarIntTooLong {
                    offset: good.len() + 1,
                    what: "remaining length",
                },
            ),
        ];
        for (bad, error) in cases {
            let mut d = FrameDecoder::new(Some(Version::V311), max);
            d.extend(&[&good[..], bad].concat());
            for i in 0..frames {
                assert!(matches!(d.next_packet(), Ok(Some(_))), "{frames}: {i}");
            }
            assert_eq!(d.next_packet(), Err(error.clone()), "{frames}");
            assert_eq!(
                d.next_packet(),
                Err(error),
                "{frames}: the stream stays dead"
            );
        }
    }
}

/// A PUBLISH decoded in the stream, where its topic check reads on into
/// the next frame, against the same frame decoded alone: every topic of up
/// to 72 bytes with a NUL, a wildcard, a stray or cut multi-byte character
/// at its end, followed by a frame whose first bytes would complete or
/// hide the flaw, gives the same packet or the same error.
#[test]
fn a_publish_topic_is_judged_by_its_own_bytes_only() {
    let mut topics: Vec<Vec<u8>> = Vec::new();
    for len in 1..=72usize {
        let plain: Vec<u8> = (0..len).map(|i| b"ab/c"[i % 4]).collect();
        topics.push(plain.clone());
        for last in [
            &[0u8][..],
            b"+",
            b"#",
            b"\xc3",
            b"\xe6\x97",
            b"\xf0\x9f\x9a",
            b"\xa9",
        ] {
            let mut t = plain.clone();
            t.truncate(len.saturating_sub(last.len()));
            t.extend_from_slice(last);
            topics.push(t);
        }
    }
    // What follows: continuation bytes that would finish a cut character,
    // a NUL, and an ordinary PINGREQ.
    let nexts: [&[u8]; 3] = [b"\xa9\xa9\xa9\xa9\x00", b"\x00\x00", b"\xc0\x00"];
    for v in [Version::V311, Version::V5] {
        for qos in 0..3u8 {
            for topic in &topics {
                let mut frame = vec![0x30 | (qos << 1), 0];
                frame.extend_from_slice(&(topic.len() as u16).to_be_bytes());
                frame.extend_from_slice(topic);
                if qos != 0 {
                    frame.extend_from_slice(&[0, 7]);
                }
                if v == Version::V5 {
                    frame.push(0);
                }
                frame[1] = (frame.len() - 2) as u8;
                let alone = codec::decode(&Bytes::from(frame.clone()), v);
                for next in nexts {
                    let mut wire = frame.clone();
                    wire.extend_from_slice(next);
                    wire.extend_from_slice(&[0u8; 80]);
                    let mut d = FrameDecoder::new(Some(v), 1 << 20);
                    d.extend(&wire);
                    let got = d.next_packet().map(|p| p.expect("a whole frame"));
                    assert_eq!(got, alone, "{v} {}", hex::encode(&wire));
                }
            }
        }
    }
}
