//! The system under test as the sequence runner sees it: a broker and the
//! connections of client kernels, with every transport event a call.
//!
//! The step transport implements it here ([`StepDriver`]) over any
//! [`Wire`]: in memory ([`SimDriver`]) or over real loopback TLS with the
//! shell's write path ([`TlsDriver`](super::tls_driver::TlsDriver)), so the
//! same sequences and the same model cover both.

use crate::broker::{Broker, BrokerConfig};
use crate::client::{ClientConfig, ClientKernel};
use crate::kernels::outbox::WriteResult;
use crate::ledger::{Audit, Ledger, Op};
use crate::sim::{Dir, Memory, Sim, Wire};
use crate::sync::Arc;

/// A broker and client connections, driven one transport event at a time.
/// Links are numbered by the driver, never reused.
pub trait Driver {
    /// The ledger every kernel of this run records into.
    fn ledger(&self) -> Arc<Ledger>;
    /// The broker's and clients' clock, in ms.
    fn now_ms(&self) -> u64;
    /// A new client kernel built from `cfg` opens a connection and queues
    /// its CONNECT. Returns the link, the kernel and the connect operation.
    fn connect(&mut self, cfg: ClientConfig) -> (usize, Arc<ClientKernel>, Op);
    /// `client` (whose last connection ended) opens a new one
    /// (`ClientKernel::reconnect`). Returns the link and the connect op.
    fn reconnect(&mut self, client: &Arc<ClientKernel>) -> (usize, Op);
    /// True until the connection on `link` ended.
    fn is_open(&self, link: usize) -> bool;
    /// Starts the next write in `dir` unless one is in flight; true when
    /// one is in flight now.
    fn start_write(&mut self, link: usize, dir: Dir) -> bool;
    /// Ends the write in flight in `dir`: `Complete` delivers its bytes to
    /// the other side, `Failed` drops the connection. True when there was
    /// one.
    fn finish_write(&mut self, link: usize, dir: Dir, result: WriteResult) -> bool;
    /// The connection drops abruptly; a write in flight fails.
    fn drop_link(&mut self, link: usize);
    /// The connection drops while the write in flight in `dir` is still
    /// out; that write ends with `late` after both sides saw the close.
    fn drop_link_then_finish(&mut self, link: usize, dir: Dir, late: WriteResult);
    /// Moves the clock on by `ms` and runs the broker's and clients' timers.
    fn advance(&mut self, ms: u64);
    /// Writes everything queued, both ways, until nothing moves; closes
    /// connections the broker ended once their queue is written.
    fn settle(&mut self);
    /// Every connection drops, the broker shuts down, and a fresh broker
    /// with the same configuration and ledger takes its place.
    fn restart_broker(&mut self);
    /// Ends everything (connections, clients, broker) and audits the
    /// ledger.
    fn finish(self) -> Audit;
}

/// The step transport ([`Sim`]) as a [`Driver`], its bytes over `W`.
pub struct StepDriver<W: Wire = Memory> {
    sim: Sim<W>,
    cfg: BrokerConfig,
}

/// The in-memory transport as a [`Driver`].
pub type SimDriver = StepDriver<Memory>;

impl SimDriver {
    /// A fresh broker with `cfg` recording into `ledger`.
    pub fn new(ledger: Arc<Ledger>, cfg: BrokerConfig) -> Self {
        StepDriver::with_wire(ledger, cfg, Memory)
    }
}

impl<W: Wire> StepDriver<W> {
    /// A fresh broker with `cfg` recording into `ledger`, its connections
    /// over `wire`.
    pub fn with_wire(ledger: Arc<Ledger>, cfg: BrokerConfig, wire: W) -> Self {
        StepDriver {
            sim: Sim::with_wire(ledger, cfg.clone(), wire),
            cfg,
        }
    }

    /// The wire the connections run over.
    pub fn wire(&self) -> &W {
        self.sim.wire()
    }
}

impl<W: Wire> Driver for StepDriver<W> {
    fn ledger(&self) -> Arc<Ledger> {
        self.sim.ledger.clone()
    }

    fn now_ms(&self) -> u64 {
        self.sim.now_ms
    }

    fn connect(&mut self, cfg: ClientConfig) -> (usize, Arc<ClientKernel>, Op) {
        let (link, op) = self.sim.connect(cfg);
        let kernel = self
            .sim
            .client(link)
            .cloned()
            .expect("a client link has a kernel");
        (link, kernel, op)
    }

    fn reconnect(&mut self, client: &Arc<ClientKernel>) -> (usize, Op) {
        self.sim.reconnect(client.clone())
    }

    fn is_open(&self, link: usize) -> bool {
        self.sim.links.get(link).is_some_and(|l| l.is_open())
    }

    fn start_write(&mut self, link: usize, dir: Dir) -> bool {
        self.sim.start_write(link, dir)
    }

    fn finish_write(&mut self, link: usize, dir: Dir, result: WriteResult) -> bool {
        self.sim.finish_write(link, dir, result)
    }

    fn drop_link(&mut self, link: usize) {
        self.sim.drop_link(link);
    }

    fn drop_link_then_finish(&mut self, link: usize, dir: Dir, late: WriteResult) {
        self.sim.drop_link_then_finish(link, dir, late);
    }

    fn advance(&mut self, ms: u64) {
        self.sim.advance(ms);
    }

    fn settle(&mut self) {
        self.sim.run(100_000);
    }

    fn restart_broker(&mut self) {
        for i in 0..self.sim.links.len() {
            self.sim.drop_link(i);
        }
        self.sim.broker.shutdown();
        self.sim.broker = Broker::new(self.sim.ledger.clone(), self.cfg.clone());
    }

    fn finish(self) -> Audit {
        self.sim.finish()
    }
}
