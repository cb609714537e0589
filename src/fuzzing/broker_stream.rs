//! `broker_stream`: several clients' byte streams, cut at arbitrary
//! points and interleaved with transport events, into the broker kernel
//! over the in-memory transport; then shutdown and the ledger audit.

use super::script::{Script, ScriptWriter};
use super::shapes::{ClientPacket, encode};
use super::{FaultPolicy, Finding, Target, audited};
use crate::broker::BrokerConfig;
use crate::codec::{Version, arbitrary};
use crate::faults::FaultSet;
use crate::kernels::outbox::WriteResult;
use crate::ledger::{Audit, Ledger, Mode};
use crate::sim::{Dir, Sim};

/// Connections a script drives at once (a closed one can be reopened).
pub const LINKS: usize = 4;
/// Operations read from one input at most.
const MAX_OPS: usize = 256;
/// Bytes one connection may have waiting to be delivered.
const MAX_PENDING: usize = 8 * 1024;
/// Writes the final drain may do.
const MAX_DRAIN: usize = 512;

/// One step of a broker script. Byte encodings are in [`BrokerOp::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerOp {
    /// Append a packet from the small vocabulary to a client's stream.
    Packet(u8, ClientPacket),
    /// Append raw bytes (at most 32) to a client's stream.
    Raw(u8, Vec<u8>),
    /// Append a valid packet of any shape built by
    /// [`crate::codec::arbitrary`] from the given bytes (at most 64).
    Any(u8, Vec<u8>),
    /// Deliver the first `n` waiting bytes of a stream (0: all of them).
    Deliver(u8, u8),
    /// One broker-to-client write, started and completed.
    Write(u8),
    /// Start a write and leave it in flight.
    WriteStart(u8),
    /// Fail the write in flight (starting one first if none is): the
    /// connection drops.
    WriteFail(u8),
    /// The connection drops.
    Close(u8),
    /// Drop the connection if open and open a new one in its place, in
    /// MQTT 5 or 3.1.1.
    Reopen(u8, bool),
    /// Advance the clock by the given number of half seconds (keep-alive,
    /// session expiry).
    Timer(u8),
    /// Deliver everything queued both ways until nothing moves.
    Run,
}

impl BrokerOp {
    const KINDS: usize = 11;

    /// Reads one operation: an opcode byte (modulo 11) and its operands.
    pub fn read(s: &mut Script<'_>) -> Self {
        match s.pick(Self::KINDS) {
            0 => BrokerOp::Packet(s.byte(), ClientPacket::read(s)),
            1 => BrokerOp::Raw(s.byte(), s.blob(32).to_vec()),
            2 => BrokerOp::Any(s.byte(), s.blob(64).to_vec()),
            3 => BrokerOp::Deliver(s.byte(), s.byte()),
            4 => BrokerOp::Write(s.byte()),
            5 => BrokerOp::WriteStart(s.byte()),
            6 => BrokerOp::WriteFail(s.byte()),
            7 => BrokerOp::Close(s.byte()),
            8 => BrokerOp::Reopen(s.byte(), s.byte() & 1 == 1),
            9 => BrokerOp::Timer(s.byte()),
            _ => BrokerOp::Run,
        }
    }

    /// Writes it in the encoding [`BrokerOp::read`] takes.
    pub fn write(&self, w: &mut ScriptWriter) {
        match self {
            BrokerOp::Packet(l, p) => {
                w.pick(0).byte(*l);
                p.write(w);
            }
            BrokerOp::Raw(l, b) => {
                w.pick(1).byte(*l).blob(b);
            }
            BrokerOp::Any(l, b) => {
                w.pick(2).byte(*l).blob(b);
            }
            BrokerOp::Deliver(l, n) => {
                w.pick(3).byte(*l).byte(*n);
            }
            BrokerOp::Write(l) => {
                w.pick(4).byte(*l);
            }
            BrokerOp::WriteStart(l) => {
                w.pick(5).byte(*l);
            }
            BrokerOp::WriteFail(l) => {
                w.pick(6).byte(*l);
            }
            BrokerOp::Close(l) => {
                w.pick(7).byte(*l);
            }
            BrokerOp::Reopen(l, v5) => {
                w.pick(8).byte(*l).byte(u8::from(*v5));
            }
            BrokerOp::Timer(t) => {
                w.pick(9).byte(*t);
            }
            BrokerOp::Run => {
                w.pick(10);
            }
        }
    }
}

/// One client connection slot of the script.
struct Slot {
    link: Option<usize>,
    version: Version,
    pending: Vec<u8>,
}

/// Runs one broker script with the historic faults off.
pub fn broker_stream(data: &[u8]) -> Result<(), Finding> {
    broker_stream_with(data, &FaultPolicy::Off)
}

/// Runs one broker script with the faults `policy` selects for it.
pub fn broker_stream_with(data: &[u8], policy: &FaultPolicy) -> Result<(), Finding> {
    audited(Target::BrokerStream, data, policy, run)
}

fn run(data: &[u8], faults: FaultSet, mode: Mode) -> Audit {
    let mut sim = Sim::new(
        Ledger::new(mode),
        BrokerConfig {
            faults,
            max_queued: 64,
            max_inflight: 4,
            queue: crate::broker::limits::QueueLimits {
                max_messages: 8,
                ..Default::default()
            },
            receive_maximum: 4,
            ..Default::default()
        },
    );
    let mut slots: Vec<Slot> = (0..LINKS)
        .map(|i| Slot {
            link: None,
            version: if i % 2 == 0 {
                Version::V311
            } else {
                Version::V5
            },
            pending: Vec::new(),
        })
        .collect();
    let mut s = Script::new(data);
    let mut ops = 0;
    while !s.is_empty() && ops < MAX_OPS {
        ops += 1;
        step(&mut sim, &mut slots, BrokerOp::read(&mut s));
    }
    for i in 0..LINKS {
        deliver(&mut sim, &mut slots, i, 0);
    }
    sim.run(MAX_DRAIN);
    sim.finish()
}

/// The slot index `l` names, opening its connection on first use.
fn slot(sim: &mut Sim, slots: &mut [Slot], l: u8) -> usize {
    let i = usize::from(l) % LINKS;
    if let Some(s) = slots.get_mut(i)
        && s.link.is_none()
    {
        s.link = Some(sim.connect_raw());
    }
    i
}

fn link(slots: &[Slot], i: usize) -> Option<usize> {
    slots.get(i).and_then(|s| s.link)
}

fn append(slots: &mut [Slot], i: usize, bytes: &[u8]) {
    if let Some(s) = slots.get_mut(i) {
        let room = MAX_PENDING.saturating_sub(s.pending.len());
        s.pending
            .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
    }
}

fn deliver(sim: &mut Sim, slots: &mut [Slot], i: usize, n: u8) {
    let (Some(l), Some(s)) = (link(slots, i), slots.get_mut(i)) else {
        return;
    };
    let n = if n == 0 {
        s.pending.len()
    } else {
        usize::from(n).min(s.pending.len())
    };
    let chunk: Vec<u8> = s.pending.drain(..n).collect();
    if !chunk.is_empty() {
        sim.feed(l, &chunk);
    }
}

fn step(sim: &mut Sim, slots: &mut [Slot], op: BrokerOp) {
    match op {
        BrokerOp::Packet(l, p) => {
            let i = slot(sim, slots, l);
            let v = slots.get(i).map_or(Version::V311, |s| s.version);
            if let Some(bytes) = p.encode(v) {
                append(slots, i, &bytes);
            }
        }
        BrokerOp::Raw(l, b) => {
            let i = slot(sim, slots, l);
            append(slots, i, &b);
        }
        BrokerOp::Any(l, b) => {
            let i = slot(sim, slots, l);
            let v = slots.get(i).map_or(Version::V311, |s| s.version);
            let mut u = ::arbitrary::Unstructured::new(&b);
            if let Some(bytes) = arbitrary::valid_packet(&mut u, v)
                .ok()
                .and_then(|p| encode(&p, v))
            {
                append(slots, i, &bytes);
            }
        }
        BrokerOp::Deliver(l, n) => {
            let i = slot(sim, slots, l);
            deliver(sim, slots, i, n);
        }
        BrokerOp::Write(l) => {
            if let Some(k) = link(slots, usize::from(l) % LINKS) {
                sim.write(k, Dir::Down);
            }
        }
        BrokerOp::WriteStart(l) => {
            if let Some(k) = link(slots, usize::from(l) % LINKS) {
                sim.start_write(k, Dir::Down);
            }
        }
        BrokerOp::WriteFail(l) => {
            if let Some(k) = link(slots, usize::from(l) % LINKS) {
                sim.start_write(k, Dir::Down);
                sim.finish_write(
                    k,
                    Dir::Down,
                    WriteResult::Failed("fuzz: write error".into()),
                );
            }
        }
        BrokerOp::Close(l) => {
            if let Some(k) = link(slots, usize::from(l) % LINKS) {
                sim.drop_link(k);
            }
        }
        BrokerOp::Reopen(l, v5) => {
            let i = usize::from(l) % LINKS;
            if let Some(k) = link(slots, i) {
                sim.drop_link(k);
            }
            let k = sim.connect_raw();
            if let Some(s) = slots.get_mut(i) {
                s.link = Some(k);
                s.version = if v5 { Version::V5 } else { Version::V311 };
                s.pending.clear();
            }
        }
        BrokerOp::Timer(t) => sim.advance(u64::from(t) * 500),
        BrokerOp::Run => {
            sim.run(64);
        }
    }
}

/// Writes a script: byte 0 (the fault selector), then the operations.
pub fn script(fault_byte: u8, ops: &[BrokerOp]) -> Vec<u8> {
    let mut w = ScriptWriter::new(fault_byte);
    for op in ops {
        op.write(&mut w);
    }
    w.finish()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::faults::Fault;

    fn session() -> Vec<BrokerOp> {
        vec![
            BrokerOp::Packet(0, ClientPacket::Connect { id: 0, flags: 1 }),
            BrokerOp::Packet(
                0,
                ClientPacket::Publish {
                    topic: 2,
                    flags: 4,
                    pid: 0,
                    payload: b"kept".to_vec(),
                },
            ),
            BrokerOp::Packet(
                0,
                ClientPacket::Subscribe {
                    pid: 0,
                    filters: vec![(2, 1)],
                },
            ),
            BrokerOp::Deliver(0, 0),
            BrokerOp::Run,
        ]
    }

    #[test]
    fn ops_read_back() {
        let mut ops = session();
        ops.extend([
            BrokerOp::Raw(1, vec![1, 2]),
            BrokerOp::Any(2, vec![3; 5]),
            BrokerOp::Write(1),
            BrokerOp::WriteStart(1),
            BrokerOp::WriteFail(2),
            BrokerOp::Close(3),
            BrokerOp::Reopen(1, true),
            BrokerOp::Timer(9),
        ]);
        let bytes = script(0, &ops);
        let mut s = Script::new(&bytes[1..]);
        let back: Vec<BrokerOp> =
            std::iter::from_fn(|| (!s.is_empty()).then(|| BrokerOp::read(&mut s))).collect();
        assert_eq!(back, ops);
    }

    #[test]
    fn a_retained_session_is_clean_and_finds_nanomq_485() {
        let data = script(0, &session());
        broker_stream(&data).unwrap();
        let policy = FaultPolicy::Fixed(FaultSet::only(Fault::Nanomq485));
        let f = broker_stream_with(&data, &policy).unwrap_err();
        let text = f.to_string();
        assert!(text.contains("retain: deliver"), "{text}");
    }
}
