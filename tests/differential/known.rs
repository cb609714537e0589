//! The known disagreements between our codec and rumqttc 0.25's, each with
//! the clause of the specification that decides it and an input that shows
//! it (`tests/codec_differential.rs` checks that every example is explained
//! by its own entry and by no earlier one).
//!
//! In every entry the specification sides with ours: where it sided with
//! rumqttc, ours was fixed instead. Clauses are MQTT 3.1.1 / 5.0 statement
//! numbers, or sections (§) where the rule carries no number. Most entries
//! are a rule rumqttc does not check; the predicates match on our error
//! (which names the rule) and on the bytes of the frame, so that a wrong
//! error of ours is not explained away.

use super::{Case, Step, TheirError, Theirs, fields};
use mqtls_harness::codec::{
    self, CodecError as E, Packet, PacketType, Version, parse_fixed_header,
};
use rumqttc::mqttbytes::Error as E4;
use rumqttc::mqttbytes::v4 as r4;
use rumqttc::v5::mqttbytes::Error as E5;

/// One known disagreement.
#[derive(Debug)]
pub struct Known {
    /// A short name.
    pub name: &'static str,
    /// The clause that decides it, and why ours is right.
    pub clause: &'static str,
    /// An input that shows it, and the version to decode it as.
    pub example: (Version, &'static str),
    /// True if this entry explains the case.
    pub applies: fn(&Case<'_>) -> bool,
}

/// True if ours rejected with an error `is` accepts and rumqttc decoded a
/// packet (most entries: a rule rumqttc does not check).
fn ours_only(c: &Case<'_>, is: impl Fn(&E) -> bool) -> bool {
    c.theirs_accepts() && c.ours_error().is_some_and(is)
}

/// Ours found bytes after the packet's last field, and the frame without
/// them decodes (by ours) to exactly what rumqttc read from it: rumqttc
/// stopped after the same fields and ignored the rest.
fn without_the_extra_bytes_ours_reads_what_rumqttc_read(c: &Case<'_>) -> bool {
    let (Some(E::TrailingBytes { offset, .. }), Step::Packet(theirs)) = (c.ours_error(), c.theirs)
    else {
        return false;
    };
    let Ok(Some(h)) = parse_fixed_header(c.frame) else {
        return false;
    };
    let Some(body) = c.frame.get(h.header_len..offset - c.offset) else {
        return false;
    };
    let mut cut = vec![h.byte1];
    let mut rl = body.len();
    loop {
        let b = (rl % 128) as u8;
        rl /= 128;
        cut.push(if rl > 0 { b | 0x80 } else { b });
        if rl == 0 {
            break;
        }
    }
    cut.extend_from_slice(body);
    codec::decode(&cut.into(), c.version)
        .is_ok_and(|p| fields::ours(&p, c.version) == super::theirs_fields(theirs))
}

/// The fixed-header flags a packet type must carry (PUBLISH: its own).
fn required_flags(type_nibble: u8) -> Option<u8> {
    match type_nibble {
        3 => None,
        6 | 8 | 10 => Some(0b0010),
        _ => Some(0),
    }
}

/// How to walk a property block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// As the specification says: within the Property Length.
    Spec,
    /// As rumqttc 0.25 does: a running count of the bytes read compared
    /// with the Property Length, reading from the rest of the frame, each
    /// Subscription Identifier counted as 1 + 1 + its length.
    Rumqttc,
    /// As rumqttc, with that count right.
    RumqttcCountingRight,
}

fn be16(frame: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *frame.get(at)?,
        *frame.get(at + 1)?,
    ])))
}

/// A Variable Byte Integer of up to 4 bytes in any form: (value, length).
fn varint(frame: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..4 {
        let b = *frame.get(at + i)?;
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Where the property block at `start` ends when walked `how`, or `None`
/// if the walk fails (a value past the end, an unknown identifier).
fn walk(frame: &[u8], start: usize, how: Walk) -> Option<usize> {
    let (len, n) = varint(frame, start)?;
    let mut pos = start + n;
    let end = pos + len;
    let limit = if how == Walk::Spec { end } else { frame.len() };
    let mut count = 0;
    while count < len {
        let id = *frame.get(pos)?;
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => 1,
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => {
                2 + be16(frame, pos + 1)?
            }
            0x26 => {
                let name = 2 + be16(frame, pos + 1)?;
                name + 2 + be16(frame, pos + 1 + name)?
            }
            0x0b => varint(frame, pos + 1)?.1,
            _ => return None,
        };
        pos += 1 + value;
        if pos > limit {
            return None;
        }
        count += 1 + value + usize::from(id == 0x0b && how == Walk::Rumqttc);
    }
    match how {
        Walk::Spec if pos != end => None,
        _ => Some(pos),
    }
}

/// Where the property blocks of a 5.0 frame start, as far as the fields
/// before them can be read.
fn property_blocks(frame: &[u8]) -> Vec<usize> {
    let mut blocks = first_property_block(frame);
    // CONNECT's Will Properties follow the Client Identifier.
    if let (Some(&start), Some(b'\x01')) = (blocks.first(), frame.first().map(|b| b >> 4)) {
        let will_flag = frame.get(start - 3).is_some_and(|f| f & 0x04 != 0);
        let will = varint(frame, start)
            .map(|(len, n)| start + n + len)
            .and_then(|id| be16(frame, id).map(|l| id + 2 + l))
            .filter(|w| will_flag && *w < frame.len());
        blocks.extend(will);
    }
    blocks
}

fn first_property_block(frame: &[u8]) -> Vec<usize> {
    let Some((rl, n)) = varint(frame, 1) else {
        return Vec::new();
    };
    let body = 1 + n;
    let first = frame.first().copied().unwrap_or(0);
    let start = match first >> 4 {
        1 => Some(body + 10),
        3 => {
            let id = if first & 0x06 != 0 { 2 } else { 0 };
            be16(frame, body).map(|t| body + 2 + t + id)
        }
        2 | 8 | 9 | 10 | 11 => Some(body + 2),
        4..=7 if rl >= 4 => Some(body + 3),
        14 if rl >= 2 => Some(body + 1),
        _ => None,
    };
    start.into_iter().filter(|s| *s < frame.len()).collect()
}

/// The table. Order matters only for the examples' "no earlier entry"
/// check; every predicate is specific enough to be read alone.
pub static KNOWN: &[Known] = &[
    Known {
        name: "fixed-header flags",
        clause: "MQTT-2.2.2-2 (3.1.1) / MQTT-2.1.3-1 (5.0) and the per-type MQTT-3.6.1-1, 3.8.1-1, 3.10.1-1, 3.14.1-1: invalid fixed-header flags close the connection; rumqttc reads the type nibble only (its 5.0 DISCONNECT excepted)",
        example: (Version::V311, "c1 00"),
        applies: |c| {
            ours_only(c, |e| matches!(e, E::InvalidHeaderFlags { .. }))
                && required_flags(c.type_nibble())
                    .is_some_and(|r| c.frame.first().is_some_and(|b| b & 0x0f != r))
        },
    },
    Known {
        name: "bytes after the last field",
        clause: "3.1.1 §2.2.3 / 5.0 §2.1.4: the Remaining Length counts the packet's own fields, and 3.1.1 fixes it (2 for CONNACK and the acknowledgements, §3.2.1, §3.4.1-3.7.1, §3.11.1; 0 for PINGREQ, PINGRESP, DISCONNECT, §3.12.1-3.14.1); a packet with more cannot be parsed as specified (5.0 §1.2 Malformed Packet). rumqttc stops reading after the fields it knows",
        example: (Version::V311, "c0 01 00"),
        applies: without_the_extra_bytes_ours_reads_what_rumqttc_read,
    },
    Known {
        name: "DUP on QoS 0",
        clause: "MQTT-3.3.1-2: the DUP flag MUST be 0 for QoS 0 messages; rumqttc does not check",
        example: (Version::V311, "38 03 00 01 61"),
        applies: |c| {
            ours_only(c, |e| matches!(e, E::DupOnQos0 { .. }))
                && c.frame.first().is_some_and(|b| b & 0x0e == 0x08)
        },
    },
    Known {
        name: "packet identifier 0 in SUBSCRIBE or UNSUBSCRIBE",
        clause: "MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0): SUBSCRIBE and UNSUBSCRIBE carry a non-zero Packet Identifier; rumqttc checks it only in PUBLISH",
        example: (Version::V311, "82 06 00 00 00 01 61 00"),
        applies: |c| {
            ours_only(c, |e| {
                matches!(
                    e,
                    E::ZeroPacketId {
                        packet_type: PacketType::Subscribe | PacketType::Unsubscribe,
                        ..
                    }
                )
            })
        },
    },
    Known {
        name: "packet identifier 0 in an acknowledgement",
        clause: "MQTT-2.3.1-6, 2.3.1-7 (3.1.1) / MQTT-2.2.1-5, 2.2.1-6 (5.0): an acknowledgement carries the identifier of the packet it answers, which is never 0 (MQTT-2.3.1-1 / 2.2.1-3), so an identifier of 0 answers nothing; rumqttc does not check",
        example: (Version::V311, "40 02 00 00"),
        applies: |c| {
            ours_only(c, |e| {
                matches!(
                    e,
                    E::ZeroPacketId {
                        packet_type: PacketType::Puback
                            | PacketType::Pubrec
                            | PacketType::Pubrel
                            | PacketType::Pubcomp
                            | PacketType::Suback
                            | PacketType::Unsuback,
                        ..
                    }
                )
            })
        },
    },
    Known {
        name: "reserved bits",
        clause: "MQTT-3.1.2-3 (CONNECT flags bit 0), 3.1.1 §3.2.2.1 / MQTT-3.2.2-1 (CONNACK flags bits 7-1), MQTT-3.8.3-4 (3.1.1) / MQTT-3.8.3-5 (5.0) (subscription options): reserved bits are 0; rumqttc masks them off",
        example: (Version::V311, "82 06 00 01 00 01 61 04"),
        applies: |c| ours_only(c, |e| matches!(e, E::ReservedBitSet { .. })),
    },
    Known {
        name: "invalid topic name",
        clause: "MQTT-3.3.2-2 and MQTT-4.7.0-1 (no wildcards in a Topic Name or Will Topic), MQTT-3.3.2-14 (nor in a Response Topic), MQTT-4.7.3-1 (at least one character, 5.0 excepting a Topic Alias): rumqttc checks none of these when decoding",
        example: (Version::V311, "30 05 00 03 61 2f 2b"),
        applies: |c| ours_only(c, |e| matches!(e, E::InvalidTopicName { .. })),
    },
    Known {
        name: "invalid topic filter",
        clause: "MQTT-4.7.1-2, 4.7.1-3 (3.1.1) / MQTT-4.7.1-1, 4.7.1-2 (5.0) (wildcard placement), MQTT-4.7.3-1 (non-empty), MQTT-4.8.2-1, 4.8.2-2 (shared subscriptions): rumqttc does not check filters when decoding",
        example: (Version::V311, "82 0a 00 01 00 05 61 2f 23 2f 62 00"),
        applies: |c| ours_only(c, |e| matches!(e, E::InvalidTopicFilter { .. })),
    },
    Known {
        name: "U+0000 in a string",
        clause: "MQTT-1.5.3-2 (3.1.1) / MQTT-1.5.4-2 (5.0): a UTF-8 Encoded String MUST NOT include U+0000, and the receiver closes the connection; rumqttc's strings are any Rust String",
        example: (Version::V311, "30 04 00 02 61 00"),
        applies: |c| ours_only(c, |e| matches!(e, E::NullCharacter { .. })) && c.frame.contains(&0),
    },
    Known {
        name: "ill-formed UTF-8 in a 5.0 topic name or Will Topic",
        clause: "MQTT-3.3.2-1, MQTT-3.1.3-11 and MQTT-1.5.4-1 (5.0): the Topic Name and the Will Topic are UTF-8 Encoded Strings, well-formed; rumqttc's 5.0 PUBLISH and Will keep their topic as raw bytes",
        example: (Version::V5, "30 06 00 03 ed a0 80 00"),
        applies: |c| {
            c.version == Version::V5
                && ours_only(c, |e| {
                    matches!(
                        e,
                        E::InvalidUtf8 {
                            what: "topic name" | "will topic",
                            ..
                        }
                    )
                })
        },
    },
    Known {
        name: "UNSUBSCRIBE without topic filters",
        clause: "MQTT-3.10.3-2: the UNSUBSCRIBE payload contains at least one Topic Filter (an UNSUBSCRIBE without one is a protocol violation); rumqttc accepts an empty list",
        example: (Version::V311, "a2 02 00 01"),
        applies: |c| {
            ours_only(c, |e| {
                matches!(
                    e,
                    E::EmptyPayload {
                        packet_type: PacketType::Unsubscribe,
                        ..
                    }
                )
            })
        },
    },
    Known {
        name: "property value out of range",
        clause: "5.0 §2.2.2.2 and each property's section (e.g. §3.3.2.3.2 Payload Format Indicator 0 or 1, MQTT-3.3.2-8 Topic Alias not 0, §3.1.2.11.3 Receive Maximum not 0, §3.8.2.1.2 Subscription Identifier 1 to 268 435 455): a value outside the range is a Protocol Error; rumqttc stores any value",
        example: (Version::V5, "30 06 00 01 61 02 01 02"),
        applies: |c| ours_only(c, |e| matches!(e, E::InvalidPropertyValue { .. })),
    },
    Known {
        name: "property given twice",
        clause: "5.0 §2.2.2.2 and each property's section: \"It is a Protocol Error to include the <property> more than once\" (User Property and PUBLISH's Subscription Identifier excepted); rumqttc keeps the last",
        example: (Version::V5, "30 08 00 01 61 04 01 00 01 01"),
        applies: |c| ours_only(c, |e| matches!(e, E::DuplicateProperty { .. })),
    },
    Known {
        name: "Authentication Data without Authentication Method",
        clause: "5.0 §3.1.2.11.10 (CONNECT) and §3.2.2.3.18 (CONNACK): it is a Protocol Error to include Authentication Data if there is no Authentication Method; rumqttc does not check",
        example: (
            Version::V5,
            "10 12 00 04 4d 51 54 54 05 02 00 3c 04 16 00 01 78 00 01 61",
        ),
        applies: |c| ours_only(c, |e| matches!(e, E::AuthDataWithoutMethod { .. })),
    },
    Known {
        name: "3.1.1 password without user name",
        clause: "MQTT-3.1.2-22 (3.1.1): if the User Name Flag is 0 the Password Flag MUST be 0; rumqttc does not check",
        example: (
            Version::V311,
            "10 0f 00 04 4d 51 54 54 04 42 00 3c 00 01 61 00 00",
        ),
        applies: |c| {
            c.version == Version::V311
                && ours_only(c, |e| matches!(e, E::PasswordWithoutUsername { .. }))
        },
    },
    Known {
        name: "Session Present on a refused connection",
        clause: "MQTT-3.2.2-4 (3.1.1) / MQTT-3.2.2-6 (5.0): a CONNACK with a non-zero return code / a reason of 0x80 or more has Session Present 0; rumqttc does not check",
        example: (Version::V311, "20 02 01 05"),
        applies: |c| ours_only(c, |e| matches!(e, E::SessionPresentOnFailure { .. })),
    },
    Known {
        name: "No Local on a shared subscription",
        clause: "MQTT-3.8.3-4 (5.0): it is a Protocol Error to set No Local on a Shared Subscription; rumqttc does not check",
        example: (
            Version::V5,
            "82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 61 04",
        ),
        applies: |c| ours_only(c, |e| matches!(e, E::NoLocalOnSharedSubscription { .. })),
    },
    Known {
        name: "5.0 Variable Byte Integer not minimal",
        clause: "MQTT-1.5.5-1 (5.0): a Variable Byte Integer uses the minimum number of bytes (Remaining Length, Property Length, Subscription Identifier); rumqttc reads any form",
        example: (Version::V5, "c0 80 00"),
        applies: |c| {
            c.version == Version::V5 && ours_only(c, |e| matches!(e, E::VarIntNotMinimal { .. }))
        },
    },
    Known {
        name: "Subscription Identifier counted one byte long",
        clause: "5.0 §2.2.2.1: the Property Length is the length of the Properties, and §3.3.2.3.8 / §3.8.2.1.2: a Subscription Identifier is its identifier byte and a Variable Byte Integer; rumqttc counts the identifier byte twice, so when a single byte of the block follows a Subscription Identifier it stops there and takes that byte for payload or filters, where it is a (bad) property",
        example: (Version::V5, "30 08 00 01 61 03 0b 01 55 78"),
        applies: |c| {
            c.version == Version::V5
                && property_blocks(c.frame).iter().any(|&start| {
                    let spec = walk(c.frame, start, Walk::Spec);
                    walk(c.frame, start, Walk::Rumqttc) != spec
                        && walk(c.frame, start, Walk::RumqttcCountingRight) == spec
                })
        },
    },
    Known {
        name: "property read past the Property Length",
        clause: "5.0 §2.2.2.1: the Property Length is the length of the Properties, so a property that does not fit in it makes the packet malformed; rumqttc reads a value that starts inside the block from past its end, into the fields after it",
        example: (Version::V5, "30 06 00 01 61 01 01 01"),
        applies: |c| {
            c.version == Version::V5
                && property_blocks(c.frame).iter().any(|&start| {
                    let spec = walk(c.frame, start, Walk::Spec);
                    walk(c.frame, start, Walk::RumqttcCountingRight) != spec
                })
        },
    },
    Known {
        name: "level-5 CONNECT in a 3.1.1 stream",
        clause: "MQTT-3.1.2-2 (3.1.1): the protocol level of 3.1.1 is 4, and a server refuses another level (CONNACK 0x01); rumqttc's 3.1.1 codec reads a level-5 CONNECT by 3.1.1 rules and returns it",
        example: (
            Version::V311,
            "10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 61",
        ),
        applies: |c| {
            c.version == Version::V311
                && matches!(
                    c.ours_error(),
                    Some(E::VersionMismatch {
                        found: Version::V5,
                        ..
                    })
                )
                && matches!(
                    c.theirs,
                    Step::Packet(Theirs::V4(r4::Packet::Connect(r4::Connect {
                        protocol: rumqttc::mqttbytes::Protocol::V5,
                        ..
                    })))
                )
        },
    },
    Known {
        name: "AUTH",
        clause: "5.0 §3.15: AUTH (packet type 15) is an MQTT 5 packet; rumqttc 0.25's 5.0 packet reader does not map type 15 (InvalidPacketType)",
        example: (Version::V5, "f0 00"),
        applies: |c| {
            c.version == Version::V5
                && matches!(c.ours_packet(), Some(Packet::Auth(_)))
                && matches!(
                    c.theirs_error(),
                    Some(TheirError::V5(E5::InvalidPacketType(15)))
                )
        },
    },
    Known {
        name: "5.0 DISCONNECT of Remaining Length 0 or 1",
        clause: "5.0 §3.14.2.1: Reason Code and Property Length may be omitted (Remaining Length 0), and §3.14.2.2.1: with a Remaining Length under 2 the Property Length is 0; rumqttc requires both",
        example: (Version::V5, "e0 00"),
        applies: |c| {
            c.version == Version::V5
                && matches!(c.ours_packet(), Some(Packet::Disconnect(_)))
                && c.frame.get(1).is_some_and(|rl| *rl <= 1)
                && matches!(
                    c.theirs_error(),
                    Some(TheirError::V5(
                        E5::PayloadRequired | E5::InsufficientBytes(_)
                    ))
                )
        },
    },
    Known {
        name: "password that is not UTF-8",
        clause: "3.1.1 §3.1.3.5 / 5.0 §3.1.3.5: the Password is Binary Data, not a string; rumqttc decodes it as a UTF-8 string",
        example: (
            Version::V311,
            "10 13 00 04 4d 51 54 54 04 c2 00 3c 00 01 61 00 01 75 00 01 ff",
        ),
        applies: |c| {
            let binary = match c.ours_packet() {
                Some(Packet::Connect(p)) => p
                    .password
                    .as_ref()
                    .is_some_and(|pw| std::str::from_utf8(pw).is_err()),
                _ => false,
            };
            binary
                && matches!(
                    c.theirs_error(),
                    Some(TheirError::V4(E4::TopicNotUtf8) | TheirError::V5(E5::TopicNotUtf8))
                )
        },
    },
];
