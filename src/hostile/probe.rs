//! `mqtls probe`: named scenarios against an external broker, each followed
//! by a liveness check (a fresh client must still connect, subscribe and
//! receive).
//!
//! Every loop is bounded in count and in time: the probe attacks a broker
//! on purpose, so it must never turn into an unbounded load generator.

use super::HostileError;
use super::broker_process::BrokerProcess;
use super::finding::{Finding, FrameFilter, Rule, serialize_signature_ids};
use super::packets;
use super::protocol;
use super::raw_client::{RawClient, Target, liveness};
use super::sanitizer;
use super::scenario::ZOO_1505;
use super::session::ReadEnd;
use crate::codec::{Packet, QoS};
use crate::tls::ClientTls;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Corpus files read at most.
pub const MAX_CORPUS_FILES: usize = 200;
/// Largest corpus file sent.
pub const MAX_CORPUS_FILE: u64 = 1 << 20;
/// Upper bound of `--handshakes` and `--half-open`.
pub const MAX_CONNECTIONS: usize = 1000;

/// How the broker fared in one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It answered as the specification requires and still serves.
    AsSpecified,
    /// It still serves; the specification requires no particular answer,
    /// or its answer differs from the one required (see the answer).
    Survived,
    /// The liveness check failed after the scenario.
    StoppedServing,
    /// Not run: the broker had already stopped serving.
    NotRun,
}

impl Verdict {
    /// True when the broker stopped serving.
    pub fn stopped(self) -> bool {
        self == Verdict::StoppedServing
    }

    /// The table label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::AsSpecified => "as specified",
            Verdict::Survived => "survived",
            Verdict::StoppedServing => "STOPPED SERVING",
            Verdict::NotRun => "not run",
        }
    }
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// The scenario's name.
    pub name: String,
    /// What it sends.
    pub description: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What the broker did in answer.
    pub answer: String,
    /// The liveness check's result.
    pub liveness: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// What the broker did that the specification forbids, and what its
    /// sanitizers reported during the scenario; the report lists each once,
    /// so a scenario names them by signature.
    #[serde(serialize_with = "serialize_signature_ids")]
    pub findings: Vec<Finding>,
}

/// The probe's knobs.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Time limit of each step (connect, read, liveness).
    pub step: Duration,
    /// Concurrent handshakes with broken certificates.
    pub handshakes: usize,
    /// Half-open handshakes held at once.
    pub half_open: usize,
    /// How long the half-open handshakes are held.
    pub hold: Duration,
    /// Raw packet files sent after CONNECT, one scenario each.
    pub corpus: Option<PathBuf>,
    /// Only scenarios whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            step: Duration::from_secs(5),
            handshakes: 50,
            half_open: 100,
            hold: Duration::from_secs(3),
            corpus: None,
            only: Vec::new(),
        }
    }
}

/// A malformed packet of the built-in table.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Its name.
    pub name: String,
    /// What is wrong with it.
    pub why: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Sent as the first packet, without CONNECT.
    pub before_connect: bool,
    /// The normative statement that makes the broker close the connection
    /// on it (MQTT 3.1.1: the probe speaks 3.1.1).
    pub rule: Option<Rule>,
}

fn m(name: &str, why: &str, rule: (&str, &str), bytes: &[u8]) -> Malformed {
    Malformed {
        name: name.to_owned(),
        why: why.to_owned(),
        bytes: bytes.to_vec(),
        before_connect: false,
        rule: Some(Rule::new(rule.0, rule.1)),
    }
}

/// MQTT-4.8.0-1, which every malformed packet without a rule of its own
/// falls under.
const CLOSE: (&str, &str) = (
    "MQTT-4.8.0-1",
    "Unless stated otherwise, if either the Server or Client encounters a protocol violation, it MUST close the Network Connection on which it received that Control Packet which caused the protocol violation.",
);

/// The built-in malformed packets, each sent after a good CONNECT (one
/// before it), each with the statement that makes the broker close the
/// connection.
pub fn malformed_table() -> Vec<Malformed> {
    let mut t = vec![
        m(
            "zoo-1505",
            "ZOO.md nanonng-1505: SUBSCRIBE whose second filter claims 100 bytes where 3 remain",
            CLOSE,
            &ZOO_1505,
        ),
        m(
            "remaining-length-5-bytes",
            "remaining length as a 5-byte varint",
            CLOSE,
            &[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ),
        m(
            "reserved-type-0",
            "packet type 0 (reserved)",
            (
                "MQTT-4.8.0-1",
                "Control packet type 0 is Reserved, \"Forbidden\" (MQTT 3.1.1 §2.2.1, Table 2.1): a protocol violation, on which the Server MUST close the Network Connection.",
            ),
            &[0x00, 0x00],
        ),
        m(
            "subscribe-flags-0",
            "SUBSCRIBE with header flags 0000 (must be 0010)",
            (
                "MQTT-3.8.1-1",
                "Bits 3,2,1 and 0 of the fixed header of the SUBSCRIBE Control Packet are reserved and MUST be set to 0,0,1 and 0 respectively. The Server MUST treat any other value as malformed and close the Network Connection.",
            ),
            &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00],
        ),
        m(
            "subscribe-no-filters",
            "SUBSCRIBE without any topic filter",
            (
                "MQTT-3.8.3-3",
                "The payload of a SUBSCRIBE packet MUST contain at least one Topic Filter / QoS pair. A SUBSCRIBE packet with no payload is a protocol violation.",
            ),
            &[0x82, 0x02, 0x00, 0x01],
        ),
        m(
            "subscribe-packet-id-0",
            "SUBSCRIBE with packet identifier 0",
            (
                "MQTT-2.3.1-1",
                "SUBSCRIBE, UNSUBSCRIBE, and PUBLISH (in cases where QoS > 0) Control Packets MUST contain a non-zero 16-bit Packet Identifier.",
            ),
            &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00],
        ),
        m(
            "subscribe-qos-3",
            "SUBSCRIBE asking for QoS 3",
            (
                "MQTT-3.8.3-4",
                "The Server MUST treat a SUBSCRIBE packet as malformed and close the Network Connection if any of Reserved bits in the payload are non-zero, or QoS is not 0,1 or 2.",
            ),
            &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03],
        ),
        m(
            "publish-qos-3",
            "PUBLISH with QoS 3",
            (
                "MQTT-3.3.1-4",
                "A PUBLISH Packet MUST NOT have both QoS bits set to 1. If a Server or Client receives a PUBLISH Packet which has both QoS bits set to 1 it MUST close the Network Connection.",
            ),
            &[0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01],
        ),
        m(
            "publish-wildcard-topic",
            "PUBLISH to the topic `#`",
            (
                "MQTT-3.3.2-2",
                "The Topic Name in the PUBLISH Packet MUST NOT contain wildcard characters.",
            ),
            &[0x30, 0x03, 0x00, 0x01, 0x23],
        ),
        m(
            "publish-invalid-utf8",
            "PUBLISH topic that is not UTF-8 (c3 28)",
            (
                "MQTT-1.5.3-1",
                "The character data in a UTF-8 encoded string MUST be well-formed UTF-8. If a Server or Client receives a Control Packet containing ill-formed UTF-8 it MUST close the Network Connection.",
            ),
            &[0x30, 0x04, 0x00, 0x02, 0xc3, 0x28],
        ),
        m(
            "publish-nul-in-topic",
            "PUBLISH topic holding U+0000",
            (
                "MQTT-1.5.3-2",
                "A UTF-8 encoded string MUST NOT include an encoding of the null character U+0000. If a receiver (Server or Client) receives a Control Packet containing U+0000 it MUST close the Network Connection.",
            ),
            &[0x30, 0x04, 0x00, 0x02, 0x61, 0x00],
        ),
        m(
            "string-past-packet",
            "PUBLISH topic length 255 in a 4-byte packet",
            CLOSE,
            &[0x30, 0x04, 0x00, 0xff, 0x61, 0x62],
        ),
        m(
            "pubrel-flags-0",
            "PUBREL with header flags 0000 (must be 0010)",
            (
                "MQTT-3.6.1-1",
                "Bits 3,2,1 and 0 of the fixed header in the PUBREL Control Packet are reserved and MUST be set to 0,0,1 and 0 respectively. The Server MUST treat any other value as malformed and close the Network Connection.",
            ),
            &[0x60, 0x02, 0x00, 0x01],
        ),
        m(
            "unsubscribe-empty",
            "UNSUBSCRIBE without any topic filter",
            (
                "MQTT-3.10.3-2",
                "The Payload of an UNSUBSCRIBE packet MUST contain at least one Topic Filter. An UNSUBSCRIBE packet with no payload is a protocol violation.",
            ),
            &[0xa2, 0x02, 0x00, 0x01],
        ),
        m(
            "pingreq-with-body",
            "PINGREQ with remaining length 1",
            (
                "MQTT-4.8.0-1",
                "PINGREQ has no variable header and no payload (MQTT 3.1.1 §3.12): one with a body is malformed, and the Server MUST close the Network Connection.",
            ),
            &[0xc0, 0x01, 0x00],
        ),
    ];
    if let Some(connect) = packets::connect("mqtls-probe-again")
        .and_then(|p| packets::encode(&p, crate::codec::Version::V311))
    {
        t.push(m(
            "second-connect",
            "a second CONNECT on the same connection (MQTT-3.1.0-2)",
            (protocol::SECOND_CONNECT.v311, protocol::SECOND_CONNECT.text),
            &connect,
        ));
    }
    t.push(Malformed {
        name: "subscribe-before-connect".to_owned(),
        why: "SUBSCRIBE as the first packet, before CONNECT (MQTT-3.1.0-1)".to_owned(),
        bytes: vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00],
        before_connect: true,
        rule: Some(protocol::FIRST_PACKET_CONNECT.rule(crate::codec::Version::V311)),
    });
    t
}

/// A server never sends DISCONNECT in MQTT 3.1.1.
pub const NO_SERVER_DISCONNECT_311: (&str, &str) = (
    "MQTT 3.1.1 §3.14",
    "DISCONNECT is the final Control Packet sent from the Client to the Server (the Server sends none in 3.1.1), and it has no variable header and no payload: its Remaining Length is 0.",
);

/// Reads up to [`MAX_CORPUS_FILES`] files of `dir` (sorted by name) as raw
/// packets.
pub fn read_corpus(dir: &Path) -> Result<Vec<Malformed>, HostileError> {
    let err = |source| HostileError::Corpus {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.truncate(MAX_CORPUS_FILES);
    let mut out = Vec::new();
    for path in paths {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == 0 || len > MAX_CORPUS_FILE {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| HostileError::Corpus {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(Malformed {
            name: format!("corpus/{name}"),
            why: format!("{} bytes from {}", bytes.len(), path.display()),
            bytes,
            before_connect: false,
            rule: None,
        });
    }
    Ok(out)
}

/// What a scenario observed: whether the broker did what the specification
/// requires, and the answer in words.
struct Observed {
    as_specified: bool,
    answer: String,
    findings: Vec<Finding>,
}

fn observed(as_specified: bool, answer: impl Into<String>) -> Observed {
    Observed {
        as_specified,
        answer: answer.into(),
        findings: Vec::new(),
    }
}

/// The probe's scenario kinds.
#[derive(Debug, Clone)]
enum Kind {
    Malformed(Malformed),
    SubscribeThenDrop { reset: bool },
    Qos2Publisher { cut_after: u8 },
    Qos2Subscriber { cut_after: u8 },
    BrokenCertificates,
    HalfOpen,
    OversizePublish,
}

struct Planned {
    name: String,
    description: String,
    kind: Kind,
}

fn plan(settings: &ProbeSettings, corpus: Vec<Malformed>) -> Vec<Planned> {
    let mut p: Vec<Planned> = malformed_table()
        .into_iter()
        .chain(corpus)
        .map(|m| Planned {
            name: if m.name.starts_with("corpus/") {
                m.name.clone()
            } else {
                format!("malformed/{}", m.name)
            },
            description: if m.rule.is_some() {
                format!("{}; the broker must close the connection", m.why)
            } else {
                format!(
                    "{}, sent after CONNECT; whatever it does, the broker must keep serving",
                    m.why
                )
            },
            kind: Kind::Malformed(m),
        })
        .collect();
    let mut add = |name: &str, description: String, kind: Kind| {
        p.push(Planned {
            name: name.to_owned(),
            description,
            kind,
        })
    };
    add(
        "subscribe-then-close",
        "SUBSCRIBE, then close_notify before the SUBACK".into(),
        Kind::SubscribeThenDrop { reset: false },
    );
    add(
        "subscribe-then-reset",
        "SUBSCRIBE, then a TCP reset before the SUBACK".into(),
        Kind::SubscribeThenDrop { reset: true },
    );
    for (cut, what) in [(0, "PUBLISH"), (1, "PUBREC"), (2, "PUBREL")] {
        add(
            &format!("qos2-publisher-cut-after-{}", what.to_lowercase()),
            format!("QoS 2 publisher drops the connection right after the {what} step"),
            Kind::Qos2Publisher { cut_after: cut },
        );
    }
    for (cut, what) in [(0, "PUBLISH"), (1, "PUBREC"), (2, "PUBREL")] {
        add(
            &format!("qos2-subscriber-cut-after-{}", what.to_lowercase()),
            format!(
                "QoS 2 subscriber drops the connection right after the {what} step of a delivery"
            ),
            Kind::Qos2Subscriber { cut_after: cut },
        );
    }
    add(
        "broken-cert-handshakes",
        format!(
            "{} simultaneous handshakes: half present a client certificate from an untrusted CA, half reject the broker's certificate",
            settings.handshakes
        ),
        Kind::BrokenCertificates,
    );
    add(
        "half-open-handshakes",
        format!(
            "{} TCP connections stuck in the handshake (half silent, half a partial ClientHello record header) held for {:?}; a good client must be served meanwhile",
            settings.half_open, settings.hold
        ),
        Kind::HalfOpen,
    );
    add(
        "oversize-publish",
        "PUBLISH whose remaining length claims 268435455 bytes, then 256 KiB of it and silence"
            .into(),
        Kind::OversizePublish,
    );
    if !settings.only.is_empty() {
        p.retain(|s| settings.only.iter().any(|o| s.name.contains(o.as_str())));
    }
    p
}

/// Runs the probe: a liveness check first (an error if it fails: nothing
/// after it would mean anything), then each scenario and its liveness check.
/// After a scenario that stopped the broker, the rest are not run.
///
/// With `broker` (a broker the probe started), what it wrote during each
/// scenario is parsed for sanitizer reports, which become that scenario's
/// findings (signatures built with `filter`).
pub async fn run(
    target: &Target,
    rogue: &ClientTls,
    distrusting: &ClientTls,
    settings: &ProbeSettings,
    mut broker: Option<&mut BrokerProcess>,
    filter: &FrameFilter,
    mut progress: impl FnMut(&ProbeResult),
) -> Result<Vec<ProbeResult>, HostileError> {
    let corpus = match &settings.corpus {
        Some(dir) => read_corpus(dir)?,
        None => Vec::new(),
    };
    liveness(target, 0, settings.step)
        .await
        .map_err(|reason| HostileError::BrokerNotServing {
            addr: target.addr.to_string(),
            reason,
        })?;
    let mut results = Vec::new();
    let mut stopped = false;
    for (i, planned) in plan(settings, corpus).into_iter().enumerate() {
        let started = Instant::now();
        if stopped {
            results.push(ProbeResult {
                name: planned.name,
                description: planned.description,
                verdict: Verdict::NotRun,
                answer: "-".into(),
                liveness: "-".into(),
                seconds: 0.0,
                findings: Vec::new(),
            });
            continue;
        }
        let n = i + 1;
        let obs = execute(&planned.kind, target, rogue, distrusting, settings, n).await;
        // A broker busy cleaning up gets one retry before it counts as down.
        let mut live = liveness(target, n, settings.step).await;
        if live.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            live = liveness(target, n + 10_000, settings.step).await;
        }
        let (verdict, mut liveness_text) = match live {
            Ok(()) if obs.as_specified => (Verdict::AsSpecified, "served".to_owned()),
            Ok(()) => (Verdict::Survived, "served".to_owned()),
            Err(e) => {
                stopped = true;
                (Verdict::StoppedServing, e)
            }
        };
        let mut findings = obs.findings;
        if let Some(b) = broker.as_deref_mut() {
            // Reports of a crash arrive as the process dies: give them a moment.
            if stopped {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            findings.extend(sanitizer::findings(&b.drain(), filter));
            if let Some(exit) = b.exited() {
                liveness_text.push_str(&format!(" (the broker exited: {exit})"));
            }
        }
        let result = ProbeResult {
            name: planned.name,
            description: planned.description,
            verdict,
            answer: obs.answer,
            liveness: liveness_text,
            seconds: started.elapsed().as_secs_f64(),
            findings,
        };
        progress(&result);
        results.push(result);
    }
    Ok(results)
}

async fn execute(
    kind: &Kind,
    target: &Target,
    rogue: &ClientTls,
    distrusting: &ClientTls,
    s: &ProbeSettings,
    n: usize,
) -> Observed {
    let outcome = match kind {
        Kind::Malformed(m) => malformed(target, m, s.step, n).await,
        Kind::SubscribeThenDrop { reset } => subscribe_then_drop(target, *reset, s.step, n).await,
        Kind::Qos2Publisher { cut_after } => qos2_publisher(target, *cut_after, s.step, n).await,
        Kind::Qos2Subscriber { cut_after } => qos2_subscriber(target, *cut_after, s.step, n).await,
        Kind::BrokenCertificates => Ok(broken_certificates(target, rogue, distrusting, s).await),
        Kind::HalfOpen => Ok(half_open(target, s, n).await),
        Kind::OversizePublish => oversize(target, s.step, n).await,
    };
    outcome.unwrap_or_else(|e| observed(false, format!("scenario could not run: {e}")))
}

fn client_id(n: usize, role: &str) -> String {
    format!("mqtls-probe-{n}-{role}")
}

async fn malformed(
    target: &Target,
    m: &Malformed,
    step: Duration,
    n: usize,
) -> Result<Observed, String> {
    let mut c = if m.before_connect {
        RawClient::open(target, step).await?
    } else {
        RawClient::connect(target, &client_id(n, "malformed"), step).await?
    };
    c.send_raw(&m.bytes)
        .await
        .map_err(|e| format!("sending the packet: {e}"))?;
    let mut answered = Vec::new();
    let deadline = tokio::time::Instant::now() + step;
    let mut obs = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_packet(left).await {
            Ok(p) => answered.push(p.packet_type().to_string()),
            Err(ReadEnd::Timeout) => {
                let got = if answered.is_empty() {
                    String::new()
                } else {
                    format!("answered {}, ", answered.join(", "))
                };
                break observed(false, format!("{got}kept the connection open for {step:?}"));
            }
            Err(end) => {
                let got = if answered.is_empty() {
                    String::new()
                } else {
                    format!("answered {}, then ", answered.join(", "))
                };
                // After an answer our codec rejects, what counts is whether
                // the broker then closes.
                let (closed, then) = match end {
                    ReadEnd::Closed | ReadEnd::Broken(_) => (true, String::new()),
                    ReadEnd::Malformed(_) => {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        if c.wait_closed(left).await {
                            (true, ", then closed the connection".to_owned())
                        } else {
                            (
                                false,
                                format!(", and kept the connection open for {step:?}"),
                            )
                        }
                    }
                    ReadEnd::Timeout => (false, String::new()),
                };
                break observed(closed, format!("{got}{end}{then}"));
            }
        }
    };
    if let (false, Some(rule)) = (obs.as_specified, &m.rule) {
        let what = format!("did not close the connection after {}", m.why);
        obs.findings
            .push(Finding::protocol(rule.clone(), what, obs.answer.clone()));
    }
    if let Some(len) = c.disconnects().first() {
        let (id, text) = NO_SERVER_DISCONNECT_311;
        let extra = len.saturating_sub(2);
        let what = if extra > 0 {
            "answered with a DISCONNECT on an MQTT 3.1.1 connection, carrying bytes after its fixed header".to_owned()
        } else {
            "answered with a DISCONNECT on an MQTT 3.1.1 connection".to_owned()
        };
        obs.findings.push(Finding::protocol(
            Rule::new(id, text),
            what,
            format!("a {len}-byte DISCONNECT after {}; {}", m.why, obs.answer),
        ));
    }
    c.close().await;
    Ok(obs)
}

async fn subscribe_then_drop(
    target: &Target,
    reset: bool,
    step: Duration,
    n: usize,
) -> Result<Observed, String> {
    let mut c = RawClient::connect(target, &client_id(n, "sub"), step).await?;
    let sub = packets::subscribe(1, &format!("mqtls/probe/{n}"), QoS::AtLeastOnce)
        .ok_or("cannot build SUBSCRIBE")?;
    c.send(&sub).await?;
    if reset {
        c.reset();
    } else {
        c.close().await;
    }
    Ok(observed(
        false,
        "nothing required (connection gone before the SUBACK)",
    ))
}

/// Publisher side: 0 cut right after PUBLISH, 1 after receiving PUBREC,
/// 2 after sending PUBREL (before PUBCOMP).
async fn qos2_publisher(
    target: &Target,
    cut_after: u8,
    step: Duration,
    n: usize,
) -> Result<Observed, String> {
    let topic = format!("mqtls/probe/{n}");
    let mut c = RawClient::connect(target, &client_id(n, "pub"), step).await?;
    let p = packets::publish(&topic, QoS::ExactlyOnce, 7).ok_or("cannot build PUBLISH")?;
    c.send(&p).await?;
    if cut_after == 0 {
        c.reset();
        return Ok(observed(false, "nothing required (cut before PUBREC)"));
    }
    c.expect(
        step,
        "PUBREC",
        |p| matches!(p, Packet::Pubrec(a) if a.packet_id == 7),
    )
    .await?;
    if cut_after == 1 {
        c.reset();
        return Ok(observed(true, "PUBREC as required, then we cut"));
    }
    c.send(&Packet::Pubrel(packets::ack(7))).await?;
    c.reset();
    Ok(observed(
        true,
        "PUBREC as required; we sent PUBREL and cut before PUBCOMP",
    ))
}

/// Subscriber side: 0 cut right after receiving the PUBLISH, 1 after
/// sending PUBREC, 2 after receiving PUBREL (before PUBCOMP).
async fn qos2_subscriber(
    target: &Target,
    cut_after: u8,
    step: Duration,
    n: usize,
) -> Result<Observed, String> {
    let topic = format!("mqtls/probe/{n}");
    let mut sub = RawClient::connect(target, &client_id(n, "sub"), step).await?;
    let s = packets::subscribe(1, &topic, QoS::ExactlyOnce).ok_or("cannot build SUBSCRIBE")?;
    sub.send(&s).await?;
    sub.expect(step, "SUBACK", |p| matches!(p, Packet::Suback(_)))
        .await?;
    let mut publ = RawClient::connect(target, &client_id(n, "pub"), step).await?;
    let p = packets::publish(&topic, QoS::ExactlyOnce, 9).ok_or("cannot build PUBLISH")?;
    publ.send(&p).await?;
    publ.expect(step, "PUBREC", |p| matches!(p, Packet::Pubrec(_)))
        .await?;
    publ.send(&Packet::Pubrel(packets::ack(9))).await?;
    publ.expect(step, "PUBCOMP", |p| matches!(p, Packet::Pubcomp(_)))
        .await?;
    publ.close().await;
    let delivered = sub
        .expect(
            step,
            "PUBLISH",
            |p| matches!(p, Packet::Publish(m) if m.topic.as_str() == topic),
        )
        .await?;
    let id = delivered.packet_id().unwrap_or(0);
    if cut_after == 0 {
        sub.reset();
        return Ok(observed(
            true,
            "QoS 2 delivery as required, cut before PUBREC",
        ));
    }
    sub.send(&Packet::Pubrec(packets::ack(id))).await?;
    if cut_after == 1 {
        sub.reset();
        return Ok(observed(
            true,
            "QoS 2 delivery as required; we sent PUBREC and cut",
        ));
    }
    sub.expect(
        step,
        "PUBREL",
        |p| matches!(p, Packet::Pubrel(a) if a.packet_id == id),
    )
    .await?;
    sub.reset();
    Ok(observed(
        true,
        "QoS 2 delivery and PUBREL as required; cut before PUBCOMP",
    ))
}

async fn broken_certificates(
    target: &Target,
    rogue: &ClientTls,
    distrusting: &ClientTls,
    s: &ProbeSettings,
) -> Observed {
    let count = s.handshakes.min(MAX_CONNECTIONS);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let target = target.clone();
        let tls = if i % 2 == 0 {
            rogue.clone()
        } else {
            distrusting.clone()
        };
        let step = s.step;
        tasks.spawn(async move {
            match RawClient::open_with(&target, &tls, step).await {
                // TLS 1.3: the broker's verdict on our certificate arrives
                // on the first read.
                Ok(mut c) => match c.next_packet(Duration::from_millis(500)).await {
                    Err(ReadEnd::Timeout) => (i % 2, true),
                    _ => (i % 2, false),
                },
                Err(_) => (i % 2, false),
            }
        });
    }
    let (mut rogue_accepted, mut distrust_completed) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((0, true)) => rogue_accepted += 1,
            Ok((_, true)) => distrust_completed += 1,
            _ => {}
        }
    }
    let rogue_total = count.div_ceil(2);
    observed(
        distrust_completed == 0,
        format!(
            "{} of {rogue_total} untrusted client certificates refused ({rogue_accepted} accepted: the broker does not ask for one, or does not check it); {distrust_completed} handshakes completed that our client had to abort",
            rogue_total - rogue_accepted
        ),
    )
}

async fn half_open(target: &Target, s: &ProbeSettings, n: usize) -> Observed {
    let count = s.half_open.min(MAX_CONNECTIONS);
    let mut held = Vec::new();
    for i in 0..count {
        let Ok(Ok(mut tcp)) =
            tokio::time::timeout(s.step, tokio::net::TcpStream::connect(target.addr)).await
        else {
            break;
        };
        if i % 2 == 1 {
            // A TLS handshake record header promising 512 bytes that never come.
            let _ = tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0x16, 0x03, 0x01, 0x02, 0x00])
                .await;
        }
        held.push(tcp);
    }
    let opened = held.len();
    let hold = tokio::time::sleep(s.hold);
    let during = liveness(target, n + 20_000, s.step).await;
    hold.await;
    drop(held);
    match during {
        Ok(()) => observed(
            true,
            format!("{opened} half-open handshakes held; a good client was served meanwhile"),
        ),
        Err(e) => observed(
            false,
            format!(
                "{opened} half-open handshakes held; a good client was NOT served meanwhile ({e})"
            ),
        ),
    }
}

async fn oversize(target: &Target, step: Duration, n: usize) -> Result<Observed, String> {
    let mut c = RawClient::connect(target, &client_id(n, "big"), step).await?;
    // PUBLISH QoS 0, remaining length 268435455, topic `a`.
    let mut head = vec![0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, b'a'];
    head.resize(256 * 1024, b'x');
    if let Err(e) = c.send_raw(&head).await {
        return Ok(observed(
            false,
            format!("stopped reading before 256 KiB: {e}"),
        ));
    }
    match c.next_packet(step).await {
        Err(ReadEnd::Timeout) => {
            c.close().await;
            Ok(observed(
                false,
                format!("kept the connection open for {step:?} (it accepts packets that large)"),
            ))
        }
        Err(end) => Ok(observed(false, format!("{end} (a size limit)"))),
        Ok(p) => Ok(observed(false, format!("answered {}", p.packet_type()))),
    }
}
