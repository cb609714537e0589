//! Differential decoding: our codec against the one inside rumqttc 0.25
//! (`rumqttc::mqttbytes::v4`, `rumqttc::v5::mqttbytes::v5`), an
//! independent implementation, on the same bytes. Shared by
//! `tests/codec_differential.rs` (proptest over valid packets and their
//! mutations, corpus replay) and the `codec_differential` fuzz target,
//! which includes this directory by path.
//!
//! [`check`] decodes one input as a 3.1.1 stream and as a 5.0 stream
//! through both codecs' streaming APIs (ours: [`FrameDecoder`]; theirs:
//! `Packet::read` on a `BytesMut`), frame by frame, and compares what each
//! made of each frame: accept or reject, and for packets both accept every
//! decoded field ([`fields`]). The first disagreement in a stream ends it;
//! it must be one of the [`known::KNOWN`] ones, each of which names the
//! clause of the specification that says who is right. Any other
//! disagreement is returned as a [`Disagreement`]: a new difference fails.

#![allow(dead_code)] // each including crate uses a different part

pub mod fields;
pub mod known;

use bytes::BytesMut;
use mqtls_harness::codec::{CodecError, FrameDecoder, Packet, Version, parse_fixed_header};
use rumqttc::mqttbytes::v4 as r4;
use rumqttc::v5::mqttbytes::v5 as r5;
use std::fmt;

pub use known::{KNOWN, Known};

/// Frames compared per stream at most (inputs are small).
const MAX_FRAMES: usize = 64;

/// What one codec made of the next frame of the stream.
#[derive(Debug)]
pub enum Step<P, E> {
    /// A packet.
    Packet(P),
    /// Not enough bytes for a whole frame (the end of the input).
    NeedMore,
    /// The frame, or its header, is rejected.
    Reject(E),
}

/// A packet decoded by rumqttc.
#[derive(Debug)]
pub enum Theirs {
    /// By the 3.1.1 codec.
    V4(r4::Packet),
    /// By the 5.0 codec (boxed: its CONNECT is large).
    V5(Box<r5::Packet>),
}

/// An error from rumqttc.
#[derive(Debug)]
pub enum TheirError {
    /// From the 3.1.1 codec.
    V4(rumqttc::mqttbytes::Error),
    /// From the 5.0 codec.
    V5(rumqttc::v5::mqttbytes::Error),
}

/// One field that differs: its path and each side's value (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The field path (see [`fields`]).
    pub key: String,
    /// Ours.
    pub ours: Option<String>,
    /// rumqttc's.
    pub theirs: Option<String>,
}

/// One frame on which the codecs disagree, as the allowlist sees it.
pub struct Case<'a> {
    /// The version both decoded as.
    pub version: Version,
    /// The frame's bytes (from its first byte to the end of the input when
    /// the header cannot be parsed).
    pub frame: &'a [u8],
    /// Stream offset of the frame's first byte (our error offsets count
    /// from the start of the stream).
    pub offset: usize,
    /// Ours.
    pub ours: &'a Step<Packet, CodecError>,
    /// rumqttc's.
    pub theirs: &'a Step<Theirs, TheirError>,
    /// The fields that differ, when both accept.
    pub diff: &'a [Diff],
}

impl Case<'_> {
    /// Our error, if ours rejected.
    pub fn ours_error(&self) -> Option<&CodecError> {
        match self.ours {
            Step::Reject(e) => Some(e),
            _ => None,
        }
    }

    /// Our packet, if ours accepted.
    pub fn ours_packet(&self) -> Option<&Packet> {
        match self.ours {
            Step::Packet(p) => Some(p),
            _ => None,
        }
    }

    /// rumqttc's error, if it rejected.
    pub fn theirs_error(&self) -> Option<&TheirError> {
        match self.theirs {
            Step::Reject(e) => Some(e),
            _ => None,
        }
    }

    /// True if rumqttc decoded a packet.
    pub fn theirs_accepts(&self) -> bool {
        matches!(self.theirs, Step::Packet(_))
    }

    /// The packet type nibble of the frame.
    pub fn type_nibble(&self) -> u8 {
        self.frame.first().map_or(0, |b| b >> 4)
    }
}

/// A disagreement that no [`Known`] entry explains.
#[derive(Debug)]
pub struct Disagreement {
    /// The version both decoded as.
    pub version: Version,
    /// Stream offset of the frame.
    pub offset: usize,
    /// The frame's bytes.
    pub frame: Vec<u8>,
    /// What ours made of it.
    pub ours: String,
    /// What rumqttc made of it.
    pub theirs: String,
    /// The differing fields, when both accepted.
    pub diff: Vec<Diff>,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "new codec disagreement with rumqttc (MQTT {}), frame at byte {}: {}",
            self.version,
            self.offset,
            hex::encode(&self.frame)
        )?;
        writeln!(f, "  ours:    {}", self.ours)?;
        writeln!(f, "  rumqttc: {}", self.theirs)?;
        for d in &self.diff {
            writeln!(
                f,
                "  field {}: ours {} / rumqttc {}",
                d.key,
                d.ours.as_deref().unwrap_or("(absent)"),
                d.theirs.as_deref().unwrap_or("(absent)")
            )?;
        }
        write!(
            f,
            "decide which side the specification supports: fix ours, or add the case to tests/differential/known.rs with its clause"
        )
    }
}

/// How a stream compared.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Packets both decoded, field for field the same.
    pub agreed: usize,
    /// How the comparison ended.
    pub end: End,
}

/// Where a compared stream stopped.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// Both need more bytes (the input ends at or inside a frame).
    NeedMore,
    /// Both reject the same frame.
    BothReject,
    /// They disagree, in a known way.
    Known(&'static Known),
    /// [`MAX_FRAMES`] frames compared.
    Limit,
}

impl Outcome {
    /// The known disagreement met, if any.
    pub fn known(&self) -> Option<&'static Known> {
        match self.end {
            End::Known(k) => Some(k),
            _ => None,
        }
    }
}

/// Decodes `input` as a 3.1.1 and as a 5.0 stream through both codecs.
/// Returns how each compared, or the first unexplained disagreement.
pub fn check(input: &[u8]) -> Result<[Outcome; 2], Box<Disagreement>> {
    Ok([compare(input, Version::V311)?, compare(input, Version::V5)?])
}

/// Decodes `input` as a stream of version `v` through both codecs, frame
/// by frame, until both stop or they disagree.
pub fn compare(input: &[u8], v: Version) -> Result<Outcome, Box<Disagreement>> {
    let mut ours = FrameDecoder::new(Some(v), usize::MAX);
    ours.extend(input);
    let mut theirs = BytesMut::from(input);
    let mut at = 0;
    let mut agreed = 0;
    let outcome = |agreed, end| Ok(Outcome { agreed, end });
    for _ in 0..MAX_FRAMES {
        let rest = input.get(at..).unwrap_or_default();
        let frame = match parse_fixed_header(rest) {
            Ok(Some(h)) => rest.get(..h.frame_len()).unwrap_or(rest),
            _ => rest,
        };
        let o = match ours.next_packet() {
            Ok(Some(p)) => Step::Packet(p),
            Ok(None) => Step::NeedMore,
            Err(e) => Step::Reject(e),
        };
        let t = theirs_next(&mut theirs, v);
        let diff = match (&o, &t) {
            (Step::NeedMore, Step::NeedMore) => return outcome(agreed, End::NeedMore),
            (Step::Reject(_), Step::Reject(_)) => return outcome(agreed, End::BothReject),
            (Step::Packet(p), Step::Packet(q)) => {
                let d = diff(&fields::ours(p, v), &theirs_fields(q));
                if d.is_empty() {
                    agreed += 1;
                    at += frame.len();
                    continue;
                }
                d
            }
            _ => Vec::new(),
        };
        let case = Case {
            version: v,
            frame,
            offset: at,
            ours: &o,
            theirs: &t,
            diff: &diff,
        };
        return match explain(&case) {
            Some(k) => outcome(agreed, End::Known(k)),
            None => Err(Box::new(Disagreement {
                version: v,
                offset: at,
                frame: frame.to_vec(),
                ours: format!("{o:?}"),
                theirs: format!("{t:?}"),
                diff,
            })),
        };
    }
    outcome(agreed, End::Limit)
}

/// The first known disagreement that explains `case`.
pub fn explain(case: &Case<'_>) -> Option<&'static Known> {
    KNOWN.iter().find(|k| (k.applies)(case))
}

/// rumqttc's next frame. Its `InsufficientBytes` means "wait" only when it
/// has not taken the frame yet: from inside a frame it already cut off
/// (a field that runs out), it is a rejection.
fn theirs_next(buf: &mut BytesMut, v: Version) -> Step<Theirs, TheirError> {
    let before = buf.len();
    match v {
        Version::V311 => match r4::Packet::read(buf, usize::MAX) {
            Ok(p) => Step::Packet(Theirs::V4(p)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) if buf.len() == before => {
                Step::NeedMore
            }
            Err(e) => Step::Reject(TheirError::V4(e)),
        },
        Version::V5 => match r5::Packet::read(buf, None) {
            Ok(p) => Step::Packet(Theirs::V5(Box::new(p))),
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) if buf.len() == before => {
                Step::NeedMore
            }
            Err(e) => Step::Reject(TheirError::V5(e)),
        },
    }
}

/// rumqttc's packet as [`fields`].
pub fn theirs_fields(t: &Theirs) -> fields::Fields {
    match t {
        Theirs::V4(p) => fields::theirs_v4(p),
        Theirs::V5(p) => fields::theirs_v5(p),
    }
}

fn diff(ours: &fields::Fields, theirs: &fields::Fields) -> Vec<Diff> {
    let mut keys: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| Diff {
            key: k.clone(),
            ours: ours.get(k).cloned(),
            theirs: theirs.get(k).cloned(),
        })
        .collect()
}
