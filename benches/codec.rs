//! Codec throughput, ours side by side with the codec inside `rumqttc`
//! (`rumqttc::mqttbytes::v4` and `rumqttc::v5::mqttbytes::v5`), on the same
//! byte streams, both versions: QoS 1 PUBLISH with short ASCII topics
//! (`small_publish`), PUBLISH with random UTF-8 topics and 0-4 KiB payloads
//! (`utf8_publish`), PUBLISH with 1 KiB and 64 KiB payloads, every control
//! packet both accept (`control`: SUBSCRIBE, SUBACK, the four publish
//! acknowledgements, PINGREQ, PINGRESP, UNSUBSCRIBE, UNSUBACK), and streams
//! of PUBACK and of PINGREQ alone, where the per-frame cost is everything.
//!
//! Criterion measures each side (packets/s); afterwards a summary measures
//! both once more, alternating single runs and keeping each side's fastest,
//! and prints our/rumqttc ratios for decode and encode in packets/s and
//! bytes/s. `benches/codec-instructions.sh` counts instructions instead
//! (callgrind), which the machine's load cannot disturb.
//!
//! Our decoder validates more (UTF-8 and U+0000 in topics, wildcards in
//! topic names, minimal lengths, properties); the 5.0 rumqttc decoder keeps
//! topics as unvalidated bytes.

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use mqtls_harness::codec::{
    self, FrameDecoder, MqttString, Packet, PubResponse, Publish, QoS, ReasonCode, Suback,
    Subscribe, Subscription, SubscriptionOptions, Unsuback, Unsubscribe, Version,
};
use rumqttc::mqttbytes::v4 as r4;
use rumqttc::v5::mqttbytes::v5 as r5;
use std::hint::black_box;
use std::time::{Duration, Instant};

const MAX: usize = 1 << 20;

/// Packets per stream for the small-packet mixes, where the per-frame cost
/// is everything.
const SMALL: usize = 20_000;

struct Mix {
    name: &'static str,
    version: Version,
    packets: Vec<Packet>,
    wire: Bytes,
}

/// A deterministic xorshift generator: the same streams on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn publish(topic: &str, payload: Bytes, qos: QoS, id: usize) -> Packet {
    let mut p = Publish::new(MqttString::new(topic).unwrap(), payload);
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = (id % 65_535 + 1) as u16;
    }
    Packet::Publish(p)
}

fn publishes(payload: usize, n: usize) -> Vec<Packet> {
    let body = Bytes::from(vec![b'x'; payload]);
    (0..n)
        .map(|i| {
            publish(
                "sensors/building-7/floor-3/room-12/temperature",
                body.clone(),
                QoS::AtLeastOnce,
                i,
            )
        })
        .collect()
}

/// QoS 1 PUBLISH with short ASCII topics and 16-byte payloads.
fn small_publishes(n: usize) -> Vec<Packet> {
    let body = Bytes::from_static(b"21.5C humid 40%.");
    (0..n)
        .map(|i| {
            publish(
                &format!("s/{}/t", i % 100),
                body.clone(),
                QoS::AtLeastOnce,
                i,
            )
        })
        .collect()
}

/// PUBLISH with topics of random UTF-8 (several scripts, 1 to 4 levels),
/// random QoS and payloads of 0 to 4 KiB.
fn utf8_publishes(n: usize) -> Vec<Packet> {
    const PIECES: &[&str] = &[
        "a",
        "sensor",
        "ü",
        "日本",
        "Ωμέγα",
        "🚀",
        "x-y",
        "temp",
        "é",
        "数据",
        "данные",
        "ç",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let levels: Vec<String> = (0..1 + rng.below(4))
                .map(|_| {
                    (0..1 + rng.below(3))
                        .map(|_| PIECES[rng.below(PIECES.len())])
                        .collect()
                })
                .collect();
            let payload: Vec<u8> = (0..rng.below(4097)).map(|_| rng.next() as u8).collect();
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][rng.below(3)];
            publish(&levels.join("/"), Bytes::from(payload), qos, i)
        })
        .collect()
}

fn subscription(filter: &str, qos: QoS) -> Subscription {
    Subscription {
        filter: MqttString::new(filter).unwrap(),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }
}

/// Every control packet that both codecs accept in `v` (rumqttc reads no
/// AUTH and no 5.0 DISCONNECT without a reason code), in session order.
fn control(n: usize, version: Version) -> Vec<Packet> {
    let mut v = Vec::new();
    for i in 0..n {
        let id = (i % 65_535 + 1) as u16;
        v.push(Packet::Subscribe(Subscribe {
            packet_id: id,
            filters: vec![
                subscription("sensors/+/floor-3/#", QoS::AtLeastOnce),
                subscription("alerts/critical", QoS::ExactlyOnce),
            ],
            properties: Default::default(),
        }));
        v.push(Packet::Suback(Suback {
            packet_id: id,
            reasons: vec![ReasonCode::GrantedQos1, ReasonCode::GrantedQos2],
            properties: Default::default(),
        }));
        v.push(Packet::Puback(PubResponse::new(id)));
        v.push(Packet::Pubrec(PubResponse::new(id)));
        v.push(Packet::Pubrel(PubResponse::new(id)));
        v.push(Packet::Pubcomp(PubResponse::new(id)));
        v.push(Packet::Pingreq);
        v.push(Packet::Pingresp);
        v.push(Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            filters: vec![MqttString::new("alerts/critical").unwrap()],
            properties: Default::default(),
        }));
        v.push(Packet::Unsuback(Unsuback {
            packet_id: id,
            // 3.1.1 UNSUBACK has no reason codes, 5.0 one per filter.
            reasons: match version {
                Version::V311 => Vec::new(),
                Version::V5 => vec![ReasonCode::Success],
            },
            properties: Default::default(),
        }));
    }
    v
}

/// The mixes, by name: built on demand, so that the instruction counter
/// builds only the one it measures.
const MIXES: &[&str] = &[
    "small_publish",
    "utf8_publish",
    "publish_1KiB",
    "publish_64KiB",
    "control",
    "puback",
    "pingreq",
];

fn packets(name: &str, version: Version) -> Vec<Packet> {
    match name {
        "small_publish" => small_publishes(SMALL),
        "utf8_publish" => utf8_publishes(4_000),
        "publish_1KiB" => publishes(1024, 1000),
        "publish_64KiB" => publishes(65_536, 32),
        "control" => control(SMALL / 10, version),
        "puback" => (0..SMALL)
            .map(|i| Packet::Puback(PubResponse::new((i % 65_535 + 1) as u16)))
            .collect(),
        "pingreq" => vec![Packet::Pingreq; SMALL],
        _ => unreachable!("unknown mix {name}"),
    }
}

fn mix(name: &'static str, version: Version) -> Mix {
    let built = packets(name, version);
    let mut w = BytesMut::new();
    for p in &built {
        codec::encode(p, version, &mut w).unwrap();
    }
    let wire = w.freeze();
    // Both sides encode packets decoded from the same wire, so both read
    // their payloads out of one contiguous buffer (as built, each of our
    // packets had an allocation of its own, while rumqttc's were decoded).
    let mut d = FrameDecoder::new(Some(version), MAX);
    d.extend_owned(BytesMut::from(&wire[..]));
    let packets: Vec<Packet> = std::iter::from_fn(|| d.next_packet().unwrap()).collect();
    assert_eq!(
        packets, built,
        "{name}: the wire decodes to the packets it was built from"
    );
    Mix {
        name,
        version,
        packets,
        wire,
    }
}

/// Every mix in both versions, each built when reached.
fn mixes() -> impl Iterator<Item = Mix> {
    [Version::V311, Version::V5]
        .into_iter()
        .flat_map(|v| MIXES.iter().map(move |name| mix(name, v)))
}

fn vname(v: Version) -> &'static str {
    match v {
        Version::V311 => "v311",
        Version::V5 => "v5",
    }
}

#[inline(never)]
fn ours_decode(buf: BytesMut, version: Version) -> usize {
    let mut d = FrameDecoder::new(Some(version), MAX);
    d.extend_owned(buf);
    let mut n = 0;
    while let Some(p) = d.next_packet().unwrap() {
        black_box(&p);
        n += 1;
    }
    n
}

#[inline(never)]
fn theirs_decode(mut buf: BytesMut, version: Version) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        match version {
            Version::V311 => {
                black_box(r4::Packet::read(&mut buf, MAX).unwrap());
            }
            Version::V5 => {
                black_box(r5::Packet::read(&mut buf, Some(MAX as u32)).unwrap());
            }
        }
        n += 1;
    }
    n
}

enum Theirs {
    V4(Vec<r4::Packet>),
    V5(Vec<r5::Packet>),
}

fn theirs_packets(m: &Mix) -> Theirs {
    let mut buf = BytesMut::from(&m.wire[..]);
    match m.version {
        Version::V311 => Theirs::V4(
            std::iter::from_fn(|| {
                (!buf.is_empty()).then(|| r4::Packet::read(&mut buf, MAX).unwrap())
            })
            .collect(),
        ),
        Version::V5 => Theirs::V5(
            std::iter::from_fn(|| {
                (!buf.is_empty()).then(|| r5::Packet::read(&mut buf, Some(MAX as u32)).unwrap())
            })
            .collect(),
        ),
    }
}

#[inline(never)]
fn ours_encode(packets: &[Packet], version: Version, out: &mut BytesMut) {
    out.clear();
    for p in packets {
        codec::encode(p, version, out).unwrap();
    }
}

#[inline(never)]
fn theirs_encode(t: &Theirs, out: &mut BytesMut) {
    out.clear();
    match t {
        Theirs::V4(ps) => {
            for p in ps {
                p.write(out, MAX).unwrap();
            }
        }
        Theirs::V5(ps) => {
            for p in ps {
                p.write(out, Some(MAX as u32)).unwrap();
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    for m in mixes() {
        // Both decode every packet of the stream (theirs_packets unwraps).
        let theirs = theirs_packets(&m);
        assert_eq!(
            ours_decode(BytesMut::from(&m.wire[..]), m.version),
            m.packets.len()
        );

        let mut g = c.benchmark_group(format!("{}/{}", vname(m.version), m.name));
        g.throughput(Throughput::Elements(m.packets.len() as u64));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.sample_size(20);
        let v = m.version;
        g.bench_function("decode/ours", |b| {
            b.iter_batched(
                || BytesMut::from(&m.wire[..]),
                |buf| ours_decode(buf, v),
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/rumqttc", |b| {
            b.iter_batched(
                || BytesMut::from(&m.wire[..]),
                |buf| theirs_decode(buf, v),
                BatchSize::LargeInput,
            )
        });
        let mut out = BytesMut::with_capacity(m.wire.len());
        g.bench_function("encode/ours", |b| {
            b.iter(|| ours_encode(&m.packets, v, &mut out))
        });
        g.bench_function("encode/rumqttc", |b| {
            b.iter(|| theirs_encode(&theirs, &mut out))
        });
        g.finish();
    }
}

/// The fastest run of `a` and of `b`, alternating single runs for about
/// `budget` in all, setup excluded. Other processes only ever add time, so
/// on a shared, loaded machine the fastest run is the stable estimate of
/// each side's cost, and alternating runs exposes both sides to the same
/// conditions (block-wise means drifted by 20% between identical runs).
fn fastest_pair<S>(
    budget: Duration,
    mut setup: impl FnMut() -> S,
    mut a: impl FnMut(S),
    mut b: impl FnMut(S),
) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed() < budget || runs < 5 {
        let s = setup();
        let t = Instant::now();
        a(s);
        best_a = best_a.min(t.elapsed().as_secs_f64());
        let s = setup();
        let t = Instant::now();
        b(s);
        best_b = best_b.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    (best_a, best_b)
}

fn summary() {
    println!(
        "\ncodec throughput, ours vs rumqttc (same streams, alternating runs, fastest of each; ratio > 1 means ours is faster)"
    );
    println!(
        "{:<5} {:<14} {:>8} {:>14} {:>12} {:>8}   {:>14} {:>12} {:>8}",
        "ver", "mix", "bytes/pk", "decode pk/s", "MB/s", "ratio", "encode pk/s", "MB/s", "ratio"
    );
    let budget = Duration::from_millis(1000);
    for m in mixes() {
        let v = m.version;
        let theirs = theirs_packets(&m);
        let n = m.packets.len() as f64;
        let bytes = m.wire.len() as f64;
        let mut out = BytesMut::with_capacity(m.wire.len());
        let (od, td) = fastest_pair(
            budget,
            || BytesMut::from(&m.wire[..]),
            |b| {
                black_box(ours_decode(b, v));
            },
            |b| {
                black_box(theirs_decode(b, v));
            },
        );
        let mut out2 = BytesMut::with_capacity(m.wire.len());
        let (oe, te) = fastest_pair(
            budget,
            || (),
            |_| ours_encode(&m.packets, v, &mut out),
            |_| theirs_encode(&theirs, &mut out2),
        );
        println!(
            "{:<5} {:<14} {:>8.0} {:>14.0} {:>12.0} {:>7.2}x   {:>14.0} {:>12.0} {:>7.2}x",
            vname(v),
            m.name,
            bytes / n,
            n / od,
            bytes / od / 1e6,
            td / od,
            n / oe,
            bytes / oe / 1e6,
            te / oe,
        );
    }
}

/// Runs each side for the mix named `version/name`, for
/// an instruction counter (`valgrind --tool=callgrind`): timings on a
/// loaded machine drift, instruction counts do not. Each side is called
/// twice, the first call warming the allocator, so inclusive costs divided
/// by two are per-stream figures.
fn once(filter: &str) {
    for (v, name) in [Version::V311, Version::V5]
        .into_iter()
        .flat_map(|v| MIXES.iter().map(move |name| (v, *name)))
    {
        if format!("{}/{name}", vname(v)) != filter {
            continue;
        }
        let m = mix(name, v);
        let theirs = theirs_packets(&m);
        let mut out = BytesMut::with_capacity(m.wire.len());
        for _ in 0..2 {
            black_box(ours_decode(BytesMut::from(&m.wire[..]), v));
            black_box(theirs_decode(BytesMut::from(&m.wire[..]), v));
            ours_encode(&m.packets, v, &mut out);
            theirs_encode(&theirs, &mut out);
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(filter) = std::env::var("CODEC_BENCH_ONCE") {
        once(&filter);
        return;
    }
    // For benches/codec-instructions.sh: each mix and its packet count.
    if std::env::var_os("CODEC_BENCH_LIST").is_some() {
        for m in mixes() {
            println!("{}/{} {}", vname(m.version), m.name, m.packets.len());
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Profiling (`--profile-time`) and listing runs want criterion alone.
    if !std::env::args().any(|a| a == "--profile-time" || a == "--list") {
        summary();
    }
}
