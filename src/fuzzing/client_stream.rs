//! `client_stream`: a hostile broker's bytes and transport events against
//! the client kernel while the application subscribes, publishes,
//! unsubscribes and cancels; then shutdown and the ledger audit.

use super::caller::Caller;
use super::script::{Script, ScriptWriter};
use super::shapes::{BrokerPacket, encode};
use super::{FaultPolicy, Finding, Target, audited};
use crate::client::{ClientConfig, ClientFlow, ClientKernel};
use crate::codec::{Version, arbitrary};
use crate::faults::FaultSet;
use crate::kernels::frame::OutFrame;
use crate::kernels::outbox::{WriteJob, WriteResult};
use crate::ledger::{Audit, Ledger, Mode};
use crate::sync::Arc;

const MAX_OPS: usize = 256;
const MAX_PENDING: usize = 8 * 1024;

/// One step of a client script. Byte encodings are in [`ClientOp::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// The application subscribes: filter choice, QoS choice.
    Subscribe(u8, u8),
    /// The application unsubscribes: filter choice.
    Unsubscribe(u8),
    /// The application publishes: topic choice, flags (bits 0-1 QoS, bit 2
    /// retain), payload (at most 16 bytes).
    Publish(u8, u8, Vec<u8>),
    /// The application cancels one of its operations.
    Cancel(u8),
    /// The broker's stream gets a packet from the small vocabulary.
    Packet(BrokerPacket),
    /// The broker's stream gets raw bytes (at most 32).
    Raw(Vec<u8>),
    /// The broker's stream gets any valid packet built by
    /// [`crate::codec::arbitrary`] from the given bytes (at most 64).
    Any(Vec<u8>),
    /// The first `n` waiting broker bytes arrive (0: all of them).
    Deliver(u8),
    /// One client-to-broker write, completed (the bytes go nowhere).
    Write,
    /// Start a write and leave it in flight.
    WriteStart,
    /// Fail the write in flight (starting one first if none is); the
    /// connection drops.
    WriteFail,
    /// The timer runs after the given number of half seconds.
    Timer(u8),
    /// The timer of one packet id fires (0 is the CONNECT's).
    TimeOut(u8),
    /// The connection drops; a write in flight stays in flight.
    Close,
    /// A new connection, if the last one dropped.
    Reconnect,
    /// The application takes its delivered messages.
    Consume,
}

impl ClientOp {
    const KINDS: usize = 16;

    /// Reads one operation: an opcode byte (modulo 16) and its operands.
    pub fn read(s: &mut Script<'_>) -> Self {
        match s.pick(Self::KINDS) {
            0 => ClientOp::Subscribe(s.byte(), s.byte()),
            1 => ClientOp::Unsubscribe(s.byte()),
            2 => ClientOp::Publish(s.byte(), s.byte(), s.blob(16).to_vec()),
            3 => ClientOp::Cancel(s.byte()),
            4 => ClientOp::Packet(BrokerPacket::read(s)),
            5 => ClientOp::Raw(s.blob(32).to_vec()),
            6 => ClientOp::Any(s.blob(64).to_vec()),
            7 => ClientOp::Deliver(s.byte()),
            8 => ClientOp::Write,
            9 => ClientOp::WriteStart,
            10 => ClientOp::WriteFail,
            11 => ClientOp::Timer(s.byte()),
            12 => ClientOp::TimeOut(s.byte()),
            13 => ClientOp::Close,
            14 => ClientOp::Reconnect,
            _ => ClientOp::Consume,
        }
    }

    /// Writes it in the encoding [`ClientOp::read`] takes.
    pub fn write(&self, w: &mut ScriptWriter) {
        match self {
            ClientOp::Subscribe(f, q) => w.pick(0).byte(*f).byte(*q),
            ClientOp::Unsubscribe(f) => w.pick(1).byte(*f),
            ClientOp::Publish(t, fl, p) => w.pick(2).byte(*t).byte(*fl).blob(p),
            ClientOp::Cancel(i) => w.pick(3).byte(*i),
            ClientOp::Packet(p) => {
                w.pick(4);
                p.write(w);
                w
            }
            ClientOp::Raw(b) => w.pick(5).blob(b),
            ClientOp::Any(b) => w.pick(6).blob(b),
            ClientOp::Deliver(n) => w.pick(7).byte(*n),
            ClientOp::Write => w.pick(8),
            ClientOp::WriteStart => w.pick(9),
            ClientOp::WriteFail => w.pick(10),
            ClientOp::Timer(t) => w.pick(11).byte(*t),
            ClientOp::TimeOut(p) => w.pick(12).byte(*p),
            ClientOp::Close => w.pick(13),
            ClientOp::Reconnect => w.pick(14),
            ClientOp::Consume => w.pick(15),
        };
    }
}

/// The client's configuration byte (the first after the fault selector):
/// bit 0 MQTT 5, bit 1 clean start.
pub fn config_byte(v5: bool, clean_start: bool) -> u8 {
    u8::from(v5) | (u8::from(clean_start) << 1)
}

/// Writes a script: byte 0 (the fault selector), the configuration byte,
/// then the operations.
pub fn script(fault_byte: u8, config: u8, ops: &[ClientOp]) -> Vec<u8> {
    let mut w = ScriptWriter::new(fault_byte);
    w.byte(config);
    for op in ops {
        op.write(&mut w);
    }
    w.finish()
}

struct Peer {
    client: Arc<ClientKernel>,
    caller: Caller,
    job: Option<WriteJob<OutFrame>>,
    open: bool,
    pending: Vec<u8>,
    now_ms: u64,
}

impl Peer {
    fn lose(&mut self) {
        if self.open {
            self.open = false;
            let keep = !self.client.config().clean_start;
            self.client.connection_lost(keep);
        }
    }

    fn finish_write(&mut self, result: WriteResult) {
        if let Some(job) = self.job.take() {
            let failed = result != WriteResult::Complete;
            self.client.outbox.write_done(job, result);
            if failed {
                self.lose();
            }
        }
    }

    fn start_write(&mut self) {
        if self.job.is_none() {
            self.job = self.client.outbox.start_write();
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_PENDING.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
    }

    fn version(&self) -> Version {
        self.client.config().version
    }

    fn step(&mut self, op: ClientOp) {
        let now = self.now_ms;
        match op {
            ClientOp::Subscribe(f, q) => self.caller.subscribe(&self.client, f, q, now),
            ClientOp::Unsubscribe(f) => self.caller.unsubscribe(&self.client, f, now),
            ClientOp::Publish(t, fl, p) => self.caller.publish(&self.client, t, fl, &p, now),
            ClientOp::Cancel(i) => {
                if let Some(op) = self.caller.nth(i) {
                    self.client.cancel(op);
                }
            }
            ClientOp::Packet(p) => {
                if let Some(b) = p.encode(self.version()) {
                    self.append(&b);
                }
            }
            ClientOp::Raw(b) => self.append(&b),
            ClientOp::Any(b) => {
                let v = self.version();
                let mut u = ::arbitrary::Unstructured::new(&b);
                if let Some(bytes) = arbitrary::valid_packet(&mut u, v)
                    .ok()
                    .and_then(|p| encode(&p, v))
                {
                    self.append(&bytes);
                }
            }
            ClientOp::Deliver(n) => {
                if !self.open {
                    return;
                }
                let n = if n == 0 {
                    self.pending.len()
                } else {
                    usize::from(n).min(self.pending.len())
                };
                let chunk: Vec<u8> = self.pending.drain(..n).collect();
                if let ClientFlow::Close(_) = self.client.on_bytes(&chunk) {
                    self.lose();
                }
            }
            ClientOp::Write => {
                self.start_write();
                self.finish_write(WriteResult::Complete);
            }
            ClientOp::WriteStart => self.start_write(),
            ClientOp::WriteFail => {
                self.start_write();
                self.finish_write(WriteResult::Failed("fuzz: write error".into()));
            }
            ClientOp::Timer(t) => {
                self.now_ms += u64::from(t) * 500;
                if self.open {
                    self.client.tick(self.now_ms);
                }
            }
            ClientOp::TimeOut(p) => {
                self.client.time_out(u16::from(p % 9));
            }
            ClientOp::Close => self.lose(),
            ClientOp::Reconnect => {
                if !self.open {
                    self.open = true;
                    self.pending.clear();
                    let op = self.client.reconnect(self.now_ms);
                    self.caller.track(op);
                }
            }
            ClientOp::Consume => Caller::consume(&self.client),
        }
        self.caller.reap();
    }
}

/// Runs one client script with the historic faults off.
pub fn client_stream(data: &[u8]) -> Result<(), Finding> {
    client_stream_with(data, &FaultPolicy::Off)
}

/// Runs one client script with the faults `policy` selects for it.
pub fn client_stream_with(data: &[u8], policy: &FaultPolicy) -> Result<(), Finding> {
    audited(Target::ClientStream, data, policy, run)
}

fn run(data: &[u8], faults: FaultSet, mode: Mode) -> Audit {
    let ledger = Ledger::new(mode);
    let mut s = Script::new(data);
    let cfg = s.byte();
    let client = Arc::new(ClientKernel::new(
        ledger.clone(),
        ClientConfig {
            version: if cfg & 1 != 0 {
                Version::V5
            } else {
                Version::V311
            },
            client_id: "fuzz".into(),
            clean_start: cfg & 2 != 0,
            keep_alive_secs: 5,
            request_timeout_ms: 2_000,
            max_queued: 64,
            faults,
            ..Default::default()
        },
        None,
        None,
    ));
    let mut peer = Peer {
        caller: Caller::default(),
        job: None,
        open: true,
        pending: Vec::new(),
        now_ms: 0,
        client: client.clone(),
    };
    let op = client.connect(0);
    peer.caller.track(op);
    let mut ops = 0;
    while !s.is_empty() && ops < MAX_OPS {
        ops += 1;
        peer.step(ClientOp::read(&mut s));
    }
    peer.finish_write(WriteResult::Failed("fuzz: end of input".into()));
    peer.lose();
    client.shutdown();
    peer.caller.reap();
    drop(peer);
    drop(client);
    ledger.audit()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::faults::Fault;

    #[test]
    fn ops_read_back() {
        let ops = vec![
            ClientOp::Subscribe(1, 2),
            ClientOp::Unsubscribe(3),
            ClientOp::Publish(1, 5, b"x".to_vec()),
            ClientOp::Cancel(0),
            ClientOp::Packet(BrokerPacket::Suback(0, vec![1])),
            ClientOp::Raw(vec![0x20]),
            ClientOp::Any(vec![9, 9]),
            ClientOp::Deliver(3),
            ClientOp::Write,
            ClientOp::WriteStart,
            ClientOp::WriteFail,
            ClientOp::Timer(2),
            ClientOp::TimeOut(1),
            ClientOp::Close,
            ClientOp::Reconnect,
            ClientOp::Consume,
        ];
        let bytes = script(0, 1, &ops);
        let mut s = Script::new(&bytes[2..]);
        let back: Vec<ClientOp> =
            std::iter::from_fn(|| (!s.is_empty()).then(|| ClientOp::read(&mut s))).collect();
        assert_eq!(back, ops);
    }

    /// NanoMQ 1766 as its report tells it: subscribe, the write completes,
    /// the connection closes.
    #[test]
    fn the_seed_sequence_is_clean_and_finds_nanomq_1766() {
        let ops = [
            ClientOp::Write,
            ClientOp::Packet(BrokerPacket::Connack(0, false)),
            ClientOp::Deliver(0),
            ClientOp::Subscribe(0, 0),
            ClientOp::Write,
            ClientOp::Close,
        ];
        let data = script(0, config_byte(false, true), &ops);
        client_stream(&data).unwrap();
        let policy = FaultPolicy::Fixed(FaultSet::only(Fault::Nanomq1766));
        let f = client_stream_with(&data, &policy).unwrap_err();
        assert!(f.to_string().contains("client::subscribe park"), "{f}");
    }
}
