//! Both codecs' packets flattened into one shape, a sorted map from field
//! path (`will.topic`, `filters[1].qos`, ...) to a rendered value, so that
//! "every decoded field" can be compared key by key and a difference names
//! the field.
//!
//! Where rumqttc cannot represent something, ours is rendered the way
//! rumqttc would hold it (these are representation limits, not
//! disagreements):
//! - rumqttc keeps a login as `None` when user name and password are both
//!   empty, so the flags are not compared, only the two values (absent
//!   reads as empty);
//! - rumqttc keeps MQTT 5 byte properties (Payload Format Indicator, the
//!   "available" flags, Maximum QoS, Request * Information) as `u8`, ours
//!   as `bool`/`QoS`: both render as the number;
//! - reason codes render as their wire byte.

use mqtls_harness::codec::{
    Connack, Connect, Packet, PubResponse, ReasonCode, UserProperty, Version,
};
use rumqttc::mqttbytes::v4 as r4;
use rumqttc::v5::mqttbytes::v5 as r5;
use std::collections::BTreeMap;
use std::fmt::Display;

/// Field path to rendered value.
pub type Fields = BTreeMap<String, String>;

/// Builds a [`Fields`].
struct F(Fields);

impl F {
    fn new(packet_type: &str) -> Self {
        let mut f = F(Fields::new());
        f.put("type", packet_type);
        f
    }
    fn put(&mut self, key: impl Into<String>, value: impl Display) {
        self.0.insert(key.into(), value.to_string());
    }
    fn opt(&mut self, key: &str, value: Option<impl Display>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }
    fn text(&mut self, key: impl Into<String>, b: &[u8]) {
        self.put(key, text(b));
    }
    fn opt_text(&mut self, key: &str, b: Option<&[u8]>) {
        if let Some(b) = b {
            self.text(key, b);
        }
    }
    fn users<'a>(&mut self, key: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        if !pairs.is_empty() {
            self.put(key, format!("{pairs:?}"));
        }
    }
    fn login(&mut self, user: &[u8], password: &[u8]) {
        if !user.is_empty() || !password.is_empty() {
            self.text("login.username", user);
            self.text("login.password", password);
        }
    }
    fn done(self) -> Fields {
        self.0
    }
}

/// A string or binary field: quoted if UTF-8, else hex.
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("0x{}", hex::encode(b)),
    }
}

fn code(c: ReasonCode) -> String {
    format!("{:#04x}", c.as_u8())
}

fn byte(b: u8) -> String {
    format!("{b:#04x}")
}

fn ours_users(u: &[UserProperty]) -> impl Iterator<Item = (&str, &str)> {
    u.iter().map(|p| (p.name.as_str(), p.value.as_str()))
}

fn theirs_users(u: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    u.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn flag(b: Option<bool>) -> Option<u8> {
    b.map(u8::from)
}

/// The 3.1.1 CONNACK return code that ours carries as an MQTT 5 reason.
fn v311_connack_code(r: ReasonCode) -> u8 {
    match r {
        ReasonCode::Success => 0,
        ReasonCode::UnsupportedProtocolVersion => 1,
        ReasonCode::ClientIdentifierNotValid => 2,
        ReasonCode::ServerUnavailable => 3,
        ReasonCode::BadUserNameOrPassword => 4,
        ReasonCode::NotAuthorized => 5,
        // Not a 3.1.1 code: ours never decodes one from a 3.1.1 CONNACK.
        other => other.as_u8(),
    }
}

/// Our packet, decoded as `v`.
pub fn ours(p: &Packet, v: Version) -> Fields {
    let v5 = v == Version::V5;
    let mut f = F::new(&p.packet_type().to_string());
    match p {
        Packet::Connect(c) => ours_connect(&mut f, c, v),
        Packet::Connack(c) => ours_connack(&mut f, c, v),
        Packet::Publish(p) => {
            f.put("dup", p.dup);
            f.put("qos", p.qos as u8);
            f.put("retain", p.retain);
            f.text("topic", p.topic.as_bytes());
            f.put("packet_id", p.packet_id);
            f.put("payload", hex::encode(&p.payload));
            let q = &*p.properties;
            f.opt("payload_format_indicator", flag(q.payload_format_indicator));
            f.opt("message_expiry_interval", q.message_expiry_interval);
            f.opt("topic_alias", q.topic_alias);
            f.opt_text(
                "response_topic",
                q.response_topic.as_ref().map(|s| &s.as_bytes()[..]),
            );
            f.opt_text("correlation_data", q.correlation_data.as_deref());
            f.users("user_properties", ours_users(&q.user_properties));
            if !q.subscription_identifiers.is_empty() {
                f.put(
                    "subscription_identifiers",
                    format!("{:?}", q.subscription_identifiers),
                );
            }
            f.opt_text(
                "content_type",
                q.content_type.as_ref().map(|s| &s.as_bytes()[..]),
            );
        }
        Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
            ours_ack(&mut f, a, v5)
        }
        Packet::Subscribe(s) => {
            f.put("packet_id", s.packet_id);
            for (i, sub) in s.filters.iter().enumerate() {
                f.text(format!("filters[{i}].filter"), sub.filter.as_bytes());
                f.put(format!("filters[{i}].qos"), sub.options.qos as u8);
                if v5 {
                    let o = &sub.options;
                    f.put(format!("filters[{i}].no_local"), o.no_local);
                    f.put(
                        format!("filters[{i}].retain_as_published"),
                        o.retain_as_published,
                    );
                    f.put(
                        format!("filters[{i}].retain_handling"),
                        o.retain_handling as u8,
                    );
                }
            }
            f.opt(
                "subscription_identifier",
                s.properties.subscription_identifier,
            );
            f.users("user_properties", ours_users(&s.properties.user_properties));
        }
        Packet::Suback(s) => {
            f.put("packet_id", s.packet_id);
            let codes: Vec<String> = s.reasons.iter().map(|c| code(*c)).collect();
            f.put("reasons", codes.join(","));
            f.opt_text(
                "reason_string",
                s.properties
                    .reason_string
                    .as_ref()
                    .map(|s| &s.as_bytes()[..]),
            );
            f.users("user_properties", ours_users(&s.properties.user_properties));
        }
        Packet::Unsubscribe(u) => {
            f.put("packet_id", u.packet_id);
            for (i, filter) in u.filters.iter().enumerate() {
                f.text(format!("filters[{i}]"), filter.as_bytes());
            }
            f.users("user_properties", ours_users(&u.properties.user_properties));
        }
        Packet::Unsuback(u) => {
            f.put("packet_id", u.packet_id);
            if v5 {
                let codes: Vec<String> = u.reasons.iter().map(|c| code(*c)).collect();
                f.put("reasons", codes.join(","));
            }
            f.opt_text(
                "reason_string",
                u.properties
                    .reason_string
                    .as_ref()
                    .map(|s| &s.as_bytes()[..]),
            );
            f.users("user_properties", ours_users(&u.properties.user_properties));
        }
        Packet::Pingreq | Packet::Pingresp => {}
        Packet::Disconnect(d) => {
            if v5 {
                f.put("reason", code(d.reason));
            }
            let q = &*d.properties;
            f.opt("session_expiry_interval", q.session_expiry_interval);
            f.opt_text(
                "reason_string",
                q.reason_string.as_ref().map(|s| &s.as_bytes()[..]),
            );
            f.users("user_properties", ours_users(&q.user_properties));
            f.opt_text(
                "server_reference",
                q.server_reference.as_ref().map(|s| &s.as_bytes()[..]),
            );
        }
        Packet::Auth(a) => {
            f.put("reason", code(a.reason));
            let q = &*a.properties;
            f.opt_text(
                "authentication_method",
                q.authentication_method.as_ref().map(|s| &s.as_bytes()[..]),
            );
            f.opt_text("authentication_data", q.authentication_data.as_deref());
            f.opt_text(
                "reason_string",
                q.reason_string.as_ref().map(|s| &s.as_bytes()[..]),
            );
            f.users("user_properties", ours_users(&q.user_properties));
        }
    }
    f.done()
}

fn s(m: &Option<mqtls_harness::codec::MqttString>) -> Option<&[u8]> {
    m.as_ref().map(|s| &s.as_bytes()[..])
}

fn ours_connect(f: &mut F, c: &Connect, v: Version) {
    f.put("protocol_level", v.level());
    f.put("clean_start", c.clean_start);
    f.put("keep_alive", c.keep_alive);
    f.text("client_id", c.client_id.as_bytes());
    if let Some(w) = &c.will {
        f.text("will.topic", w.topic.as_bytes());
        f.put("will.payload", hex::encode(&w.payload));
        f.put("will.qos", w.qos as u8);
        f.put("will.retain", w.retain);
        let q = &w.properties;
        f.opt("will.will_delay_interval", q.will_delay_interval);
        f.opt(
            "will.payload_format_indicator",
            flag(q.payload_format_indicator),
        );
        f.opt("will.message_expiry_interval", q.message_expiry_interval);
        f.opt_text("will.content_type", s(&q.content_type));
        f.opt_text("will.response_topic", s(&q.response_topic));
        f.opt_text("will.correlation_data", q.correlation_data.as_deref());
        f.users("will.user_properties", ours_users(&q.user_properties));
    }
    f.login(
        c.username.as_ref().map_or(&b""[..], |u| &u.as_bytes()[..]),
        c.password.as_deref().unwrap_or_default(),
    );
    let q = &c.properties;
    f.opt("session_expiry_interval", q.session_expiry_interval);
    f.opt("receive_maximum", q.receive_maximum);
    f.opt("maximum_packet_size", q.maximum_packet_size);
    f.opt("topic_alias_maximum", q.topic_alias_maximum);
    f.opt(
        "request_response_information",
        flag(q.request_response_information),
    );
    f.opt(
        "request_problem_information",
        flag(q.request_problem_information),
    );
    f.opt_text("authentication_method", s(&q.authentication_method));
    f.opt_text("authentication_data", q.authentication_data.as_deref());
    f.users("user_properties", ours_users(&q.user_properties));
}

fn ours_connack(f: &mut F, c: &Connack, v: Version) {
    f.put("session_present", c.session_present);
    match v {
        Version::V311 => f.put("reason", byte(v311_connack_code(c.reason))),
        Version::V5 => f.put("reason", code(c.reason)),
    }
    let q = &*c.properties;
    f.opt("session_expiry_interval", q.session_expiry_interval);
    f.opt("receive_maximum", q.receive_maximum);
    f.opt("maximum_qos", q.maximum_qos.map(|q| q as u8));
    f.opt("retain_available", flag(q.retain_available));
    f.opt("maximum_packet_size", q.maximum_packet_size);
    f.opt_text(
        "assigned_client_identifier",
        s(&q.assigned_client_identifier),
    );
    f.opt("topic_alias_maximum", q.topic_alias_maximum);
    f.opt_text("reason_string", s(&q.reason_string));
    f.users("user_properties", ours_users(&q.user_properties));
    f.opt(
        "wildcard_subscription_available",
        flag(q.wildcard_subscription_available),
    );
    f.opt(
        "subscription_identifiers_available",
        flag(q.subscription_identifiers_available),
    );
    f.opt(
        "shared_subscription_available",
        flag(q.shared_subscription_available),
    );
    f.opt("server_keep_alive", q.server_keep_alive);
    f.opt_text("response_information", s(&q.response_information));
    f.opt_text("server_reference", s(&q.server_reference));
    f.opt_text("authentication_method", s(&q.authentication_method));
    f.opt_text("authentication_data", q.authentication_data.as_deref());
}

fn ours_ack(f: &mut F, a: &PubResponse, v5: bool) {
    f.put("packet_id", a.packet_id);
    if v5 {
        f.put("reason", code(a.reason));
    }
    f.opt_text("reason_string", s(&a.properties.reason_string));
    f.users("user_properties", ours_users(&a.properties.user_properties));
}

fn qos4(q: rumqttc::mqttbytes::QoS) -> u8 {
    q as u8
}

fn qos5(q: rumqttc::v5::mqttbytes::QoS) -> u8 {
    q as u8
}

/// rumqttc's 3.1.1 packet.
pub fn theirs_v4(p: &r4::Packet) -> Fields {
    use r4::Packet as P;
    let name = match p {
        P::Connect(_) => "CONNECT",
        P::ConnAck(_) => "CONNACK",
        P::Publish(_) => "PUBLISH",
        P::PubAck(_) => "PUBACK",
        P::PubRec(_) => "PUBREC",
        P::PubRel(_) => "PUBREL",
        P::PubComp(_) => "PUBCOMP",
        P::Subscribe(_) => "SUBSCRIBE",
        P::SubAck(_) => "SUBACK",
        P::Unsubscribe(_) => "UNSUBSCRIBE",
        P::UnsubAck(_) => "UNSUBACK",
        P::PingReq => "PINGREQ",
        P::PingResp => "PINGRESP",
        P::Disconnect => "DISCONNECT",
    };
    let mut f = F::new(name);
    match p {
        P::Connect(c) => {
            let level = match c.protocol {
                rumqttc::mqttbytes::Protocol::V4 => 4,
                rumqttc::mqttbytes::Protocol::V5 => 5,
            };
            f.put("protocol_level", level);
            f.put("clean_start", c.clean_session);
            f.put("keep_alive", c.keep_alive);
            f.text("client_id", c.client_id.as_bytes());
            if let Some(w) = &c.last_will {
                f.text("will.topic", w.topic.as_bytes());
                f.put("will.payload", hex::encode(&w.message));
                f.put("will.qos", qos4(w.qos));
                f.put("will.retain", w.retain);
            }
            if let Some(l) = &c.login {
                f.login(l.username.as_bytes(), l.password.as_bytes());
            }
        }
        P::ConnAck(c) => {
            f.put("session_present", c.session_present);
            f.put("reason", byte(c.code as u8));
        }
        P::Publish(p) => {
            f.put("dup", p.dup);
            f.put("qos", qos4(p.qos));
            f.put("retain", p.retain);
            f.text("topic", p.topic.as_bytes());
            f.put("packet_id", p.pkid);
            f.put("payload", hex::encode(&p.payload));
        }
        P::PubAck(a) => f.put("packet_id", a.pkid),
        P::PubRec(a) => f.put("packet_id", a.pkid),
        P::PubRel(a) => f.put("packet_id", a.pkid),
        P::PubComp(a) => f.put("packet_id", a.pkid),
        P::Subscribe(s) => {
            f.put("packet_id", s.pkid);
            for (i, sub) in s.filters.iter().enumerate() {
                f.text(format!("filters[{i}].filter"), sub.path.as_bytes());
                f.put(format!("filters[{i}].qos"), qos4(sub.qos));
            }
        }
        P::SubAck(s) => {
            f.put("packet_id", s.pkid);
            let codes: Vec<String> = s
                .return_codes
                .iter()
                .map(|c| match c {
                    r4::SubscribeReasonCode::Success(q) => byte(qos4(*q)),
                    r4::SubscribeReasonCode::Failure => byte(0x80),
                })
                .collect();
            f.put("reasons", codes.join(","));
        }
        P::Unsubscribe(u) => {
            f.put("packet_id", u.pkid);
            for (i, t) in u.topics.iter().enumerate() {
                f.text(format!("filters[{i}]"), t.as_bytes());
            }
        }
        P::UnsubAck(u) => f.put("packet_id", u.pkid),
        P::PingReq | P::PingResp | P::Disconnect => {}
    }
    f.done()
}

/// rumqttc's 5.0 packet.
pub fn theirs_v5(p: &r5::Packet) -> Fields {
    use r5::Packet as P;
    let name = match p {
        P::Auth(_) => "AUTH",
        P::Connect(..) => "CONNECT",
        P::ConnAck(_) => "CONNACK",
        P::Publish(_) => "PUBLISH",
        P::PubAck(_) => "PUBACK",
        P::PingReq(_) => "PINGREQ",
        P::PingResp(_) => "PINGRESP",
        P::Subscribe(_) => "SUBSCRIBE",
        P::SubAck(_) => "SUBACK",
        P::PubRec(_) => "PUBREC",
        P::PubRel(_) => "PUBREL",
        P::PubComp(_) => "PUBCOMP",
        P::Unsubscribe(_) => "UNSUBSCRIBE",
        P::UnsubAck(_) => "UNSUBACK",
        P::Disconnect(_) => "DISCONNECT",
    };
    let mut f = F::new(name);
    match p {
        P::Auth(a) => {
            // Its reason type is private; the reader never returns AUTH
            // anyway (see the "AUTH" entry of the allowlist).
            f.put("reason", format!("{:?}", a.code));
            if let Some(q) = &a.properties {
                f.opt_text(
                    "authentication_method",
                    q.method.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text("authentication_data", q.data.as_deref());
                f.opt_text("reason_string", q.reason.as_ref().map(|s| s.as_bytes()));
                f.users("user_properties", theirs_users(&q.user_properties));
            }
        }
        P::Connect(c, will, login) => {
            f.put("protocol_level", 5);
            f.put("clean_start", c.clean_start);
            f.put("keep_alive", c.keep_alive);
            f.text("client_id", c.client_id.as_bytes());
            if let Some(w) = will {
                f.text("will.topic", &w.topic);
                f.put("will.payload", hex::encode(&w.message));
                f.put("will.qos", qos5(w.qos));
                f.put("will.retain", w.retain);
                if let Some(q) = &w.properties {
                    f.opt("will.will_delay_interval", q.delay_interval);
                    f.opt("will.payload_format_indicator", q.payload_format_indicator);
                    f.opt("will.message_expiry_interval", q.message_expiry_interval);
                    f.opt_text(
                        "will.content_type",
                        q.content_type.as_ref().map(|s| s.as_bytes()),
                    );
                    f.opt_text(
                        "will.response_topic",
                        q.response_topic.as_ref().map(|s| s.as_bytes()),
                    );
                    f.opt_text("will.correlation_data", q.correlation_data.as_deref());
                    f.users("will.user_properties", theirs_users(&q.user_properties));
                }
            }
            if let Some(l) = login {
                f.login(l.username.as_bytes(), l.password.as_bytes());
            }
            if let Some(q) = &c.properties {
                f.opt("session_expiry_interval", q.session_expiry_interval);
                f.opt("receive_maximum", q.receive_maximum);
                f.opt("maximum_packet_size", q.max_packet_size);
                f.opt("topic_alias_maximum", q.topic_alias_max);
                f.opt("request_response_information", q.request_response_info);
                f.opt("request_problem_information", q.request_problem_info);
                f.opt_text(
                    "authentication_method",
                    q.authentication_method.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text("authentication_data", q.authentication_data.as_deref());
                f.users("user_properties", theirs_users(&q.user_properties));
            }
        }
        P::ConnAck(c) => {
            f.put("session_present", c.session_present);
            f.put("reason", connack_code(c.code));
            if let Some(q) = &c.properties {
                f.opt("session_expiry_interval", q.session_expiry_interval);
                f.opt("receive_maximum", q.receive_max);
                f.opt("maximum_qos", q.max_qos);
                f.opt("retain_available", q.retain_available);
                f.opt("maximum_packet_size", q.max_packet_size);
                f.opt_text(
                    "assigned_client_identifier",
                    q.assigned_client_identifier.as_ref().map(|s| s.as_bytes()),
                );
                f.opt("topic_alias_maximum", q.topic_alias_max);
                f.opt_text(
                    "reason_string",
                    q.reason_string.as_ref().map(|s| s.as_bytes()),
                );
                f.users("user_properties", theirs_users(&q.user_properties));
                f.opt(
                    "wildcard_subscription_available",
                    q.wildcard_subscription_available,
                );
                f.opt(
                    "subscription_identifiers_available",
                    q.subscription_identifiers_available,
                );
                f.opt(
                    "shared_subscription_available",
                    q.shared_subscription_available,
                );
                f.opt("server_keep_alive", q.server_keep_alive);
                f.opt_text(
                    "response_information",
                    q.response_information.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text(
                    "server_reference",
                    q.server_reference.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text(
                    "authentication_method",
                    q.authentication_method.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text("authentication_data", q.authentication_data.as_deref());
            }
        }
        P::Publish(p) => {
            f.put("dup", p.dup);
            f.put("qos", qos5(p.qos));
            f.put("retain", p.retain);
            f.text("topic", &p.topic);
            f.put("packet_id", p.pkid);
            f.put("payload", hex::encode(&p.payload));
            if let Some(q) = &p.properties {
                f.opt("payload_format_indicator", q.payload_format_indicator);
                f.opt("message_expiry_interval", q.message_expiry_interval);
                f.opt("topic_alias", q.topic_alias);
                f.opt_text(
                    "response_topic",
                    q.response_topic.as_ref().map(|s| s.as_bytes()),
                );
                f.opt_text("correlation_data", q.correlation_data.as_deref());
                f.users("user_properties", theirs_users(&q.user_properties));
                if !q.subscription_identifiers.is_empty() {
                    f.put(
                        "subscription_identifiers",
                        format!("{:?}", q.subscription_identifiers),
                    );
                }
                f.opt_text(
                    "content_type",
                    q.content_type.as_ref().map(|s| s.as_bytes()),
                );
            }
        }
        P::PubAck(a) => {
            f.put("packet_id", a.pkid);
            f.put("reason", byte(puback_code(a.reason)));
            if let Some(q) = &a.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::PubRec(a) => {
            f.put("packet_id", a.pkid);
            f.put("reason", byte(pubrec_code(a.reason)));
            if let Some(q) = &a.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::PubRel(a) => {
            f.put("packet_id", a.pkid);
            let c = match a.reason {
                r5::PubRelReason::Success => 0x00,
                r5::PubRelReason::PacketIdentifierNotFound => 0x92,
            };
            f.put("reason", byte(c));
            if let Some(q) = &a.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::PubComp(a) => {
            f.put("packet_id", a.pkid);
            let c = match a.reason {
                r5::PubCompReason::Success => 0x00,
                r5::PubCompReason::PacketIdentifierNotFound => 0x92,
            };
            f.put("reason", byte(c));
            if let Some(q) = &a.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::PingReq(_) | P::PingResp(_) => {}
        P::Subscribe(s) => {
            f.put("packet_id", s.pkid);
            for (i, sub) in s.filters.iter().enumerate() {
                f.text(format!("filters[{i}].filter"), sub.path.as_bytes());
                f.put(format!("filters[{i}].qos"), qos5(sub.qos));
                f.put(format!("filters[{i}].no_local"), sub.nolocal);
                f.put(
                    format!("filters[{i}].retain_as_published"),
                    sub.preserve_retain,
                );
                let rh = match sub.retain_forward_rule {
                    r5::RetainForwardRule::OnEverySubscribe => 0,
                    r5::RetainForwardRule::OnNewSubscribe => 1,
                    r5::RetainForwardRule::Never => 2,
                };
                f.put(format!("filters[{i}].retain_handling"), rh);
            }
            if let Some(q) = &s.properties {
                f.opt("subscription_identifier", q.id);
                f.users("user_properties", theirs_users(&q.user_properties));
            }
        }
        P::SubAck(s) => {
            f.put("packet_id", s.pkid);
            let codes: Vec<String> = s
                .return_codes
                .iter()
                .map(|c| byte(suback_code(*c)))
                .collect();
            f.put("reasons", codes.join(","));
            if let Some(q) = &s.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::Unsubscribe(u) => {
            f.put("packet_id", u.pkid);
            for (i, t) in u.filters.iter().enumerate() {
                f.text(format!("filters[{i}]"), t.as_bytes());
            }
            if let Some(q) = &u.properties {
                f.users("user_properties", theirs_users(&q.user_properties));
            }
        }
        P::UnsubAck(u) => {
            f.put("packet_id", u.pkid);
            let codes: Vec<String> = u.reasons.iter().map(|c| byte(unsuback_code(*c))).collect();
            f.put("reasons", codes.join(","));
            if let Some(q) = &u.properties {
                ack_properties(&mut f, &q.reason_string, &q.user_properties);
            }
        }
        P::Disconnect(d) => {
            f.put("reason", byte(d.reason_code as u8));
            if let Some(q) = &d.properties {
                f.opt("session_expiry_interval", q.session_expiry_interval);
                f.opt_text(
                    "reason_string",
                    q.reason_string.as_ref().map(|s| s.as_bytes()),
                );
                f.users("user_properties", theirs_users(&q.user_properties));
                f.opt_text(
                    "server_reference",
                    q.server_reference.as_ref().map(|s| s.as_bytes()),
                );
            }
        }
    }
    f.done()
}

fn ack_properties(f: &mut F, reason: &Option<String>, users: &[(String, String)]) {
    f.opt_text("reason_string", reason.as_ref().map(|s| s.as_bytes()));
    f.users("user_properties", theirs_users(users));
}

// rumqttc's reason enums carry no wire values; these are its own tables
// (`reason`/`code` in each of its packet files) read back.

fn connack_code(c: r5::ConnectReturnCode) -> String {
    use r5::ConnectReturnCode as C;
    let b = match c {
        C::Success => 0x00,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::UnsupportedProtocolVersion => 0x84,
        C::ClientIdentifierNotValid => 0x85,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable => 0x88,
        C::ServerBusy => 0x89,
        C::Banned => 0x8a,
        C::BadAuthenticationMethod => 0x8c,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9a,
        C::QoSNotSupported => 0x9b,
        C::UseAnotherServer => 0x9c,
        C::ServerMoved => 0x9d,
        C::ConnectionRateExceeded => 0x9f,
        // 3.1.1 names its decoder never produces.
        other => return format!("{other:?}"),
    };
    byte(b)
}

fn puback_code(c: r5::PubAckReason) -> u8 {
    use r5::PubAckReason as R;
    match c {
        R::Success => 0x00,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}

fn pubrec_code(c: r5::PubRecReason) -> u8 {
    use r5::PubRecReason as R;
    match c {
        R::Success => 0x00,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}

fn suback_code(c: r5::SubscribeReasonCode) -> u8 {
    use r5::SubscribeReasonCode as R;
    match c {
        R::Success(q) => qos5(q),
        R::Failure | R::Unspecified => 0x80,
        R::ImplementationSpecific => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicFilterInvalid => 0x8f,
        R::PkidInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::SharedSubscriptionsNotSupported => 0x9e,
        R::SubscriptionIdNotSupported => 0xa1,
        R::WildcardSubscriptionsNotSupported => 0xa2,
    }
}

fn unsuback_code(c: r5::UnsubAckReason) -> u8 {
    use r5::UnsubAckReason as R;
    match c {
        R::Success => 0x00,
        R::NoSubscriptionExisted => 0x11,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicFilterInvalid => 0x8f,
        R::PacketIdentifierInUse => 0x91,
    }
}
