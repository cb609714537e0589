//! The seed corpora: inputs written from valid sessions (connect,
//! subscribe, publish at each QoS, retained, will, disconnect, and the
//! transport events around them), in each target's grammar. The example
//! `fuzz_seeds` writes them to `fuzz/corpus/<target>/`; the regression test
//! replays them, so a seed that stops being clean fails `cargo test`.

use super::Target;
use super::broker_stream::{self, BrokerOp};
use super::client_stream::{self, ClientOp};
use super::lifecycle_ops::{self, LifecycleOp};
use super::shapes::{BrokerPacket, ClientPacket};
use crate::codec::Version;

/// One seed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// File name in the corpus folder.
    pub name: String,
    /// The input.
    pub data: Vec<u8>,
}

fn seed(name: impl Into<String>, data: Vec<u8>) -> Seed {
    Seed {
        name: name.into(),
        data,
    }
}

/// Every seed of `target`.
pub fn seeds(target: Target) -> Vec<Seed> {
    match target {
        Target::CodecDecode => codec_decode(),
        Target::CodecRoundtrip => codec_roundtrip(),
        Target::BrokerStream => broker(),
        Target::ClientStream => client(),
        Target::LifecycleOps => lifecycle(),
    }
}

// Connect flags of `ClientPacket::Connect`.
const CLEAN: u8 = 1;
const WILL_QOS1: u8 = 2 | 4;
const KEEP_ALIVE_1S: u8 = 1 << 5;
const SESSION_10S: u8 = 1 << 7;
// Client id bytes of `ClientPacket::Connect`: bits 0-1 the id, bits 2-3 the
// will's delay (MQTT 5).
const WILL_DELAY_4S: u8 = 2 << 2;
const WILL_DELAY_30S: u8 = 3 << 2;
// Packet id bytes of `ClientPacket::Publish`: bits 0-2 the id, bits 3-4 the
// message's expiry (MQTT 5).
const EXPIRY_1S: u8 = 1 << 3;
const EXPIRY_60S: u8 = 3 << 3;
// Publish flags: QoS in bits 0-1, retain bit 2.
const RETAIN: u8 = 4;

fn connect(l: u8, id: u8, flags: u8) -> BrokerOp {
    BrokerOp::Packet(l, ClientPacket::Connect { id, flags })
}

fn publish(l: u8, topic: u8, flags: u8, pid: u8, payload: &[u8]) -> BrokerOp {
    BrokerOp::Packet(
        l,
        ClientPacket::Publish {
            topic,
            flags,
            pid,
            payload: payload.to_vec(),
        },
    )
}

fn subscribe(l: u8, pid: u8, filters: &[(u8, u8)]) -> BrokerOp {
    BrokerOp::Packet(
        l,
        ClientPacket::Subscribe {
            pid,
            filters: filters.to_vec(),
        },
    )
}

fn all(l: u8) -> BrokerOp {
    BrokerOp::Deliver(l, 0)
}

/// Broker scripts; `b` is the slot base: 0 and 2 speak 3.1.1, 1 and 3 MQTT 5.
fn broker_scenarios(b: u8) -> Vec<(&'static str, Vec<BrokerOp>)> {
    let o = (b + 2) % 4;
    vec![
        (
            "connect-disconnect",
            vec![
                connect(b, 0, CLEAN),
                BrokerOp::Packet(b, ClientPacket::Disconnect(false)),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "ping",
            vec![
                connect(b, 0, CLEAN),
                BrokerOp::Packet(b, ClientPacket::Pingreq),
                all(b),
                BrokerOp::Write(b),
                BrokerOp::Write(b),
            ],
        ),
        (
            "pubsub-each-qos",
            vec![
                connect(b, 0, CLEAN),
                subscribe(b, 0, &[(3, 2)]),
                all(b),
                BrokerOp::Run,
                publish(b, 0, 0, 0, b"q0"),
                publish(b, 0, 1, 1, b"q1"),
                publish(b, 0, 2, 2, b"q2"),
                BrokerOp::Packet(b, ClientPacket::Pubrel(2)),
                all(b),
                BrokerOp::Run,
                BrokerOp::Packet(b, ClientPacket::Puback(0)),
                BrokerOp::Packet(b, ClientPacket::Pubrec(1, false)),
                all(b),
                BrokerOp::Run,
                BrokerOp::Packet(b, ClientPacket::Pubcomp(1)),
                BrokerOp::Packet(b, ClientPacket::Disconnect(false)),
                all(b),
            ],
        ),
        (
            "retained",
            vec![
                connect(b, 0, CLEAN),
                publish(b, 2, RETAIN | 1, 0, b"kept"),
                all(b),
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(2, 1)]),
                subscribe(o, 1, &[(3, 0)]),
                all(o),
                BrokerOp::Run,
                publish(b, 2, RETAIN, 0, b""),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "retained-self",
            vec![
                connect(b, 0, CLEAN),
                publish(b, 2, RETAIN, 0, b"kept"),
                subscribe(b, 0, &[(2, 1)]),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "will",
            vec![
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(7, 1)]),
                all(o),
                connect(b, 0, CLEAN | WILL_QOS1),
                all(b),
                BrokerOp::Run,
                BrokerOp::Close(b),
                BrokerOp::Run,
            ],
        ),
        (
            "fanout",
            vec![
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(0, 1)]),
                all(o),
                connect(b + 1, 2, CLEAN),
                subscribe(b + 1, 0, &[(5, 2), (3, 0)]),
                all(b + 1),
                connect(b, 0, CLEAN),
                publish(b, 0, 1, 0, b"to all"),
                publish(b, 1, 2, 1, b"to some"),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "persistent-session",
            vec![
                connect(b, 0, 0),
                subscribe(b, 0, &[(0, 1)]),
                all(b),
                BrokerOp::Run,
                BrokerOp::Close(b),
                connect(o, 1, CLEAN),
                publish(o, 0, 1, 0, b"offline"),
                all(o),
                BrokerOp::Reopen(b, b % 2 == 1),
                connect(b, 0, 0),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "takeover",
            vec![
                connect(b, 0, CLEAN),
                all(b),
                connect(o, 0, CLEAN),
                all(o),
                BrokerOp::Run,
            ],
        ),
        (
            "unsubscribe",
            vec![
                connect(b, 0, CLEAN),
                subscribe(b, 0, &[(0, 1), (1, 0)]),
                BrokerOp::Packet(
                    b,
                    ClientPacket::Unsubscribe {
                        pid: 1,
                        filters: vec![0, 4],
                    },
                ),
                publish(b, 0, 1, 2, b"gone"),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            "split-stream",
            vec![
                connect(b, 0, CLEAN),
                subscribe(b, 0, &[(3, 1)]),
                publish(b, 1, 1, 1, b"split"),
                BrokerOp::Deliver(b, 3),
                BrokerOp::Deliver(b, 7),
                BrokerOp::Write(b),
                BrokerOp::Deliver(b, 11),
                BrokerOp::Deliver(b, 0),
                BrokerOp::Run,
            ],
        ),
        (
            "write-error-inflight",
            vec![
                connect(b, 0, CLEAN),
                subscribe(b, 0, &[(3, 1)]),
                publish(b, 0, 1, 1, b"lost"),
                all(b),
                BrokerOp::Write(b),
                BrokerOp::WriteStart(b),
                BrokerOp::WriteFail(b),
                BrokerOp::Run,
            ],
        ),
        (
            "keep-alive-timeout",
            vec![
                connect(b, 0, CLEAN | KEEP_ALIVE_1S),
                all(b),
                BrokerOp::Run,
                BrokerOp::Timer(4),
                BrokerOp::Run,
            ],
        ),
        (
            "malformed-subscribe",
            vec![
                connect(b, 0, CLEAN),
                all(b),
                BrokerOp::Raw(
                    b,
                    vec![
                        0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78,
                        0x78, 0x00,
                    ],
                ),
                all(b),
                BrokerOp::Run,
            ],
        ),
    ]
}

/// MQTT 5 broker scripts (links 1 and 3 speak MQTT 5, 0 and 2 3.1.1):
/// delayed wills, expiring messages and shared groups.
fn broker_mqtt5_scenarios() -> Vec<(&'static str, Vec<BrokerOp>)> {
    let (b, o) = (1, 3);
    vec![
        (
            // mosquitto CVE-2019-11778: the session (10 s) ends before the
            // will's delay (30 s) passes; the will goes out at session end,
            // and the timer must not publish it again.
            "will-delay-past-session-expiry",
            vec![
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(7, 1)]),
                all(o),
                connect(b, WILL_DELAY_30S, CLEAN | WILL_QOS1 | SESSION_10S),
                all(b),
                BrokerOp::Run,
                BrokerOp::Close(b),
                BrokerOp::Timer(22),
                BrokerOp::Run,
                BrokerOp::Timer(42),
                BrokerOp::Run,
            ],
        ),
        (
            // A reconnect within the delay cancels the will.
            "will-delay-reconnect",
            vec![
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(7, 1)]),
                all(o),
                connect(b, WILL_DELAY_4S, CLEAN | WILL_QOS1 | SESSION_10S),
                all(b),
                BrokerOp::Run,
                BrokerOp::Close(b),
                BrokerOp::Timer(2),
                BrokerOp::Reopen(b, true),
                connect(b, WILL_DELAY_4S, SESSION_10S),
                all(b),
                BrokerOp::Timer(12),
                BrokerOp::Run,
            ],
        ),
        (
            // Messages wait for an offline session, one of them (and a
            // retained one) past its expiry.
            "message-expiry",
            vec![
                connect(b, 0, CLEAN | SESSION_10S),
                subscribe(b, 0, &[(0, 1), (2, 1)]),
                all(b),
                BrokerOp::Run,
                BrokerOp::Close(b),
                connect(o, 1, CLEAN),
                publish(o, 0, 1, EXPIRY_1S, b"short"),
                publish(o, 0, 1, 1 | EXPIRY_60S, b"long"),
                publish(o, 2, RETAIN | 1, 2 | EXPIRY_1S, b"kept"),
                all(o),
                BrokerOp::Run,
                BrokerOp::Timer(6),
                BrokerOp::Reopen(b, true),
                connect(b, 0, SESSION_10S),
                all(b),
                BrokerOp::Run,
            ],
        ),
        (
            // Two members of `$share/g/a` split QoS 1 messages; one drops
            // with its deliveries unacknowledged and the other gets them.
            "shared-group-handover",
            vec![
                connect(b, 0, CLEAN),
                subscribe(b, 0, &[(9, 1)]),
                all(b),
                connect(o, 1, CLEAN),
                subscribe(o, 0, &[(9, 1)]),
                all(o),
                BrokerOp::Run,
                connect(0, 2, CLEAN),
                publish(0, 0, 1, 0, b"m1"),
                publish(0, 0, 1, 1, b"m2"),
                publish(0, 0, 1, 2, b"m3"),
                publish(0, 0, 1, 3, b"m4"),
                all(0),
                BrokerOp::Run,
                BrokerOp::Close(b),
                BrokerOp::Run,
                BrokerOp::Packet(o, ClientPacket::Puback(0)),
                BrokerOp::Packet(o, ClientPacket::Puback(1)),
                BrokerOp::Packet(o, ClientPacket::Puback(2)),
                BrokerOp::Packet(o, ClientPacket::Puback(3)),
                all(o),
                BrokerOp::Run,
            ],
        ),
    ]
}

fn broker() -> Vec<Seed> {
    let mut out = Vec::new();
    for (b, v) in [(0u8, "v311"), (1, "v5")] {
        for (name, ops) in broker_scenarios(b) {
            out.push(seed(format!("{v}-{name}"), broker_stream::script(0, &ops)));
        }
    }
    for (name, ops) in broker_mqtt5_scenarios() {
        out.push(seed(format!("v5-{name}"), broker_stream::script(0, &ops)));
    }
    out
}

fn client_scenarios() -> Vec<(&'static str, bool, Vec<ClientOp>)> {
    let connack = || {
        [
            ClientOp::Write,
            ClientOp::Packet(BrokerPacket::Connack(0, false)),
            ClientOp::Deliver(0),
        ]
    };
    let with = |tail: Vec<ClientOp>| {
        let mut v = connack().to_vec();
        v.extend(tail);
        v
    };
    vec![
        (
            "connect-disconnect",
            true,
            with(vec![
                ClientOp::Packet(BrokerPacket::Disconnect(0)),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "refused",
            true,
            vec![
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Connack(1, false)),
                ClientOp::Deliver(0),
            ],
        ),
        (
            "subscribe-suback",
            true,
            with(vec![
                ClientOp::Subscribe(3, 2),
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Suback(0, vec![2])),
                ClientOp::Deliver(0),
                ClientOp::Unsubscribe(3),
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Unsuback(1)),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "publish-each-qos",
            true,
            with(vec![
                ClientOp::Publish(0, 0, b"q0".to_vec()),
                ClientOp::Publish(0, 1, b"q1".to_vec()),
                ClientOp::Publish(0, 2 | 4, b"q2".to_vec()),
                ClientOp::Write,
                ClientOp::Write,
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Puback(0)),
                ClientOp::Packet(BrokerPacket::Pubrec(1, false)),
                ClientOp::Deliver(0),
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Pubcomp(1)),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "receive-each-qos",
            true,
            with(vec![
                ClientOp::Packet(BrokerPacket::Publish(0, 0, 0, b"q0".to_vec())),
                ClientOp::Packet(BrokerPacket::Publish(0, 1, 0, b"q1".to_vec())),
                ClientOp::Packet(BrokerPacket::Publish(2, 2 | 4, 1, b"q2".to_vec())),
                ClientOp::Deliver(5),
                ClientOp::Deliver(0),
                ClientOp::Packet(BrokerPacket::Pubrel(1)),
                ClientOp::Deliver(0),
                ClientOp::Write,
                ClientOp::Write,
                ClientOp::Consume,
            ]),
        ),
        (
            "subscribe-write-close",
            true,
            with(vec![
                ClientOp::Subscribe(0, 0),
                ClientOp::Write,
                ClientOp::Close,
                ClientOp::Reconnect,
            ]),
        ),
        (
            "subscribe-queued-close",
            true,
            with(vec![ClientOp::Subscribe(0, 1), ClientOp::Close]),
        ),
        (
            "subscribe-timeout",
            true,
            with(vec![
                ClientOp::Subscribe(0, 1),
                ClientOp::Write,
                ClientOp::Timer(5),
                ClientOp::Packet(BrokerPacket::Suback(0, vec![1])),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "subscribe-cancel-late-suback",
            true,
            with(vec![
                ClientOp::Subscribe(0, 1),
                ClientOp::Write,
                ClientOp::Cancel(1),
                ClientOp::Packet(BrokerPacket::Suback(0, vec![1])),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "suback-at-timeout",
            true,
            with(vec![
                ClientOp::Subscribe(0, 1),
                ClientOp::Write,
                ClientOp::TimeOut(1),
                ClientOp::Packet(BrokerPacket::Suback(0, vec![1])),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "write-error",
            true,
            with(vec![
                ClientOp::Publish(1, 1, b"x".to_vec()),
                ClientOp::WriteStart,
                ClientOp::WriteFail,
                ClientOp::Reconnect,
                ClientOp::Write,
            ]),
        ),
        (
            "persistent-resend",
            false,
            with(vec![
                ClientOp::Publish(0, 1, b"again".to_vec()),
                ClientOp::Publish(0, 2, b"twice".to_vec()),
                ClientOp::Write,
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Pubrec(1, false)),
                ClientOp::Deliver(0),
                ClientOp::Close,
                ClientOp::Reconnect,
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Connack(0, true)),
                ClientOp::Deliver(0),
                ClientOp::Write,
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Puback(0)),
                ClientOp::Packet(BrokerPacket::Pubcomp(1)),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "keep-alive",
            true,
            with(vec![
                ClientOp::Timer(12),
                ClientOp::Write,
                ClientOp::Packet(BrokerPacket::Pingresp),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "hostile-garbage",
            true,
            with(vec![
                ClientOp::Raw(vec![0x10, 0x02, 0x00, 0x00]),
                ClientOp::Deliver(0),
            ]),
        ),
        (
            "unknown-acks",
            true,
            with(vec![
                ClientOp::Packet(BrokerPacket::Suback(5, vec![0])),
                ClientOp::Packet(BrokerPacket::Puback(6)),
                ClientOp::Packet(BrokerPacket::Pubrec(7, false)),
                ClientOp::Deliver(0),
                ClientOp::Write,
            ]),
        ),
    ]
}

fn client() -> Vec<Seed> {
    let mut out = Vec::new();
    for v5 in [false, true] {
        for (name, clean, ops) in client_scenarios() {
            let cfg = client_stream::config_byte(v5, clean);
            let v = if v5 { "v5" } else { "v311" };
            out.push(seed(
                format!("{v}-{name}"),
                client_stream::script(0, cfg, &ops),
            ));
        }
    }
    out
}

fn lifecycle_scenarios() -> Vec<(&'static str, u8, Vec<LifecycleOp>)> {
    use LifecycleOp as L;
    let mixed = lifecycle_ops::config_byte(3, [false, true, false], [true, true, false]);
    let two = lifecycle_ops::config_byte(2, [true, false, false], [true, true, true]);
    let persistent = lifecycle_ops::config_byte(2, [false, true, false], [false, false, true]);
    vec![
        (
            "pubsub-each-qos",
            two,
            vec![
                L::Run(32),
                L::Subscribe(0, 3, 2),
                L::Run(32),
                L::Publish(1, 0, 0, 2),
                L::Publish(1, 0, 1, 2),
                L::Publish(1, 0, 2, 2),
                L::Run(64),
                L::Consume(0),
            ],
        ),
        (
            "retained",
            two,
            vec![
                L::Run(32),
                L::Publish(1, 2, 1 | 4, 4),
                L::Run(32),
                L::Subscribe(0, 2, 1),
                L::Run(32),
                L::Subscribe(0, 3, 0),
                L::Run(64),
            ],
        ),
        (
            "fanout",
            mixed,
            vec![
                L::Run(32),
                L::Subscribe(0, 0, 1),
                L::Subscribe(1, 3, 2),
                L::Run(32),
                L::Publish(2, 0, 1, 3),
                L::Run(64),
            ],
        ),
        (
            "step-by-step",
            two,
            vec![
                L::Write(0, true),
                L::Write(0, false),
                L::Subscribe(0, 0, 1),
                L::WriteStart(0, true),
                L::WriteFail(0, true),
                L::Reconnect(0),
                L::Run(32),
                L::Subscribe(0, 0, 1),
                L::Write(0, true),
                L::Write(0, false),
            ],
        ),
        (
            "timeout-and-cancel",
            two,
            vec![
                L::Run(32),
                L::Subscribe(0, 0, 1),
                L::Write(0, true),
                L::TimeOut(0, 1),
                L::Subscribe(0, 1, 1),
                L::Cancel(0, 2),
                L::Run(32),
            ],
        ),
        (
            "close-with-queue",
            two,
            vec![
                L::Run(32),
                L::Publish(0, 0, 0, 1),
                L::Publish(0, 0, 1, 1),
                L::Subscribe(0, 3, 1),
                L::Close(0),
                L::Reconnect(0),
                L::Run(32),
            ],
        ),
        (
            "persistent-offline",
            persistent,
            vec![
                L::Run(32),
                L::Subscribe(0, 0, 1),
                L::Run(32),
                L::Close(0),
                L::Publish(1, 0, 1, 2),
                L::Run(32),
                L::Reconnect(0),
                L::Run(64),
                L::Tick(30),
            ],
        ),
        (
            "keep-alive",
            two,
            vec![L::Run(32), L::Tick(12), L::Run(32), L::Tick(40), L::Run(32)],
        ),
    ]
}

fn lifecycle() -> Vec<Seed> {
    // Each scenario twice: as configured, and with every client's version
    // swapped (bits 2-4 of the configuration byte).
    let mut out = Vec::new();
    for (name, cfg, ops) in lifecycle_scenarios() {
        out.push(seed(name, lifecycle_ops::script(0, cfg, &ops)));
        out.push(seed(
            format!("{name}-swapped"),
            lifecycle_ops::script(0, cfg ^ 0b1_1100, &ops),
        ));
    }
    out
}

fn codec_decode() -> Vec<Seed> {
    let mut out = Vec::new();
    for v in [Version::V311, Version::V5] {
        let client = [
            (
                "connect",
                ClientPacket::Connect {
                    id: 0,
                    flags: CLEAN,
                },
            ),
            (
                "connect-will",
                ClientPacket::Connect {
                    id: 1,
                    flags: WILL_QOS1 | 16 | 128,
                },
            ),
            (
                "publish-q0",
                ClientPacket::Publish {
                    topic: 0,
                    flags: 0,
                    pid: 0,
                    payload: b"q0".to_vec(),
                },
            ),
            (
                "publish-q1-retained",
                ClientPacket::Publish {
                    topic: 2,
                    flags: 1 | RETAIN,
                    pid: 1,
                    payload: b"kept".to_vec(),
                },
            ),
            (
                "publish-q2",
                ClientPacket::Publish {
                    topic: 3,
                    flags: 2 | 8,
                    pid: 2,
                    payload: b"q2".to_vec(),
                },
            ),
            (
                "subscribe",
                ClientPacket::Subscribe {
                    pid: 0,
                    filters: vec![(3, 2), (5, 0x1d), (9, 1)],
                },
            ),
            (
                "unsubscribe",
                ClientPacket::Unsubscribe {
                    pid: 1,
                    filters: vec![0, 3],
                },
            ),
            ("pubrec", ClientPacket::Pubrec(1, true)),
            ("pubrel", ClientPacket::Pubrel(1)),
            ("disconnect", ClientPacket::Disconnect(true)),
        ];
        let mut session = Vec::new();
        for (name, p) in client {
            if let Some(b) = p.encode(v) {
                session.extend_from_slice(&b);
                out.push(seed(format!("{v}-{name}"), b.to_vec()));
            }
        }
        out.push(seed(format!("{v}-session"), session));
        for (name, p) in [
            ("connack", BrokerPacket::Connack(0, true)),
            ("suback", BrokerPacket::Suback(0, vec![0, 1, 3])),
        ] {
            if let Some(b) = p.encode(v) {
                out.push(seed(format!("{v}-{name}"), b.to_vec()));
            }
        }
    }
    out.push(seed(
        "nanonng-1505-subscribe",
        vec![
            0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78, 0x78, 0x00,
        ],
    ));
    out
}

fn codec_roundtrip() -> Vec<Seed> {
    let mut out = Vec::new();
    for (v, name) in [(0u8, "v311"), (1, "v5")] {
        for t in 0..15u8 {
            let mut data = vec![v, t];
            data.extend((0..48u8).map(|i| i.wrapping_mul(29).wrapping_add(t.wrapping_mul(7))));
            out.push(seed(format!("{name}-type{}", t + 1), data));
        }
    }
    out
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::faults::{Fault, FaultSet};
    use crate::fuzzing::FaultPolicy;

    #[test]
    fn every_seed_runs_clean_and_names_are_unique() {
        for t in Target::ALL {
            let s = seeds(t);
            assert!(
                s.len() >= 8 && s.len() <= 64,
                "{}: {} seeds",
                t.name(),
                s.len()
            );
            let mut names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), s.len(), "{}", t.name());
            for sd in &s {
                if let Err(f) = t.run(&sd.data) {
                    panic!("{} seed {}: {f}", t.name(), sd.name);
                }
            }
        }
    }

    /// The seeds are valid sessions, so each fault the broker scripts are
    /// meant to reach shows up on some seed.
    #[test]
    fn broker_seeds_reach_the_broker_faults() {
        for f in [
            Fault::Nanomq485,
            Fault::FanoutMissingRetain,
            Fault::Nanomq531,
            Fault::Nanonng1505,
            Fault::Nanomq360,
        ] {
            let policy = FaultPolicy::Fixed(FaultSet::only(f));
            let found = seeds(Target::BrokerStream)
                .iter()
                .filter(|s| Target::BrokerStream.run_with(&s.data, &policy).is_err())
                .count();
            assert!(found > 0, "{f}: no seed finds it");
        }
    }

    /// Each MQTT 5 script reaches the fault of its path, and the
    /// shared-group script's hand-over really happens (the fault needs one).
    #[test]
    fn mqtt5_seeds_reach_their_faults() {
        for (f, name) in [
            (
                Fault::MosquittoCve201911778,
                "v5-will-delay-past-session-expiry",
            ),
            (Fault::SharedHandover, "v5-shared-group-handover"),
        ] {
            let policy = FaultPolicy::Fixed(FaultSet::only(f));
            let s = seeds(Target::BrokerStream);
            let Some(sd) = s.iter().find(|s| s.name == name) else {
                panic!("no seed {name}");
            };
            assert!(
                Target::BrokerStream.run_with(&sd.data, &policy).is_err(),
                "{f}: seed {name} does not find it"
            );
        }
    }
}
