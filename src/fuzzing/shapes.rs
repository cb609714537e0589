//! Packets in a small vocabulary: a handful of client ids, topics and
//! filters that match each other, and packet ids in the range the kernels
//! hand out first, so that a few mutated bytes turn one valid session into
//! another (a second subscriber, a retained message, a QoS 2 flow) instead
//! of into noise. Whatever falls outside the vocabulary is still reachable
//! through the raw-bytes and arbitrary-packet operations of each target.

use super::script::{Script, ScriptWriter};
use crate::codec::{
    self, AckProperties, Connack, Connect, ConnectProperties, Disconnect, MqttString, Packet,
    PubResponse, Publish, QoS, ReasonCode, RetainHandling, Suback, Subscribe, Subscription,
    SubscriptionOptions, Unsuback, Unsubscribe, Version, Will,
};
use bytes::{Bytes, BytesMut};

/// Client identifiers; the empty one asks the broker to assign one.
pub const CLIENT_IDS: [&str; 4] = ["c0", "c1", "c2", ""];
/// Topic names publishes use (the will goes to `w`).
pub const TOPICS: [&str; 6] = ["a", "a/b", "r", "t/1", "w", "$SYS/x"];
/// Topic filters subscriptions use: exact, wildcard and shared.
pub const FILTERS: [&str; 10] = [
    "a",
    "a/b",
    "r",
    "#",
    "+",
    "a/+",
    "t/#",
    "w",
    "+/+",
    "$share/g/a",
];
const KEEP_ALIVE: [u16; 4] = [0, 1, 5, 60];
/// MQTT 5 Will Delay Intervals (seconds): none, shorter than the session
/// expiry a CONNECT asks for (10 s), and longer (mosquitto CVE-2019-11778).
const WILL_DELAY: [u32; 4] = [0, 1, 4, 30];
/// MQTT 5 Message Expiry Intervals (seconds; 0: none).
const MESSAGE_EXPIRY: [u32; 4] = [0, 1, 4, 60];
const MAX_PAYLOAD: usize = 16;
const MAX_FILTERS: usize = 3;

fn pid(b: u8) -> u16 {
    u16::from(b % 8) + 1
}

fn qos(b: u8) -> QoS {
    match b % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn string(s: &str) -> MqttString {
    MqttString::new(s).unwrap_or_default()
}

fn pick<'a>(table: &[&'a str], i: u8) -> &'a str {
    table
        .get(usize::from(i) % table.len())
        .copied()
        .unwrap_or_default()
}

/// Encodes `packet` in `version`; `None` when it is not valid there (the
/// operation then adds nothing to the stream).
pub(crate) fn encode(packet: &Packet, version: Version) -> Option<Bytes> {
    let mut out = BytesMut::new();
    codec::encode(packet, version, &mut out).ok()?;
    Some(out.freeze())
}

/// A packet a client sends, in the small vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// CONNECT. `flags`: bit 0 clean start, bit 1 will, bits 2-3 will QoS,
    /// bit 4 will retain, bits 5-6 keep-alive choice, bit 7 session expiry
    /// (10 s, MQTT 5).
    Connect {
        /// Bits 0-1: index into [`CLIENT_IDS`]; bits 2-3: the will's delay
        /// choice (MQTT 5: 0, 1, 4 or 30 s).
        id: u8,
        /// As above.
        flags: u8,
    },
    /// PUBLISH. `flags`: bits 0-1 QoS, bit 2 retain, bit 3 DUP.
    Publish {
        /// Index into [`TOPICS`].
        topic: u8,
        /// As above.
        flags: u8,
        /// Bits 0-2: packet id choice (1 to 8); bits 3-4: the message
        /// expiry choice (MQTT 5: none, 1, 4 or 60 s).
        pid: u8,
        /// Payload (empty with retain clears the retained message).
        payload: Vec<u8>,
    },
    /// SUBSCRIBE: (filter index, options: bits 0-1 QoS, bit 2 No Local,
    /// bit 3 Retain As Published, bits 4-5 Retain Handling).
    Subscribe {
        /// Packet id choice.
        pid: u8,
        /// One to three filters.
        filters: Vec<(u8, u8)>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet id choice.
        pid: u8,
        /// One to three filter indexes.
        filters: Vec<u8>,
    },
    /// PUBACK.
    Puback(u8),
    /// PUBREC, failed (reason 0x80) or not.
    Pubrec(u8, bool),
    /// PUBREL.
    Pubrel(u8),
    /// PUBCOMP.
    Pubcomp(u8),
    /// PINGREQ.
    Pingreq,
    /// DISCONNECT, keeping the will (MQTT 5 reason 0x04) or not.
    Disconnect(bool),
}

impl ClientPacket {
    const KINDS: usize = 10;

    /// Reads one from `s`.
    pub fn read(s: &mut Script<'_>) -> Self {
        match s.pick(Self::KINDS) {
            0 => ClientPacket::Connect {
                id: s.byte(),
                flags: s.byte(),
            },
            1 => ClientPacket::Publish {
                topic: s.byte(),
                flags: s.byte(),
                pid: s.byte(),
                payload: s.blob(MAX_PAYLOAD).to_vec(),
            },
            2 => {
                let pid = s.byte();
                let n = s.pick(MAX_FILTERS) + 1;
                let filters = (0..n).map(|_| (s.byte(), s.byte())).collect();
                ClientPacket::Subscribe { pid, filters }
            }
            3 => {
                let pid = s.byte();
                let n = s.pick(MAX_FILTERS) + 1;
                let filters = (0..n).map(|_| s.byte()).collect();
                ClientPacket::Unsubscribe { pid, filters }
            }
            4 => ClientPacket::Puback(s.byte()),
            5 => ClientPacket::Pubrec(s.byte(), s.byte() & 1 == 1),
            6 => ClientPacket::Pubrel(s.byte()),
            7 => ClientPacket::Pubcomp(s.byte()),
            8 => ClientPacket::Pingreq,
            _ => ClientPacket::Disconnect(s.byte() & 1 == 1),
        }
    }

    /// Writes it in the encoding [`ClientPacket::read`] takes.
    pub fn write(&self, w: &mut ScriptWriter) {
        match self {
            ClientPacket::Connect { id, flags } => w.pick(0).byte(*id).byte(*flags),
            ClientPacket::Publish {
                topic,
                flags,
                pid,
                payload,
            } => w.pick(1).byte(*topic).byte(*flags).byte(*pid).blob(payload),
            ClientPacket::Subscribe { pid, filters } => {
                w.pick(2).byte(*pid).pick(filters.len().saturating_sub(1));
                for (f, o) in filters {
                    w.byte(*f).byte(*o);
                }
                w
            }
            ClientPacket::Unsubscribe { pid, filters } => {
                w.pick(3).byte(*pid).pick(filters.len().saturating_sub(1));
                for f in filters {
                    w.byte(*f);
                }
                w
            }
            ClientPacket::Puback(p) => w.pick(4).byte(*p),
            ClientPacket::Pubrec(p, fail) => w.pick(5).byte(*p).byte(u8::from(*fail)),
            ClientPacket::Pubrel(p) => w.pick(6).byte(*p),
            ClientPacket::Pubcomp(p) => w.pick(7).byte(*p),
            ClientPacket::Pingreq => w.pick(8),
            ClientPacket::Disconnect(keep) => w.pick(9).byte(u8::from(*keep)),
        };
    }

    /// The packet it stands for in `version`.
    pub fn packet(&self, v: Version) -> Packet {
        let five = v == Version::V5;
        match self {
            ClientPacket::Connect { id, flags } => {
                let delay = WILL_DELAY[usize::from((*id >> 2) & 3)];
                let will = (flags & 2 != 0).then(|| Will {
                    topic: string("w"),
                    payload: Bytes::from_static(b"gone"),
                    qos: qos(flags >> 2),
                    retain: flags & 16 != 0,
                    properties: codec::WillProperties {
                        will_delay_interval: (five && delay > 0).then_some(delay),
                        ..Default::default()
                    },
                });
                Packet::Connect(Box::new(Connect {
                    clean_start: flags & 1 != 0,
                    keep_alive: KEEP_ALIVE[usize::from((flags >> 5) & 3)],
                    client_id: string(pick(&CLIENT_IDS, *id)),
                    will,
                    username: None,
                    password: None,
                    properties: ConnectProperties {
                        session_expiry_interval: (five && flags & 128 != 0).then_some(10),
                        ..Default::default()
                    },
                }))
            }
            ClientPacket::Publish {
                topic,
                flags,
                pid: p,
                payload,
            } => {
                let mut publish = Publish::new(
                    string(pick(&TOPICS, *topic)),
                    Bytes::copy_from_slice(payload),
                );
                publish.qos = qos(*flags);
                publish.retain = flags & 4 != 0;
                let expiry = MESSAGE_EXPIRY[usize::from((*p >> 3) & 3)];
                publish.properties.message_expiry_interval = (five && expiry > 0).then_some(expiry);
                if publish.qos != QoS::AtMostOnce {
                    publish.packet_id = pid(*p);
                    publish.dup = flags & 8 != 0;
                }
                Packet::Publish(publish)
            }
            ClientPacket::Subscribe { pid: p, filters } => Packet::Subscribe(Subscribe {
                packet_id: pid(*p),
                filters: filters
                    .iter()
                    .map(|(f, o)| {
                        let filter = pick(&FILTERS, *f);
                        Subscription {
                            filter: string(filter),
                            options: SubscriptionOptions {
                                qos: qos(*o),
                                no_local: five && o & 4 != 0 && !filter.starts_with("$share/"),
                                retain_as_published: five && o & 8 != 0,
                                retain_handling: match (five, (o >> 4) % 3) {
                                    (true, 1) => RetainHandling::SendIfNew,
                                    (true, 2) => RetainHandling::DoNotSend,
                                    _ => RetainHandling::SendAtSubscribe,
                                },
                            },
                        }
                    })
                    .collect(),
                properties: Default::default(),
            }),
            ClientPacket::Unsubscribe { pid: p, filters } => Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(*p),
                filters: filters.iter().map(|f| string(pick(&FILTERS, *f))).collect(),
                properties: Default::default(),
            }),
            ClientPacket::Puback(p) => Packet::Puback(PubResponse::new(pid(*p))),
            ClientPacket::Pubrec(p, fail) => {
                let mut r = PubResponse::new(pid(*p));
                if *fail && five {
                    r.reason = ReasonCode::UnspecifiedError;
                }
                Packet::Pubrec(r)
            }
            ClientPacket::Pubrel(p) => Packet::Pubrel(PubResponse::new(pid(*p))),
            ClientPacket::Pubcomp(p) => Packet::Pubcomp(PubResponse::new(pid(*p))),
            ClientPacket::Pingreq => Packet::Pingreq,
            ClientPacket::Disconnect(keep) => Packet::Disconnect(Disconnect {
                reason: if *keep && five {
                    ReasonCode::DisconnectWithWill
                } else {
                    ReasonCode::Success
                },
                properties: Default::default(),
            }),
        }
    }

    /// Its encoding in `version`, if valid there.
    pub fn encode(&self, v: Version) -> Option<Bytes> {
        encode(&self.packet(v), v)
    }
}

const CONNACK_REASONS: [ReasonCode; 4] = [
    ReasonCode::Success,
    ReasonCode::NotAuthorized,
    ReasonCode::ServerUnavailable,
    ReasonCode::ClientIdentifierNotValid,
];
const SUBACK_REASONS: [ReasonCode; 4] = [
    ReasonCode::Success,
    ReasonCode::GrantedQos1,
    ReasonCode::GrantedQos2,
    ReasonCode::UnspecifiedError,
];
const DISCONNECT_REASONS: [ReasonCode; 3] = [
    ReasonCode::Success,
    ReasonCode::ServerShuttingDown,
    ReasonCode::SessionTakenOver,
];

/// A packet a broker sends (or a hostile one does), in the small vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerPacket {
    /// CONNACK: reason choice, session present.
    Connack(u8, bool),
    /// SUBACK: packet id choice, one to three reason choices.
    Suback(u8, Vec<u8>),
    /// UNSUBACK.
    Unsuback(u8),
    /// PUBACK.
    Puback(u8),
    /// PUBREC, failed or not.
    Pubrec(u8, bool),
    /// PUBREL.
    Pubrel(u8),
    /// PUBCOMP.
    Pubcomp(u8),
    /// PUBLISH: topic index, flags (bits 0-1 QoS, bit 2 retain, bit 3
    /// DUP), packet id choice, payload.
    Publish(u8, u8, u8, Vec<u8>),
    /// PINGRESP.
    Pingresp,
    /// DISCONNECT: reason choice (MQTT 5).
    Disconnect(u8),
}

impl BrokerPacket {
    const KINDS: usize = 10;

    /// Reads one from `s`.
    pub fn read(s: &mut Script<'_>) -> Self {
        match s.pick(Self::KINDS) {
            0 => BrokerPacket::Connack(s.byte(), s.byte() & 1 == 1),
            1 => {
                let p = s.byte();
                let n = s.pick(MAX_FILTERS) + 1;
                BrokerPacket::Suback(p, (0..n).map(|_| s.byte()).collect())
            }
            2 => BrokerPacket::Unsuback(s.byte()),
            3 => BrokerPacket::Puback(s.byte()),
            4 => BrokerPacket::Pubrec(s.byte(), s.byte() & 1 == 1),
            5 => BrokerPacket::Pubrel(s.byte()),
            6 => BrokerPacket::Pubcomp(s.byte()),
            7 => BrokerPacket::Publish(s.byte(), s.byte(), s.byte(), s.blob(MAX_PAYLOAD).to_vec()),
            8 => BrokerPacket::Pingresp,
            _ => BrokerPacket::Disconnect(s.byte()),
        }
    }

    /// Writes it in the encoding [`BrokerPacket::read`] takes.
    pub fn write(&self, w: &mut ScriptWriter) {
        match self {
            BrokerPacket::Connack(r, sp) => w.pick(0).byte(*r).byte(u8::from(*sp)),
            BrokerPacket::Suback(p, rs) => {
                w.pick(1).byte(*p).pick(rs.len().saturating_sub(1));
                for r in rs {
                    w.byte(*r);
                }
                w
            }
            BrokerPacket::Unsuback(p) => w.pick(2).byte(*p),
            BrokerPacket::Puback(p) => w.pick(3).byte(*p),
            BrokerPacket::Pubrec(p, fail) => w.pick(4).byte(*p).byte(u8::from(*fail)),
            BrokerPacket::Pubrel(p) => w.pick(5).byte(*p),
            BrokerPacket::Pubcomp(p) => w.pick(6).byte(*p),
            BrokerPacket::Publish(t, f, p, payload) => {
                w.pick(7).byte(*t).byte(*f).byte(*p).blob(payload)
            }
            BrokerPacket::Pingresp => w.pick(8),
            BrokerPacket::Disconnect(r) => w.pick(9).byte(*r),
        };
    }

    /// The packet it stands for in `version`.
    pub fn packet(&self, v: Version) -> Packet {
        let five = v == Version::V5;
        let choose = |table: &[ReasonCode], i: u8| {
            table
                .get(usize::from(i) % table.len())
                .copied()
                .unwrap_or(ReasonCode::Success)
        };
        match self {
            BrokerPacket::Connack(r, sp) => {
                let reason = choose(&CONNACK_REASONS, *r);
                Packet::Connack(Connack {
                    session_present: *sp && reason == ReasonCode::Success,
                    reason,
                    properties: Default::default(),
                })
            }
            BrokerPacket::Suback(p, rs) => Packet::Suback(Suback {
                packet_id: pid(*p),
                reasons: rs.iter().map(|r| choose(&SUBACK_REASONS, *r)).collect(),
                properties: AckProperties::default(),
            }),
            BrokerPacket::Unsuback(p) => Packet::Unsuback(Unsuback {
                packet_id: pid(*p),
                reasons: if five {
                    vec![ReasonCode::Success]
                } else {
                    Vec::new()
                },
                properties: AckProperties::default(),
            }),
            BrokerPacket::Puback(p) => Packet::Puback(PubResponse::new(pid(*p))),
            BrokerPacket::Pubrec(p, fail) => {
                let mut r = PubResponse::new(pid(*p));
                if *fail && five {
                    r.reason = ReasonCode::UnspecifiedError;
                }
                Packet::Pubrec(r)
            }
            BrokerPacket::Pubrel(p) => Packet::Pubrel(PubResponse::new(pid(*p))),
            BrokerPacket::Pubcomp(p) => Packet::Pubcomp(PubResponse::new(pid(*p))),
            BrokerPacket::Publish(t, f, p, payload) => ClientPacket::Publish {
                topic: *t,
                flags: *f,
                pid: *p,
                payload: payload.clone(),
            }
            .packet(v),
            BrokerPacket::Pingresp => Packet::Pingresp,
            BrokerPacket::Disconnect(r) => Packet::Disconnect(Disconnect {
                reason: if five {
                    choose(&DISCONNECT_REASONS, *r)
                } else {
                    ReasonCode::Success
                },
                properties: Default::default(),
            }),
        }
    }

    /// Its encoding in `version`, if valid there.
    pub fn encode(&self, v: Version) -> Option<Bytes> {
        encode(&self.packet(v), v)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn client_shapes() -> Vec<ClientPacket> {
        vec![
            ClientPacket::Connect {
                id: 1,
                flags: 0b1011_0111,
            },
            ClientPacket::Publish {
                topic: 2,
                flags: 6,
                pid: 3,
                payload: b"x".to_vec(),
            },
            ClientPacket::Subscribe {
                pid: 1,
                filters: vec![(3, 0x3e), (9, 1)],
            },
            ClientPacket::Unsubscribe {
                pid: 2,
                filters: vec![0, 3],
            },
            ClientPacket::Puback(1),
            ClientPacket::Pubrec(2, true),
            ClientPacket::Pubrel(3),
            ClientPacket::Pubcomp(4),
            ClientPacket::Pingreq,
            ClientPacket::Disconnect(true),
        ]
    }

    #[test]
    fn every_client_shape_reads_back_and_encodes_in_both_versions() {
        for shape in client_shapes() {
            let mut w = ScriptWriter::bare();
            shape.write(&mut w);
            let bytes = w.finish();
            let mut s = Script::new(&bytes);
            assert_eq!(ClientPacket::read(&mut s), shape);
            assert!(s.is_empty(), "{shape:?} left bytes");
            for v in [Version::V311, Version::V5] {
                let wire = shape
                    .encode(v)
                    .unwrap_or_else(|| panic!("{shape:?} in {v}"));
                assert_eq!(codec::decode(&wire, v).unwrap(), shape.packet(v));
            }
        }
    }

    #[test]
    fn every_broker_shape_reads_back_and_encodes_in_both_versions() {
        let shapes = vec![
            BrokerPacket::Connack(1, true),
            BrokerPacket::Suback(1, vec![0, 1, 3]),
            BrokerPacket::Unsuback(2),
            BrokerPacket::Puback(1),
            BrokerPacket::Pubrec(1, true),
            BrokerPacket::Pubrel(1),
            BrokerPacket::Pubcomp(1),
            BrokerPacket::Publish(0, 2, 1, b"p".to_vec()),
            BrokerPacket::Pingresp,
            BrokerPacket::Disconnect(1),
        ];
        for shape in shapes {
            let mut w = ScriptWriter::bare();
            shape.write(&mut w);
            let bytes = w.finish();
            let mut s = Script::new(&bytes);
            assert_eq!(BrokerPacket::read(&mut s), shape);
            for v in [Version::V311, Version::V5] {
                let wire = shape
                    .encode(v)
                    .unwrap_or_else(|| panic!("{shape:?} in {v}"));
                assert_eq!(codec::decode(&wire, v).unwrap(), shape.packet(v));
            }
        }
    }
}
