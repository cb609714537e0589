#![cfg(not(feature = "loom"))]
//! A table of malformed inputs, each asserting the exact error: variant,
//! byte offset, and normative statement.

use bytes::Bytes;
use mqtls_harness::codec::{
    self, CodecError as E, FrameDecoder, PacketType as T, PropertyId as P, ReasonCode,
    TopicProblem,
    Version::{V5, V311},
};

fn bytes(hex: &str) -> Bytes {
    Bytes::from(hex::decode(hex.replace(' ', "")).unwrap())
}

/// §3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method".
fn missing_auth_method() -> E {
    E::MissingProperty {
        offset: 3,
        packet_type: T::Auth,
        property: P::AuthenticationMethod,
        clause: "§3.15.2.2.2",
    }
}

/// Decodes `hex` whole and through the frame decoder; both must agree.
fn both_ways(hex: &str, v: codec::Version) -> Result<codec::Packet, E> {
    let whole = codec::decode(&bytes(hex), v);
    let mut d = FrameDecoder::new(Some(v), 1 << 16);
    d.extend(&bytes(hex));
    let streamed = d.next_packet().and_then(|p| {
        d.finish()?;
        p.ok_or(E::IncompletePacket {
            offset: 0,
            buffered: 0,
        })
    });
    assert_eq!(whole, streamed, "{hex}: whole and streamed decodes differ");
    whole
}

#[rustfmt::skip]
fn table() -> Vec<(&'static str, codec::Version, &'static str, E)> {
    vec![
        ("nanonng-1505: second filter claims 100 bytes", V311, "82 0c 00 01 00 02 74 30 00 00 64 78 78 00",
            E::Truncated { offset: 9, what: "topic filter", needed: 100, available: 3 }),
        ("remaining length of 5 bytes", V311, "30 ff ff ff ff 7f",
            E::VarIntTooLong { offset: 1, what: "remaining length" }),
        ("remaining length not minimal", V5, "c0 80 00",
            E::VarIntNotMinimal { offset: 1, what: "remaining length" }),
        ("packet type 0", V311, "00 00", E::ReservedPacketType { offset: 0, type_code: 0, version: V311 }),
        ("AUTH does not exist in 3.1.1", V311, "f0 00", E::ReservedPacketType { offset: 0, type_code: 15, version: V311 }),
        ("SUBSCRIBE flags 0000", V311, "80 06 00 01 00 01 61 00",
            E::InvalidHeaderFlags { offset: 0, packet_type: T::Subscribe, flags: 0, required: 2, spec: "MQTT-3.8.1-1" }),
        ("PUBREL flags 0000", V5, "60 02 00 01",
            E::InvalidHeaderFlags { offset: 0, packet_type: T::Pubrel, flags: 0, required: 2, spec: "MQTT-3.6.1-1" }),
        ("PINGREQ flags 0001 (3.1.1)", V311, "c1 00",
            E::InvalidHeaderFlags { offset: 0, packet_type: T::Pingreq, flags: 1, required: 0, spec: "MQTT-2.2.2-1" }),
        ("PINGREQ flags 0001 (5.0)", V5, "c1 00",
            E::InvalidHeaderFlags { offset: 0, packet_type: T::Pingreq, flags: 1, required: 0, spec: "MQTT-2.1.3-1" }),
        ("DISCONNECT flags 0001", V5, "e1 00",
            E::InvalidHeaderFlags { offset: 0, packet_type: T::Disconnect, flags: 1, required: 0, spec: "MQTT-3.14.1-1" }),
        ("PUBLISH QoS 3", V311, "36 05 00 01 61 00 01",
            E::InvalidQos { offset: 0, what: "PUBLISH QoS", spec: Some("MQTT-3.3.1-4") }),
        ("PUBLISH DUP with QoS 0", V311, "38 03 00 01 61", E::DupOnQos0 { offset: 0 }),
        ("PUBLISH QoS 1 packet id 0", V311, "32 05 00 01 61 00 00",
            E::ZeroPacketId { offset: 5, packet_type: T::Publish, spec: Some("MQTT-2.3.1-1") }),
        ("PUBLISH QoS 1 packet id 0 (5.0)", V5, "32 06 00 01 61 00 00 00",
            E::ZeroPacketId { offset: 5, packet_type: T::Publish, spec: Some("MQTT-2.2.1-3") }),
        ("wildcard in topic name", V311, "30 05 00 03 61 2f 2b",
            E::InvalidTopicName { offset: 4, problem: TopicProblem::Wildcard, spec: "MQTT-3.3.2-2" }),
        ("U+0000 in topic name", V311, "30 04 00 02 61 00",
            E::NullCharacter { offset: 5, what: "topic name", spec: "MQTT-1.5.3-2" }),
        // The string rules are checked before the topic rules, whichever comes first.
        ("U+0000 after a wildcard in topic name", V311, "30 06 00 04 2b 61 00 62",
            E::NullCharacter { offset: 6, what: "topic name", spec: "MQTT-1.5.3-2" }),
        ("ill-formed UTF-8 after a wildcard in topic name", V311, "30 05 00 03 23 61 ff",
            E::InvalidUtf8 { offset: 6, what: "topic name", spec: "MQTT-1.5.3-1" }),
        ("wildcard after non-ASCII in topic name", V311, "30 06 00 04 c3 a9 2f 23",
            E::InvalidTopicName { offset: 4, problem: TopicProblem::Wildcard, spec: "MQTT-3.3.2-2" }),
        ("UTF-16 surrogate in topic name (5.0)", V5, "30 06 00 03 ed a0 80 00",
            E::InvalidUtf8 { offset: 4, what: "topic name", spec: "MQTT-1.5.4-1" }),
        ("empty topic name", V311, "30 02 00 00",
            E::InvalidTopicName { offset: 4, problem: TopicProblem::Empty, spec: "MQTT-4.7.3-1" }),
        ("empty topic name without topic alias (5.0)", V5, "30 03 00 00 00",
            E::InvalidTopicName { offset: 4, problem: TopicProblem::Empty, spec: "MQTT-4.7.3-1" }),
        ("'#' not last", V311, "82 0a 00 01 00 05 61 2f 23 2f 62 00",
            E::InvalidTopicFilter { offset: 6, problem: TopicProblem::MisplacedHash, spec: "MQTT-4.7.1-2" }),
        ("'+' sharing a level", V5, "82 08 00 01 00 00 02 61 2b 00",
            E::InvalidTopicFilter { offset: 7, problem: TopicProblem::PartialPlus, spec: "MQTT-4.7.1-2" }),
        ("SUBSCRIBE without filters", V311, "82 02 00 01",
            E::EmptyPayload { offset: 4, packet_type: T::Subscribe, spec: Some("MQTT-3.8.3-3") }),
        ("SUBSCRIBE without filters (5.0)", V5, "82 03 00 01 00",
            E::EmptyPayload { offset: 5, packet_type: T::Subscribe, spec: Some("MQTT-3.8.3-2") }),
        ("SUBSCRIBE packet id 0", V311, "82 06 00 00 00 01 61 00",
            E::ZeroPacketId { offset: 2, packet_type: T::Subscribe, spec: Some("MQTT-2.3.1-1") }),
        ("subscription options reserved bit (3.1.1)", V311, "82 06 00 01 00 01 61 04",
            E::ReservedBitSet { offset: 7, what: "subscription options", spec: Some("MQTT-3.8.3-4") }),
        ("subscription options reserved bit (5.0)", V5, "82 07 00 01 00 00 01 61 40",
            E::ReservedBitSet { offset: 8, what: "subscription options", spec: Some("MQTT-3.8.3-5") }),
        ("requested QoS 3", V311, "82 06 00 01 00 01 61 03",
            E::InvalidQos { offset: 7, what: "requested QoS", spec: Some("MQTT-3.8.3-4") }),
        ("Retain Handling 3", V5, "82 07 00 01 00 00 01 61 30", E::InvalidRetainHandling { offset: 8 }),
        ("No Local on a shared subscription", V5, "82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 61 04",
            E::NoLocalOnSharedSubscription { offset: 17 }),
        ("shared subscription without filter", V5, "82 0f 00 01 00 00 09 24 73 68 61 72 65 2f 67 2f 00",
            E::InvalidTopicFilter { offset: 7, problem: TopicProblem::SharedWithoutFilter, spec: "MQTT-4.8.2-2" }),
        ("duplicate Payload Format Indicator", V5, "30 08 00 01 61 04 01 00 01 01",
            E::DuplicateProperty { offset: 8, property: P::PayloadFormatIndicator }),
        ("Session Expiry Interval in PUBLISH", V5, "30 09 00 01 61 05 11 00 00 00 01",
            E::PropertyNotAllowed { offset: 6, property: P::SessionExpiryInterval, packet_type: T::Publish }),
        ("unknown property 0x7f", V5, "30 06 00 01 61 02 7f 00", E::UnknownProperty { offset: 6, id: 0x7f }),
        ("Topic Alias 0", V5, "30 07 00 01 61 03 23 00 00",
            E::InvalidPropertyValue { offset: 7, property: P::TopicAlias, value: 0, expected: "a non-zero value" }),
        ("Payload Format Indicator 2", V5, "30 06 00 01 61 02 01 02",
            E::InvalidPropertyValue { offset: 7, property: P::PayloadFormatIndicator, value: 2, expected: "0 or 1" }),
        ("property length past the end", V5, "30 05 00 01 61 05 01",
            E::Truncated { offset: 6, what: "properties", needed: 5, available: 1 }),
        ("property identifier not minimal", V5, "30 07 00 01 61 03 81 00 00",
            E::VarIntNotMinimal { offset: 6, what: "property identifier" }),
        ("Subscription Identifier 0", V5, "82 09 00 01 02 0b 00 00 01 61 00",
            E::InvalidPropertyValue { offset: 6, property: P::SubscriptionIdentifier, value: 0, expected: "1 to 268435455" }),
        ("CONNECT reserved flag", V311, "10 0d 00 04 4d 51 54 54 04 03 00 3c 00 01 61",
            E::ReservedBitSet { offset: 9, what: "CONNECT flags", spec: Some("MQTT-3.1.2-3") }),
        ("CONNECT protocol name MQIsdp", V311, "10 0f 00 06 4d 51 49 73 64 70 03 02 00 3c 00 01 61",
            E::InvalidProtocolName { offset: 2 }),
        ("CONNECT Will QoS without Will Flag", V311, "10 0d 00 04 4d 51 54 54 04 0a 00 3c 00 01 61",
            E::WillFlagsWithoutWill { offset: 9, what: "Will QoS", spec: "MQTT-3.1.2-13" }),
        ("CONNECT Will Retain without Will Flag (5.0)", V5, "10 0e 00 04 4d 51 54 54 05 22 00 3c 00 00 01 61",
            E::WillFlagsWithoutWill { offset: 9, what: "Will Retain", spec: "MQTT-3.1.2-13" }),
        ("CONNECT Will QoS 3", V311, "10 0d 00 04 4d 51 54 54 04 1e 00 3c 00 01 61",
            E::InvalidQos { offset: 9, what: "Will QoS", spec: Some("MQTT-3.1.2-14") }),
        ("CONNECT password without user name", V311, "10 0d 00 04 4d 51 54 54 04 42 00 3c 00 01 61",
            E::PasswordWithoutUsername { offset: 9 }),
        ("CONNECT of 5.0 decoded as 3.1.1", V311, "10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 61",
            E::VersionMismatch { offset: 8, expected: V311, found: V5 }),
        ("CONNACK return code 6", V311, "20 02 00 06",
            E::InvalidReasonCode { offset: 3, packet_type: T::Connack, code: 6, version: V311 }),
        ("CONNACK session present on refusal", V311, "20 02 01 05",
            E::SessionPresentOnFailure { offset: 2, spec: "MQTT-3.2.2-4" }),
        ("CONNACK reserved flag (5.0)", V5, "20 03 02 00 00",
            E::ReservedBitSet { offset: 2, what: "CONNACK acknowledge flags", spec: Some("MQTT-3.2.2-1") }),
        ("PINGREQ with a body", V311, "c0 01 00", E::TrailingBytes { offset: 2, packet_type: T::Pingreq, extra: 1 }),
        ("3.1.1 PUBACK with a reason code", V311, "40 03 00 01 00",
            E::TrailingBytes { offset: 4, packet_type: T::Puback, extra: 1 }),
        ("PUBACK with a PUBREL reason code", V5, "40 03 00 01 92",
            E::InvalidReasonCode { offset: 4, packet_type: T::Puback, code: 0x92, version: V5 }),
        ("SUBACK code 0x03 (3.1.1)", V311, "90 03 00 01 03",
            E::InvalidReasonCode { offset: 4, packet_type: T::Suback, code: 3, version: V311 }),
        ("UNSUBSCRIBE without filters", V311, "a2 02 00 01",
            E::EmptyPayload { offset: 4, packet_type: T::Unsubscribe, spec: Some("MQTT-3.10.3-2") }),
        ("AUTH data without method", V5, "f0 05 18 03 16 00 00", missing_auth_method()),
        ("packet shorter than its remaining length", V311, "30 05 00 01",
            E::Truncated { offset: 2, what: "packet body", needed: 5, available: 2 }),
    ]
}

#[test]
fn every_malformed_input_gets_its_error() {
    let mut failures = Vec::new();
    for (name, version, hex, expected) in table() {
        let got = codec::decode(&bytes(hex), version);
        if got.as_ref() != Err(&expected) {
            failures.push(format!("{name}: expected {expected:?}\n    got {got:?}"));
        }
        // The frame decoder reports the same error at the same place.
        let mut d = FrameDecoder::new(Some(version), 1 << 16);
        d.extend(&bytes(hex));
        let streamed = d.next_packet().and_then(|p| d.finish().map(|_| p));
        if expected.offset() > 1
            && matches!(
                expected,
                E::Truncated {
                    what: "packet body",
                    ..
                }
            )
        {
            continue;
        }
        if streamed.as_ref() != Err(&expected) {
            failures.push(format!(
                "{name} (streamed): expected {expected:?}\n    got {streamed:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nanonng_1505_is_located_and_named() {
    let e = codec::decode(&bytes("82 0c 00 01 00 02 74 30 00 00 64 78 78 00"), V311).unwrap_err();
    assert_eq!(e.offset(), 9);
    assert_eq!(e.reason_code(), ReasonCode::MalformedPacket);
    assert!(
        e.to_string().contains("topic filter needs 100 bytes"),
        "{e}"
    );
}

#[test]
fn spec_ids_and_reason_codes() {
    let e = codec::decode(&bytes("82 03 00 01 00"), V5).unwrap_err();
    assert_eq!(e.spec(), Some("MQTT-3.8.3-2"));
    assert_eq!(e.reason_code(), ReasonCode::ProtocolError);
    let e = codec::decode(&bytes("30 05 00 03 61 2f 2b"), V311).unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::TopicNameInvalid);
    let e = codec::decode(&bytes("c0 80 00"), V5).unwrap_err();
    assert_eq!(e.spec(), Some("MQTT-1.5.5-1"));
    assert_eq!(e.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn connect_version_rules() {
    let v3 = bytes("10 0f 00 04 4d 51 54 54 03 02 00 3c 00 03 61 62 63");
    assert_eq!(
        codec::decode_connect(&v3),
        Err(E::UnsupportedProtocolVersion {
            offset: 8,
            level: 3
        })
    );
    assert_eq!(
        codec::decode_connect(&bytes("c0 00")),
        Err(E::ExpectedConnect {
            offset: 0,
            packet_type: T::Pingreq
        })
    );
    let mut d = FrameDecoder::new(None, 1024);
    d.extend(&bytes("c0 00"));
    assert_eq!(
        d.next_packet(),
        Err(E::ExpectedConnect {
            offset: 0,
            packet_type: T::Pingreq
        })
    );
}

#[test]
fn oversize_packet_is_rejected_from_its_header() {
    let mut d = FrameDecoder::new(Some(V311), 16);
    // A PINGREQ, then the header of a 132-byte PUBLISH: its body never arrives.
    d.extend(&bytes("c0 00 30 82 01"));
    assert_eq!(d.buffered(), 2, "nothing of the oversize packet is kept");
    assert_eq!(d.next_packet(), Ok(Some(codec::Packet::Pingreq)));
    let e = E::PacketTooLarge {
        offset: 2,
        size: 133,
        max: 16,
    };
    assert_eq!(d.next_packet(), Err(e.clone()));
    assert_eq!(e.reason_code(), ReasonCode::PacketTooLarge);
    d.extend(&[0u8; 200]);
    assert_eq!(d.buffered(), 0);
    assert_eq!(d.next_packet(), Err(e), "the stream stays dead");
}

#[test]
fn encoding_invalid_packets_fails_without_writing() {
    use codec::{MqttString, Packet, Publish, QoS};
    let mut out = bytes::BytesMut::new();
    let mut p = Publish::new(MqttString::new("a/+").unwrap(), Bytes::from_static(b"x"));
    assert!(matches!(
        codec::encode(&Packet::Publish(p.clone()), V311, &mut out),
        Err(E::InvalidTopicName {
            problem: TopicProblem::Wildcard,
            ..
        })
    ));
    p.topic = MqttString::new("a").unwrap();
    p.qos = QoS::AtLeastOnce;
    assert!(matches!(
        codec::encode(&Packet::Publish(p.clone()), V311, &mut out),
        Err(E::InvalidField { .. })
    ));
    p.packet_id = 7;
    p.properties.topic_alias = Some(3);
    assert!(matches!(
        codec::encode(&Packet::Publish(p), V311, &mut out),
        Err(E::NotInVersion { .. })
    ));
    let auth = Packet::Auth(codec::Auth {
        reason: ReasonCode::Success,
        properties: Default::default(),
    });
    assert!(matches!(
        codec::encode(&auth, V311, &mut out),
        Err(E::NotInVersion { .. })
    ));
    assert!(out.is_empty());
    assert!(MqttString::new("a\0b").is_err());
}

/// §3.15.2.2.2 makes omitting the Authentication Method a Protocol Error;
/// only the bare AUTH of Remaining Length 0 (§3.15.2.1) goes without it.
#[test]
fn auth_without_authentication_method_is_a_protocol_error_3_15_2_2_2() {
    for hex in [
        "f0 02 18 00",
        "f0 05 18 03 1f 00 00",
        "f0 02 00 00",
        "f0 02 19 00",
    ] {
        let e = both_ways(hex, V5).unwrap_err();
        assert_eq!(e, missing_auth_method(), "{hex}");
        assert_eq!(e.reason_code(), ReasonCode::ProtocolError);
        assert!(e.to_string().contains("§3.15.2.2.2"), "{e}");
    }
    assert!(matches!(both_ways("f0 00", V5), Ok(codec::Packet::Auth(_))));
    let Ok(codec::Packet::Auth(a)) = both_ways("f0 08 18 06 15 00 03 61 62 63", V5) else {
        panic!("a continue-authentication AUTH with its method");
    };
    assert_eq!(a.reason, ReasonCode::ContinueAuthentication);
    assert_eq!(a.properties.authentication_method.as_deref(), Some("abc"));
    // Nor can one be encoded: it would not decode back.
    let mut out = bytes::BytesMut::new();
    let bare = codec::Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Default::default(),
    };
    assert!(matches!(
        codec::encode(&codec::Packet::Auth(bare), V5, &mut out),
        Err(E::InvalidField { .. })
    ));
}

/// Judgement call: §3.15.2.1 lets the Reason Code and the Property Length
/// be left out only together (Remaining Length 0). PUBACK (§3.4.2.2.1) and
/// DISCONNECT (§3.14.2.2.1) say a missing Property Length reads as 0; AUTH
/// has no such sentence, so an AUTH of Remaining Length 1 lacks a field
/// (Malformed Packet). Read as 0 it would still omit the Authentication
/// Method (§3.15.2.2.2): rejected either way.
#[test]
fn auth_of_remaining_length_1_is_truncated_3_15_2_1() {
    for hex in ["f0 01 00", "f0 01 18"] {
        assert_eq!(
            both_ways(hex, V5),
            Err(E::Truncated {
                offset: 3,
                what: "property length",
                needed: 1,
                available: 0
            }),
            "{hex}"
        );
    }
}

/// MQTT 3.1.1 §2.2.3 limits the Remaining Length to four bytes and asks
/// nothing more; the minimal-form rule MQTT-1.5.5-1 is 5.0's alone.
#[test]
fn v311_remaining_length_in_a_longer_form_is_accepted_2_2_3() {
    assert_eq!(both_ways("c0 80 00", V311), Ok(codec::Packet::Pingreq));
    assert_eq!(
        both_ways("c0 80 80 80 00", V311),
        Ok(codec::Packet::Pingreq)
    );
    let Ok(codec::Packet::Publish(p)) = both_ways("30 85 80 00 00 01 61 78 79", V311) else {
        panic!("a PUBLISH whose Remaining Length takes 3 bytes");
    };
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("a", &b"xy"[..]));
    let e = both_ways("c0 80 00", V5).unwrap_err();
    assert_eq!(e.spec(), Some("MQTT-1.5.5-1"));
    // Five bytes are too many in either version.
    for v in [V311, V5] {
        assert!(matches!(
            both_ways("c0 80 80 80 80 00", v),
            Err(E::VarIntTooLong { offset: 1, .. })
        ));
    }
    // A CONNECT tells its version itself: level 4 may use the longer form,
    // level 5 may not.
    let v4 = bytes("10 8d 00 00 04 4d 51 54 54 04 02 00 3c 00 01 61");
    assert!(matches!(codec::decode_connect(&v4), Ok((_, V311))));
    let v5 = bytes("10 8e 00 00 04 4d 51 54 54 05 02 00 3c 00 00 01 61");
    let not_minimal = E::VarIntNotMinimal {
        offset: 1,
        what: "remaining length",
    };
    assert_eq!(codec::decode_connect(&v5), Err(not_minimal.clone()));
    let mut d = FrameDecoder::new(None, 1024);
    d.extend(&v5);
    assert_eq!(d.next_packet(), Err(not_minimal));
    let mut d = FrameDecoder::new(None, 1024);
    d.extend(&v4);
    d.extend(&bytes("c0 80 00"));
    assert!(matches!(
        d.next_packet(),
        Ok(Some(codec::Packet::Connect(_)))
    ));
    assert_eq!(d.next_packet(), Ok(Some(codec::Packet::Pingreq)));
}

/// A Response Topic, in a PUBLISH or a Will, "MUST NOT contain wildcard
/// characters [MQTT-3.3.2-14]"; MQTT-3.3.2-2 is the PUBLISH Topic Name's
/// rule. The Will Topic has no numbered rule of its own: a Topic Name, it
/// falls under MQTT-4.7.0-1.
#[test]
fn wildcard_in_a_response_topic_breaks_mqtt_3_3_2_14() {
    assert_eq!(
        both_ways("30 09 00 01 74 05 08 00 02 2b 2b", V5),
        Err(E::InvalidTopicName {
            offset: 9,
            problem: TopicProblem::Wildcard,
            spec: "MQTT-3.3.2-14"
        })
    );
    let will_response =
        "10 18 00 04 4d 51 54 54 05 06 00 3c 00 00 01 61 04 08 00 01 2b 00 01 74 00 00";
    assert_eq!(
        both_ways(will_response, V5),
        Err(E::InvalidTopicName {
            offset: 20,
            problem: TopicProblem::Wildcard,
            spec: "MQTT-3.3.2-14"
        })
    );
    let will_topic = "10 12 00 04 4d 51 54 54 04 06 00 3c 00 01 61 00 01 2b 00 00";
    assert_eq!(
        both_ways(will_topic, V311),
        Err(E::InvalidTopicName {
            offset: 17,
            problem: TopicProblem::Wildcard,
            spec: "MQTT-4.7.0-1"
        })
    );
}

/// The protocol level decides which version's rules read the rest of a
/// CONNECT, so a CONNECT of the other version is a mismatch at its level
/// byte, never a parse error of a version the caller did not ask for.
#[test]
fn connect_of_the_other_version_is_a_mismatch_before_any_of_its_rules() {
    // Level 5 whose 5.0 property length runs past the end.
    assert_eq!(
        both_ways("10 0d 00 04 4d 51 54 54 05 02 00 3c 05 01 61", V311),
        Err(E::VersionMismatch {
            offset: 8,
            expected: V311,
            found: V5
        })
    );
    // Level 4 with a password but no user name (a 3.1.1-only rule).
    assert_eq!(
        both_ways("10 0d 00 04 4d 51 54 54 04 42 00 3c 00 01 61", V5),
        Err(E::VersionMismatch {
            offset: 8,
            expected: V5,
            found: V311
        })
    );
}

/// Judgement call: 3.1.1 Table 3.1 lists return codes 0-5 and marks 6-255
/// "Reserved for future use" without a receiver rule. A server for which
/// none of the listed codes applies "MUST close the Network Connection
/// without sending a CONNACK [MQTT-3.2.2-6]", so a CONNACK with a reserved
/// code breaks that rule and the client closes (a protocol violation,
/// MQTT-4.8.0-1). Rejected, citing MQTT-3.2.2-6.
#[test]
fn v311_connack_reserved_return_code_breaks_mqtt_3_2_2_6() {
    for code in [6u8, 0x80, 0xff] {
        let hex = format!("20 02 00 {code:02x}");
        let e = both_ways(&hex, V311).unwrap_err();
        assert_eq!(
            e,
            E::InvalidReasonCode {
                offset: 3,
                packet_type: T::Connack,
                code,
                version: V311
            }
        );
        assert_eq!(e.spec(), Some("MQTT-3.2.2-6"));
    }
    let e = both_ways("90 03 00 01 03", V311).unwrap_err();
    assert_eq!(e.spec(), Some("MQTT-3.9.3-2"));
}
