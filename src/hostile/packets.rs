//! The well-formed packets both hostile peers send, built on the codec.

use crate::codec::{
    self, AckProperties, Connack, Connect, ConnectProperties, MqttString, Packet, PubResponse,
    Publish, QoS, ReasonCode, Suback, Subscribe, SubscribeProperties, Subscription,
    SubscriptionOptions, Version,
};
use bytes::{Bytes, BytesMut};

/// The payload of every message the hostile peers publish.
pub const PAYLOAD: &[u8] = b"mqtls hostile peer";

/// Encodes `packet`; `None` when the codec refuses it in `version` (only for
/// packets built from a peer's values, e.g. a topic that is not valid).
pub fn encode(packet: &Packet, version: Version) -> Option<Bytes> {
    let mut out = BytesMut::new();
    codec::encode(packet, version, &mut out).ok()?;
    Some(out.freeze())
}

/// A CONNECT with a clean session and keep-alive 30 s.
pub fn connect(client_id: &str) -> Option<Packet> {
    Some(Packet::Connect(Box::new(Connect {
        clean_start: true,
        keep_alive: 30,
        client_id: MqttString::new(client_id).ok()?,
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    })))
}

/// A CONNACK with `reason` and no session.
pub fn connack(reason: ReasonCode) -> Packet {
    Packet::Connack(Connack {
        session_present: false,
        reason,
        properties: Default::default(),
    })
}

/// A SUBSCRIBE of one filter.
pub fn subscribe(packet_id: u16, filter: &str, qos: QoS) -> Option<Packet> {
    Some(Packet::Subscribe(Subscribe {
        packet_id,
        filters: vec![Subscription {
            filter: MqttString::new(filter).ok()?,
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
        properties: SubscribeProperties::default(),
    }))
}

/// The SUBACK granting every filter of `sub` at the QoS it asked for.
pub fn suback_for(sub: &Subscribe, packet_id: u16) -> Packet {
    let reasons = sub
        .filters
        .iter()
        .map(|f| match f.options.qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => ReasonCode::GrantedQos1,
            QoS::ExactlyOnce => ReasonCode::GrantedQos2,
        })
        .collect::<Vec<_>>();
    Packet::Suback(Suback {
        packet_id,
        reasons: if reasons.is_empty() {
            vec![ReasonCode::Success]
        } else {
            reasons
        },
        properties: AckProperties::default(),
    })
}

/// A PUBLISH of [`PAYLOAD`] on `topic`.
pub fn publish(topic: &str, qos: QoS, packet_id: u16) -> Option<Packet> {
    let mut p = Publish::new(MqttString::new(topic).ok()?, Bytes::from_static(PAYLOAD));
    p.qos = qos;
    p.packet_id = if qos == QoS::AtMostOnce { 0 } else { packet_id };
    Some(Packet::Publish(p))
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP for `packet_id`.
pub fn ack(packet_id: u16) -> PubResponse {
    PubResponse::new(packet_id)
}

/// A topic name that `filter` matches: each `+` level becomes `x`, a
/// trailing `#` becomes `x` (a filter without wildcards is its own topic).
pub fn topic_matching(filter: &str) -> String {
    let levels: Vec<&str> = filter
        .split('/')
        .map(|l| if l == "+" || l == "#" { "x" } else { l })
        .collect();
    let topic = levels.join("/");
    if topic.is_empty() {
        "x".to_owned()
    } else {
        topic
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn wildcard_filters_become_matching_topics() {
        assert_eq!(topic_matching("t"), "t");
        assert_eq!(topic_matching("a/+/c"), "a/x/c");
        assert_eq!(topic_matching("a/#"), "a/x");
        assert_eq!(topic_matching("#"), "x");
        assert_eq!(topic_matching("+/+"), "x/x");
    }

    #[test]
    fn built_packets_encode_in_both_versions() {
        let sub = subscribe(7, "a/+", QoS::AtLeastOnce).unwrap();
        let Packet::Subscribe(s) = &sub else {
            unreachable!()
        };
        for v in [Version::V311, Version::V5] {
            for p in [
                connect("c").unwrap(),
                connack(ReasonCode::Success),
                sub.clone(),
                suback_for(s, 7),
                publish("a/x", QoS::AtLeastOnce, 3).unwrap(),
            ] {
                let wire = encode(&p, v).unwrap();
                let back = codec::decode(&wire, v).unwrap();
                assert_eq!(back.packet_type(), p.packet_type());
            }
        }
    }
}
