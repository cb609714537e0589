//! Valid packets generated from [`arbitrary::Unstructured`], for the
//! `codec_roundtrip` fuzz target and the round-trip property tests: every
//! packet built here must encode, and decode back to itself.

use super::*;
use ::arbitrary::{Result, Unstructured};

/// A valid packet of `version`, any type (AUTH only for MQTT 5).
pub fn valid_packet(u: &mut Unstructured<'_>, version: Version) -> Result<Packet> {
    let last = if version == Version::V5 { 15 } else { 14 };
    let pt = PacketType::from_u8(u.int_in_range(1..=last)?).unwrap_or(PacketType::Pingreq);
    valid_packet_of(u, version, pt)
}

/// A valid packet of the given type and version.
pub fn valid_packet_of(u: &mut Unstructured<'_>, v: Version, pt: PacketType) -> Result<Packet> {
    Ok(match pt {
        PacketType::Connect => Packet::Connect(Box::new(connect(u, v)?)),
        PacketType::Connack => Packet::Connack(connack(u, v)?),
        PacketType::Publish => Packet::Publish(publish(u, v)?),
        PacketType::Puback => Packet::Puback(pub_response(u, v, pt)?),
        PacketType::Pubrec => Packet::Pubrec(pub_response(u, v, pt)?),
        PacketType::Pubrel => Packet::Pubrel(pub_response(u, v, pt)?),
        PacketType::Pubcomp => Packet::Pubcomp(pub_response(u, v, pt)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(u, v)?),
        PacketType::Suback => Packet::Suback(suback(u, v)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(u, v)?),
        PacketType::Unsuback => Packet::Unsuback(unsuback(u, v)?),
        PacketType::Pingreq => Packet::Pingreq,
        PacketType::Pingresp => Packet::Pingresp,
        PacketType::Disconnect => Packet::Disconnect(disconnect(u, v)?),
        PacketType::Auth if v == Version::V5 => Packet::Auth(auth(u)?),
        PacketType::Auth => Packet::Pingreq,
    })
}

fn is5(v: Version) -> bool {
    v == Version::V5
}

/// Some(x) half of the time (and only when `allowed`).
fn maybe<T>(
    u: &mut Unstructured<'_>,
    allowed: bool,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if allowed && u.arbitrary::<bool>()? {
        f(u).map(Some)
    } else {
        Ok(None)
    }
}

fn list<T>(
    u: &mut Unstructured<'_>,
    min: usize,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| f(u)).collect()
}

/// Any string without U+0000 (the only character MQTT forbids outright).
fn string(u: &mut Unstructured<'_>) -> Result<MqttString> {
    let s: String = u.arbitrary()?;
    let s: String = s.chars().filter(|c| *c != '\0').take(40).collect();
    Ok(MqttString::new(s).unwrap_or_default())
}

fn bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Bytes> {
    let n = u.int_in_range(0..=max)?;
    Ok(Bytes::copy_from_slice(u.bytes(n.min(u.len()))?))
}

/// A topic level without wildcards or separators.
fn level(u: &mut Unstructured<'_>) -> Result<String> {
    const ALPHABET: &[&str] = &[
        "a", "sensor", "tennis", "$SYS", "ü", "日本", "x y", "", "42",
    ];
    if u.arbitrary::<bool>()? {
        return Ok(u.choose(ALPHABET)?.to_string());
    }
    let s: String = u.arbitrary()?;
    Ok(s.chars()
        .filter(|c| !matches!(c, '\0' | '+' | '#' | '/'))
        .take(12)
        .collect())
}

fn topic_name(u: &mut Unstructured<'_>) -> Result<MqttString> {
    let mut t = list(u, 1, 4, level)?.join("/");
    if t.is_empty() {
        t.push('t');
    }
    Ok(MqttString::new(t).unwrap_or_default())
}

fn topic_filter(u: &mut Unstructured<'_>, v: Version) -> Result<MqttString> {
    let mut levels = list(u, 1, 4, |u| {
        if u.ratio(1, 4)? {
            Ok("+".to_string())
        } else {
            level(u)
        }
    })?;
    if u.ratio(1, 4)? {
        levels.push("#".into());
    }
    // A first level of `$share` makes a shared subscription, which needs a
    // share name after it: only the branch below builds those.
    if let Some(first) = levels.first_mut()
        && first == "$share"
    {
        first.push('_');
    }
    let mut f = levels.join("/");
    if f.is_empty() {
        f.push('f');
    }
    if is5(v) && u.ratio(1, 5)? {
        let name: String = level(u)?;
        let name = if name.is_empty() {
            "group".to_string()
        } else {
            name
        };
        f = format!("{}{name}/{f}", topic::SHARE_PREFIX);
    }
    Ok(MqttString::new(f).unwrap_or_default())
}

fn qos(u: &mut Unstructured<'_>) -> Result<QoS> {
    Ok(*u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?)
}

fn nonzero_u16(u: &mut Unstructured<'_>) -> Result<u16> {
    u.int_in_range(1..=u16::MAX)
}

fn nonzero_u32(u: &mut Unstructured<'_>) -> Result<u32> {
    u.int_in_range(1..=u32::MAX)
}

fn users(u: &mut Unstructured<'_>, v: Version) -> Result<Vec<UserProperty>> {
    if !is5(v) {
        return Ok(Vec::new());
    }
    list(u, 0, 3, |u| {
        Ok(UserProperty {
            name: string(u)?,
            value: string(u)?,
        })
    })
}

fn reason(u: &mut Unstructured<'_>, v: Version, pt: PacketType) -> Result<ReasonCode> {
    let table: &[ReasonCode] = match (v, pt) {
        (Version::V311, PacketType::Connack) => &[
            ReasonCode::Success,
            ReasonCode::UnsupportedProtocolVersion,
            ReasonCode::ClientIdentifierNotValid,
            ReasonCode::ServerUnavailable,
            ReasonCode::BadUserNameOrPassword,
            ReasonCode::NotAuthorized,
        ],
        (Version::V311, PacketType::Suback) => &[
            ReasonCode::Success,
            ReasonCode::GrantedQos1,
            ReasonCode::GrantedQos2,
            ReasonCode::UnspecifiedError,
        ],
        (Version::V311, _) => &[ReasonCode::Success],
        (Version::V5, _) => ReasonCode::allowed_in(pt),
    };
    Ok(*u.choose(table)?)
}

fn ack_properties(u: &mut Unstructured<'_>, v: Version) -> Result<AckProperties> {
    Ok(AckProperties {
        reason_string: maybe(u, is5(v), string)?,
        user_properties: users(u, v)?,
    })
}

fn connect(u: &mut Unstructured<'_>, v: Version) -> Result<Connect> {
    let five = is5(v);
    let will = maybe(u, true, |u| {
        Ok(Will {
            topic: topic_name(u)?,
            payload: bytes(u, 64)?,
            qos: qos(u)?,
            retain: u.arbitrary()?,
            properties: WillProperties {
                will_delay_interval: maybe(u, five, |u| u.arbitrary())?,
                payload_format_indicator: maybe(u, five, |u| u.arbitrary())?,
                message_expiry_interval: maybe(u, five, |u| u.arbitrary())?,
                content_type: maybe(u, five, string)?,
                response_topic: maybe(u, five, topic_name)?,
                correlation_data: maybe(u, five, |u| bytes(u, 16))?,
                user_properties: users(u, v)?,
            },
        })
    })?;
    let username = maybe(u, true, string)?;
    let password = maybe(u, five || username.is_some(), |u| bytes(u, 16))?;
    let authentication_method = maybe(u, five, string)?;
    Ok(Connect {
        clean_start: u.arbitrary()?,
        keep_alive: u.arbitrary()?,
        client_id: string(u)?,
        will,
        username,
        password,
        properties: ConnectProperties {
            session_expiry_interval: maybe(u, five, |u| u.arbitrary())?,
            receive_maximum: maybe(u, five, nonzero_u16)?,
            maximum_packet_size: maybe(u, five, nonzero_u32)?,
            topic_alias_maximum: maybe(u, five, |u| u.arbitrary())?,
            request_response_information: maybe(u, five, |u| u.arbitrary())?,
            request_problem_information: maybe(u, five, |u| u.arbitrary())?,
            authentication_data: maybe(u, authentication_method.is_some(), |u| bytes(u, 16))?,
            authentication_method,
            user_properties: users(u, v)?,
        },
    })
}

fn connack(u: &mut Unstructured<'_>, v: Version) -> Result<Connack> {
    let five = is5(v);
    let reason = reason(u, v, PacketType::Connack)?;
    let authentication_method = maybe(u, five, string)?;
    Ok(Connack {
        session_present: !reason.is_error() && u.arbitrary()?,
        reason,
        properties: ConnackProperties {
            session_expiry_interval: maybe(u, five, |u| u.arbitrary())?,
            receive_maximum: maybe(u, five, nonzero_u16)?,
            maximum_qos: maybe(u, five, |u| {
                Ok(*u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce])?)
            })?,
            retain_available: maybe(u, five, |u| u.arbitrary())?,
            maximum_packet_size: maybe(u, five, nonzero_u32)?,
            assigned_client_identifier: maybe(u, five, string)?,
            topic_alias_maximum: maybe(u, five, |u| u.arbitrary())?,
            reason_string: maybe(u, five, string)?,
            wildcard_subscription_available: maybe(u, five, |u| u.arbitrary())?,
            subscription_identifiers_available: maybe(u, five, |u| u.arbitrary())?,
            shared_subscription_available: maybe(u, five, |u| u.arbitrary())?,
            server_keep_alive: maybe(u, five, |u| u.arbitrary())?,
            response_information: maybe(u, five, string)?,
            server_reference: maybe(u, five, string)?,
            authentication_data: maybe(u, authentication_method.is_some(), |u| bytes(u, 16))?,
            authentication_method,
            user_properties: users(u, v)?,
        }
        .into(),
    })
}

fn publish(u: &mut Unstructured<'_>, v: Version) -> Result<Publish> {
    let five = is5(v);
    let qos = qos(u)?;
    let at_least_once = qos != QoS::AtMostOnce;
    let topic_alias = maybe(u, five, nonzero_u16)?;
    let topic = if topic_alias.is_some() && u.arbitrary()? {
        MqttString::default()
    } else {
        topic_name(u)?
    };
    Ok(Publish {
        dup: at_least_once && u.arbitrary()?,
        qos,
        retain: u.arbitrary()?,
        topic,
        packet_id: if at_least_once { nonzero_u16(u)? } else { 0 },
        payload: bytes(u, 256)?,
        properties: PublishProperties {
            payload_format_indicator: maybe(u, five, |u| u.arbitrary())?,
            message_expiry_interval: maybe(u, five, |u| u.arbitrary())?,
            topic_alias,
            response_topic: maybe(u, five, topic_name)?,
            correlation_data: maybe(u, five, |u| bytes(u, 16))?,
            user_properties: users(u, v)?,
            subscription_identifiers: if five {
                list(u, 0, 2, |u| u.int_in_range(1..=MAX_VARINT))?
            } else {
                Vec::new()
            },
            content_type: maybe(u, five, string)?,
        }
        .into(),
    })
}

fn pub_response(u: &mut Unstructured<'_>, v: Version, pt: PacketType) -> Result<PubResponse> {
    Ok(PubResponse {
        packet_id: nonzero_u16(u)?,
        reason: reason(u, v, pt)?,
        properties: ack_properties(u, v)?,
    })
}

fn subscribe(u: &mut Unstructured<'_>, v: Version) -> Result<Subscribe> {
    let five = is5(v);
    let filters = list(u, 1, 4, |u| {
        let filter = topic_filter(u, v)?;
        let shared = topic::is_shared(&filter);
        let options = SubscriptionOptions {
            qos: qos(u)?,
            no_local: five && !shared && u.arbitrary()?,
            retain_as_published: five && u.arbitrary()?,
            retain_handling: if five {
                *u.choose(&[
                    RetainHandling::SendAtSubscribe,
                    RetainHandling::SendIfNew,
                    RetainHandling::DoNotSend,
                ])?
            } else {
                RetainHandling::SendAtSubscribe
            },
        };
        Ok(Subscription { filter, options })
    })?;
    Ok(Subscribe {
        packet_id: nonzero_u16(u)?,
        filters,
        properties: SubscribeProperties {
            subscription_identifier: maybe(u, five, |u| u.int_in_range(1..=MAX_VARINT))?,
            user_properties: users(u, v)?,
        },
    })
}

fn suback(u: &mut Unstructured<'_>, v: Version) -> Result<Suback> {
    Ok(Suback {
        packet_id: nonzero_u16(u)?,
        reasons: list(u, 1, 4, |u| reason(u, v, PacketType::Suback))?,
        properties: ack_properties(u, v)?,
    })
}

fn unsubscribe(u: &mut Unstructured<'_>, v: Version) -> Result<Unsubscribe> {
    Ok(Unsubscribe {
        packet_id: nonzero_u16(u)?,
        filters: list(u, 1, 4, |u| topic_filter(u, v))?,
        properties: UnsubscribeProperties {
            user_properties: users(u, v)?,
        },
    })
}

fn unsuback(u: &mut Unstructured<'_>, v: Version) -> Result<Unsuback> {
    let reasons = if is5(v) {
        list(u, 1, 4, |u| reason(u, v, PacketType::Unsuback))?
    } else {
        Vec::new()
    };
    Ok(Unsuback {
        packet_id: nonzero_u16(u)?,
        reasons,
        properties: ack_properties(u, v)?,
    })
}

fn disconnect(u: &mut Unstructured<'_>, v: Version) -> Result<Disconnect> {
    let five = is5(v);
    Ok(Disconnect {
        reason: reason(u, v, PacketType::Disconnect)?,
        properties: DisconnectProperties {
            session_expiry_interval: maybe(u, five, |u| u.arbitrary())?,
            reason_string: maybe(u, five, string)?,
            user_properties: users(u, v)?,
            server_reference: maybe(u, five, string)?,
        }
        .into(),
    })
}

fn auth(u: &mut Unstructured<'_>) -> Result<Auth> {
    let reason = reason(u, Version::V5, PacketType::Auth)?;
    // Only a bare Success (Remaining Length 0) goes without the
    // Authentication Method (§3.15.2.2.2).
    if reason == ReasonCode::Success && u.arbitrary()? {
        return Ok(Auth {
            reason,
            properties: Default::default(),
        });
    }
    Ok(Auth {
        reason,
        properties: AuthProperties {
            authentication_method: Some(string(u)?),
            authentication_data: maybe(u, true, |u| bytes(u, 16))?,
            reason_string: maybe(u, true, string)?,
            user_properties: users(u, Version::V5)?,
        }
        .into(),
    })
}
