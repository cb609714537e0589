//! `lifecycle_ops`: arbitrary sequences of kernel operations (park a
//! request, start, complete or fail a write, ACK, timeout, cancel, close,
//! reconnect) for up to three client kernels and the broker over the
//! in-memory transport, audited after each input.

use super::caller::Caller;
use super::script::{Script, ScriptWriter};
use super::{FaultPolicy, Finding, Target, audited};
use crate::broker::BrokerConfig;
use crate::client::{ClientConfig, ClientKernel};
use crate::codec::Version;
use crate::faults::FaultSet;
use crate::kernels::outbox::WriteResult;
use crate::ledger::{Audit, Ledger, Mode};
use crate::sim::{Dir, Sim};
use crate::sync::Arc;

/// Client kernels a script drives at most.
pub const CLIENTS: usize = 3;
const MAX_OPS: usize = 256;
const MAX_DRAIN: usize = 512;

/// One step of a lifecycle script. Every operation names a client (modulo
/// the number of clients); the broker acts through the transport. An ACK
/// is the broker's write reaching the client (`Write(c, false)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleOp {
    /// Park a SUBSCRIBE: filter choice, QoS choice.
    Subscribe(u8, u8, u8),
    /// Park an UNSUBSCRIBE: filter choice.
    Unsubscribe(u8, u8),
    /// Publish: topic choice, flags (bits 0-1 QoS, bit 2 retain), payload
    /// length (modulo 16).
    Publish(u8, u8, u8, u8),
    /// One write, started and completed: upward (client to broker) or down.
    Write(u8, bool),
    /// Start a write and leave it in flight.
    WriteStart(u8, bool),
    /// Fail the write in flight: the connection drops.
    WriteFail(u8, bool),
    /// The client's timer for one packet id fires (0: the CONNECT's).
    TimeOut(u8, u8),
    /// The clock advances by the given number of half seconds; every timer
    /// runs.
    Tick(u8),
    /// The application cancels one of its operations.
    Cancel(u8, u8),
    /// The connection drops.
    Close(u8),
    /// The client reconnects, if its connection dropped.
    Reconnect(u8),
    /// Deliver everything queued, at most `n` writes.
    Run(u8),
    /// The application takes its delivered messages.
    Consume(u8),
}

impl LifecycleOp {
    const KINDS: usize = 13;

    /// Reads one operation: an opcode byte (modulo 13) and its operands.
    pub fn read(s: &mut Script<'_>) -> Self {
        match s.pick(Self::KINDS) {
            0 => LifecycleOp::Subscribe(s.byte(), s.byte(), s.byte()),
            1 => LifecycleOp::Unsubscribe(s.byte(), s.byte()),
            2 => LifecycleOp::Publish(s.byte(), s.byte(), s.byte(), s.byte()),
            3 => {
                let c = s.byte();
                LifecycleOp::Write(c, s.byte() & 1 == 1)
            }
            4 => {
                let c = s.byte();
                LifecycleOp::WriteStart(c, s.byte() & 1 == 1)
            }
            5 => {
                let c = s.byte();
                LifecycleOp::WriteFail(c, s.byte() & 1 == 1)
            }
            6 => LifecycleOp::TimeOut(s.byte(), s.byte()),
            7 => LifecycleOp::Tick(s.byte()),
            8 => LifecycleOp::Cancel(s.byte(), s.byte()),
            9 => LifecycleOp::Close(s.byte()),
            10 => LifecycleOp::Reconnect(s.byte()),
            11 => LifecycleOp::Run(s.byte()),
            _ => LifecycleOp::Consume(s.byte()),
        }
    }

    /// Writes it in the encoding [`LifecycleOp::read`] takes.
    pub fn write(&self, w: &mut ScriptWriter) {
        match self {
            LifecycleOp::Subscribe(c, f, q) => w.pick(0).byte(*c).byte(*f).byte(*q),
            LifecycleOp::Unsubscribe(c, f) => w.pick(1).byte(*c).byte(*f),
            LifecycleOp::Publish(c, t, fl, n) => w.pick(2).byte(*c).byte(*t).byte(*fl).byte(*n),
            LifecycleOp::Write(c, up) => w.pick(3).byte(*c).byte(u8::from(*up)),
            LifecycleOp::WriteStart(c, up) => w.pick(4).byte(*c).byte(u8::from(*up)),
            LifecycleOp::WriteFail(c, up) => w.pick(5).byte(*c).byte(u8::from(*up)),
            LifecycleOp::TimeOut(c, p) => w.pick(6).byte(*c).byte(*p),
            LifecycleOp::Tick(t) => w.pick(7).byte(*t),
            LifecycleOp::Cancel(c, i) => w.pick(8).byte(*c).byte(*i),
            LifecycleOp::Close(c) => w.pick(9).byte(*c),
            LifecycleOp::Reconnect(c) => w.pick(10).byte(*c),
            LifecycleOp::Run(n) => w.pick(11).byte(*n),
            LifecycleOp::Consume(c) => w.pick(12).byte(*c),
        };
    }
}

/// The configuration byte (the first after the fault selector): bits 0-1
/// the number of clients (1 to 3), bits 2-4 which speak MQTT 5, bits 5-7
/// which start clean.
pub fn config_byte(clients: usize, v5: [bool; CLIENTS], clean: [bool; CLIENTS]) -> u8 {
    let mut b = u8::try_from(clients.clamp(1, CLIENTS) - 1).unwrap_or(0);
    for i in 0..CLIENTS {
        b |= u8::from(v5[i]) << (2 + i);
        b |= u8::from(clean[i]) << (5 + i);
    }
    b
}

/// Writes a script: byte 0 (the fault selector), the configuration byte,
/// then the operations.
pub fn script(fault_byte: u8, config: u8, ops: &[LifecycleOp]) -> Vec<u8> {
    let mut w = ScriptWriter::new(fault_byte);
    w.byte(config);
    for op in ops {
        op.write(&mut w);
    }
    w.finish()
}

struct App {
    client: Arc<ClientKernel>,
    link: usize,
    caller: Caller,
}

/// Runs one lifecycle script with the historic faults off.
pub fn lifecycle_ops(data: &[u8]) -> Result<(), Finding> {
    lifecycle_ops_with(data, &FaultPolicy::Off)
}

/// Runs one lifecycle script with the faults `policy` selects for it.
pub fn lifecycle_ops_with(data: &[u8], policy: &FaultPolicy) -> Result<(), Finding> {
    audited(Target::LifecycleOps, data, policy, run)
}

fn run(data: &[u8], faults: FaultSet, mode: Mode) -> Audit {
    let ledger = Ledger::new(mode);
    let mut sim = Sim::new(
        ledger.clone(),
        BrokerConfig {
            faults,
            max_queued: 64,
            max_inflight: 4,
            queue: crate::broker::limits::QueueLimits {
                max_messages: 8,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut s = Script::new(data);
    let cfg = s.byte();
    let n = usize::from(cfg & 3).min(CLIENTS - 1) + 1;
    let mut apps: Vec<App> = (0..n)
        .filter_map(|i| {
            let (link, op) = sim.connect(ClientConfig {
                version: if cfg & (4 << i) != 0 {
                    Version::V5
                } else {
                    Version::V311
                },
                client_id: format!("c{i}"),
                clean_start: cfg & (32 << i) != 0,
                keep_alive_secs: 5,
                request_timeout_ms: 2_000,
                max_queued: 64,
                faults,
                ..Default::default()
            });
            let mut caller = Caller::default();
            caller.track(op);
            let client = sim.client(link).cloned()?;
            Some(App {
                client,
                link,
                caller,
            })
        })
        .collect();
    let mut ops = 0;
    while !s.is_empty() && ops < MAX_OPS {
        ops += 1;
        step(&mut sim, &mut apps, LifecycleOp::read(&mut s));
        for a in &mut apps {
            a.caller.reap();
        }
    }
    sim.run(MAX_DRAIN);
    for a in &mut apps {
        a.caller.reap();
    }
    sim.shutdown();
    for a in &mut apps {
        a.caller.reap();
    }
    drop(apps);
    drop(sim);
    ledger.audit()
}

fn app(apps: &mut [App], c: u8) -> Option<&mut App> {
    let n = apps.len().max(1);
    apps.get_mut(usize::from(c) % n)
}

fn dir(up: bool) -> Dir {
    if up { Dir::Up } else { Dir::Down }
}

fn step(sim: &mut Sim, apps: &mut [App], op: LifecycleOp) {
    let now = sim.now_ms;
    match op {
        LifecycleOp::Subscribe(c, f, q) => {
            if let Some(a) = app(apps, c) {
                a.caller.subscribe(&a.client, f, q, now);
            }
        }
        LifecycleOp::Unsubscribe(c, f) => {
            if let Some(a) = app(apps, c) {
                a.caller.unsubscribe(&a.client, f, now);
            }
        }
        LifecycleOp::Publish(c, t, fl, n) => {
            if let Some(a) = app(apps, c) {
                let payload = vec![b'x'; usize::from(n % 16)];
                a.caller.publish(&a.client, t, fl, &payload, now);
            }
        }
        LifecycleOp::Write(c, up) => {
            if let Some(a) = app(apps, c) {
                sim.write(a.link, dir(up));
            }
        }
        LifecycleOp::WriteStart(c, up) => {
            if let Some(a) = app(apps, c) {
                sim.start_write(a.link, dir(up));
            }
        }
        LifecycleOp::WriteFail(c, up) => {
            if let Some(a) = app(apps, c) {
                sim.finish_write(
                    a.link,
                    dir(up),
                    WriteResult::Failed("fuzz: write error".into()),
                );
            }
        }
        LifecycleOp::TimeOut(c, p) => {
            if let Some(a) = app(apps, c) {
                a.client.time_out(u16::from(p % 9));
            }
        }
        LifecycleOp::Tick(t) => sim.advance(u64::from(t) * 500),
        LifecycleOp::Cancel(c, i) => {
            if let Some(a) = app(apps, c)
                && let Some(op) = a.caller.nth(i)
            {
                a.client.cancel(op);
            }
        }
        LifecycleOp::Close(c) => {
            if let Some(a) = app(apps, c) {
                sim.drop_link(a.link);
            }
        }
        LifecycleOp::Reconnect(c) => {
            if let Some(a) = app(apps, c) {
                let open = sim.links.get(a.link).is_some_and(|l| l.is_open());
                if !open {
                    let (link, op) = sim.reconnect(a.client.clone());
                    a.link = link;
                    a.caller.track(op);
                }
            }
        }
        LifecycleOp::Run(n) => {
            sim.run(usize::from(n));
        }
        LifecycleOp::Consume(c) => {
            if let Some(a) = app(apps, c) {
                Caller::consume(&a.client);
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::faults::Fault;

    #[test]
    fn ops_read_back() {
        let ops = vec![
            LifecycleOp::Subscribe(0, 1, 2),
            LifecycleOp::Unsubscribe(1, 1),
            LifecycleOp::Publish(2, 1, 6, 3),
            LifecycleOp::Write(0, true),
            LifecycleOp::WriteStart(1, false),
            LifecycleOp::WriteFail(1, false),
            LifecycleOp::TimeOut(0, 1),
            LifecycleOp::Tick(3),
            LifecycleOp::Cancel(0, 0),
            LifecycleOp::Close(2),
            LifecycleOp::Reconnect(2),
            LifecycleOp::Run(9),
            LifecycleOp::Consume(1),
        ];
        let bytes = script(0, 0, &ops);
        let mut s = Script::new(&bytes[2..]);
        let back: Vec<LifecycleOp> =
            std::iter::from_fn(|| (!s.is_empty()).then(|| LifecycleOp::read(&mut s))).collect();
        assert_eq!(back, ops);
    }

    /// Two subscribers, one publish: clean, and the fan-out fault is found.
    #[test]
    fn fanout_is_clean_and_finds_the_missing_reference() {
        let ops = [
            LifecycleOp::Run(64),
            LifecycleOp::Subscribe(0, 0, 1),
            LifecycleOp::Subscribe(1, 3, 1),
            LifecycleOp::Run(64),
            LifecycleOp::Publish(2, 0, 1, 4),
            LifecycleOp::Run(64),
        ];
        let data = script(0, config_byte(3, [false, true, false], [true; 3]), &ops);
        lifecycle_ops(&data).unwrap();
        let policy = FaultPolicy::Fixed(FaultSet::only(Fault::FanoutMissingRetain));
        let f = lifecycle_ops_with(&data, &policy).unwrap_err();
        assert!(f.to_string().contains("fanout: reference"), "{f}");
    }
}
