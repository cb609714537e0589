//! The in-memory transport: one broker and its clients wired together with
//! no sockets, every transport event an explicit, deterministic step.
//!
//! Each link is one connection: a client kernel (or a raw byte source, for
//! hostile input) on one side, a broker connection on the other. A write is
//! started and finished as separate steps, so a test can drop the
//! connection while a write is in flight, fail a write, or let the timer
//! fire between any two events. Tests, proptest, the fuzzer's entry points
//! and `mqtls check` all drive the kernels through this.
//!
//! The bytes themselves travel over a [`Wire`]: in memory by default
//! ([`Memory`]), or over real loopback TLS (the lifecycle model's TLS
//! driver), with the same steps either way.

pub mod wire;

use crate::broker::{Broker, BrokerConfig, Conn, Flow};
use crate::client::{ClientConfig, ClientFlow, ClientKernel};
use crate::kernels::frame::OutFrame;
use crate::kernels::outbox::{Outbox, WriteJob, WriteResult};
use crate::ledger::{Audit, Ledger, Op, with_actor};
use crate::sync::Arc;
use bytes::{Bytes, BytesMut};
pub use wire::{Carried, Close, Memory, Wire};

/// Which way a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
}

/// One connection between a client (or raw source) and the broker.
pub struct Link {
    /// The broker's side.
    pub conn: Arc<Conn>,
    /// The client's side; `None` for a raw link fed with bytes.
    pub client: Option<Arc<ClientKernel>>,
    up: Option<WriteJob<OutFrame>>,
    down: Option<WriteJob<OutFrame>>,
    open: bool,
    /// Bytes the broker sent on a raw link (for inspection).
    pub raw_received: BytesMut,
}

impl Link {
    /// True until the connection ended.
    pub fn is_open(&self) -> bool {
        self.open
    }
}

/// A broker, its links and a virtual clock; `W` carries the bytes.
pub struct Sim<W: Wire = Memory> {
    /// The ledger every kernel records into.
    pub ledger: Arc<Ledger>,
    /// The broker.
    pub broker: Broker,
    /// The links, in creation order (closed ones stay, closed).
    pub links: Vec<Link>,
    /// Virtual time in ms.
    pub now_ms: u64,
    wire: W,
}

impl Sim {
    /// A broker with `cfg`, recording into `ledger`, its links in memory.
    pub fn new(ledger: Arc<Ledger>, cfg: BrokerConfig) -> Self {
        Sim::with_wire(ledger, cfg, Memory)
    }
}

impl<W: Wire> Sim<W> {
    /// A broker with `cfg`, recording into `ledger`, its links over `wire`.
    pub fn with_wire(ledger: Arc<Ledger>, cfg: BrokerConfig, wire: W) -> Self {
        Sim {
            broker: Broker::new(ledger.clone(), cfg),
            ledger,
            links: Vec::new(),
            now_ms: 0,
            wire,
        }
    }

    /// The wire the links' bytes travel over.
    pub fn wire(&self) -> &W {
        &self.wire
    }

    /// Opens a link for a new client kernel and sends its CONNECT. Returns
    /// the link index and the connect operation.
    pub fn connect(&mut self, cfg: ClientConfig) -> (usize, Op) {
        let client = Arc::new(ClientKernel::new(self.ledger.clone(), cfg, None, None));
        let op = client.connect(self.now_ms);
        (self.attach(Some(client)), op)
    }

    /// Opens a new link for an existing client kernel that lost its
    /// connection, and sends CONNECT again (with its kept publishes).
    pub fn reconnect(&mut self, client: Arc<ClientKernel>) -> (usize, Op) {
        let op = client.reconnect(self.now_ms);
        (self.attach(Some(client)), op)
    }

    /// Opens a raw link: bytes from [`Sim::feed`] go straight to the
    /// broker, as from a hostile or fuzzed client.
    pub fn connect_raw(&mut self) -> usize {
        self.attach(None)
    }

    fn attach(&mut self, client: Option<Arc<ClientKernel>>) -> usize {
        let conn = self.broker.accept(self.now_ms, None);
        self.links.push(Link {
            conn,
            client,
            up: None,
            down: None,
            open: true,
            raw_received: BytesMut::new(),
        });
        let i = self.links.len() - 1;
        if !self.wire.open(i) {
            self.drop_link(i);
        }
        i
    }

    /// The client kernel on link `i`.
    pub fn client(&self, i: usize) -> Option<&Arc<ClientKernel>> {
        self.links.get(i).and_then(|l| l.client.as_ref())
    }

    /// Raw bytes from a client to the broker on link `i`.
    pub fn feed(&mut self, i: usize, bytes: &[u8]) {
        let Some(l) = self.links.get(i).filter(|l| l.open) else {
            return;
        };
        let conn = l.conn.clone();
        let carried = self.wire.carry(i, Dir::Up, bytes);
        self.arrive(i, Dir::Up, &conn, None, carried);
    }

    /// Starts the next write in direction `dir` on link `i`, unless one is
    /// already in flight. Returns true when a write is now in flight.
    pub fn start_write(&mut self, i: usize, dir: Dir) -> bool {
        let Some(l) = self.links.get_mut(i).filter(|l| l.open) else {
            return false;
        };
        let (slot, outbox): (&mut Option<WriteJob<OutFrame>>, &Outbox<OutFrame>) = match dir {
            Dir::Up => match &l.client {
                Some(c) => (&mut l.up, &c.outbox),
                None => return false,
            },
            Dir::Down => (&mut l.down, &l.conn.outbox),
        };
        if slot.is_none() {
            *slot = with_actor(&writer(i, dir), || outbox.start_write());
        }
        slot.is_some()
    }

    /// Finishes the write in flight in direction `dir` on link `i`: on
    /// `Complete` its bytes arrive at the other side; on `Failed` the
    /// connection drops. Returns true when there was a write to finish.
    pub fn finish_write(&mut self, i: usize, dir: Dir, result: WriteResult) -> bool {
        let Some(l) = self.links.get_mut(i) else {
            return false;
        };
        let job = match dir {
            Dir::Up => l.up.take(),
            Dir::Down => l.down.take(),
        };
        let Some(job) = job else { return false };
        let conn = l.conn.clone();
        let client = l.client.clone();
        let outbox = match (dir, &client) {
            (Dir::Up, Some(c)) => &c.outbox,
            _ => &conn.outbox,
        };
        let complete = result == WriteResult::Complete;
        let carried = with_actor(&writer(i, dir), || {
            self.wire.finish(i, dir, outbox, job, result)
        });
        if !complete {
            self.drop_link(i);
            return true;
        }
        self.arrive(i, dir, &conn, client.as_ref(), carried);
        true
    }

    /// What the wire carried in direction `dir` on link `i` is read by the
    /// other side, one read at a time, as the shell's readers do.
    fn arrive(
        &mut self,
        i: usize,
        dir: Dir,
        conn: &Arc<Conn>,
        client: Option<&Arc<ClientKernel>>,
        carried: Carried,
    ) {
        let chunks = match carried {
            Carried::Delivered(chunks) => chunks,
            Carried::Nothing => return,
            Carried::Dropped => {
                self.drop_link(i);
                return;
            }
        };
        for bytes in chunks {
            if !l_open(&self.links, i) {
                return;
            }
            if self.read(i, dir, conn, client, &bytes) {
                return;
            }
        }
    }

    /// One read's `bytes` on link `i`; true when the reader closed the
    /// connection.
    fn read(
        &mut self,
        i: usize,
        dir: Dir,
        conn: &Arc<Conn>,
        client: Option<&Arc<ClientKernel>>,
        bytes: &Bytes,
    ) -> bool {
        match (dir, client) {
            (Dir::Up, _) => {
                let flow = with_actor(&format!("broker reader {i}"), || {
                    self.broker.on_bytes(conn, bytes, self.now_ms)
                });
                if let Flow::Close(_) = flow {
                    self.flush_and_close(i);
                    return true;
                }
            }
            (Dir::Down, Some(c)) => {
                let flow = with_actor(&format!("client {i} reader"), || c.on_bytes(bytes));
                if let ClientFlow::Close(_) = flow {
                    self.drop_link(i);
                    return true;
                }
            }
            (Dir::Down, None) => {
                if let Some(l) = self.links.get_mut(i) {
                    l.raw_received.extend_from_slice(bytes);
                }
            }
        }
        false
    }

    /// One complete write in direction `dir` on link `i`, if there is one.
    pub fn write(&mut self, i: usize, dir: Dir) -> bool {
        self.start_write(i, dir) && self.finish_write(i, dir, WriteResult::Complete)
    }

    /// Delivers every queued byte in both directions on every open link
    /// until nothing moves (bounded by `max_steps` writes). Returns the
    /// number of writes done.
    pub fn run(&mut self, max_steps: usize) -> usize {
        let mut steps = 0;
        loop {
            let mut moved = false;
            for i in 0..self.links.len() {
                for dir in [Dir::Up, Dir::Down] {
                    while steps < max_steps && self.write(i, dir) {
                        steps += 1;
                        moved = true;
                    }
                }
            }
            self.close_finished();
            if !moved || steps >= max_steps {
                return steps;
            }
        }
    }

    /// Links the broker wants closed (protocol error, DISCONNECT, takeover)
    /// are closed once their queue is written.
    fn close_finished(&mut self) {
        for i in 0..self.links.len() {
            let l = &self.links[i];
            if l.open && l.conn.is_closing() && l.down.is_none() {
                self.flush_and_close(i);
            }
        }
    }

    fn flush_and_close(&mut self, i: usize) {
        for _ in 0..10_000 {
            if !self.write(i, Dir::Down) {
                break;
            }
        }
        self.end_link(i, Close::Graceful);
    }

    /// The connection on link `i` drops abruptly (both sides see it). A
    /// write in flight fails first.
    pub fn drop_link(&mut self, i: usize) {
        self.end_link(i, Close::Abrupt);
    }

    /// The connection on link `i` drops abruptly while a write is in flight
    /// in `dir`, and that write ends only afterwards, with `late`: its
    /// transport reports it complete (the bytes went nowhere) or failed
    /// after both sides already ran `connection_lost`, the other order from
    /// [`Sim::drop_link`]. A write in flight the other way fails first.
    pub fn drop_link_then_finish(&mut self, i: usize, dir: Dir, late: WriteResult) {
        let job = self
            .links
            .get_mut(i)
            .filter(|l| l.open)
            .and_then(|l| match dir {
                Dir::Up => l.up.take(),
                Dir::Down => l.down.take(),
            });
        self.end_link(i, Close::Abrupt);
        let Some(job) = job else { return };
        let Some(l) = self.links.get(i) else { return };
        let outbox = match (dir, &l.client) {
            (Dir::Up, Some(c)) => &c.outbox,
            _ => &l.conn.outbox,
        };
        with_actor(&writer(i, dir), || outbox.write_done(job, late));
    }

    fn end_link(&mut self, i: usize, how: Close) {
        with_actor(&format!("closer {i}"), || self.end_link_as_closer(i, how));
    }

    fn end_link_as_closer(&mut self, i: usize, how: Close) {
        let Some(l) = self.links.get_mut(i).filter(|l| l.open) else {
            return;
        };
        l.open = false;
        self.wire.close(i, how);
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        let up = l.up.take();
        let down = l.down.take();
        let conn = l.conn.clone();
        let client = l.client.clone();
        if let (Some(job), Some(c)) = (up, &client) {
            c.outbox
                .write_done(job, WriteResult::Failed("connection dropped".into()));
        }
        if let Some(job) = down {
            conn.outbox
                .write_done(job, WriteResult::Failed("connection dropped".into()));
        }
        self.broker.connection_lost(&conn, self.now_ms);
        if let Some(c) = client {
            let keep = !c.config().clean_start;
            c.connection_lost(keep);
        }
    }

    /// Advances the clock by `ms` and runs every timer: keep-alive and
    /// session expiry in the broker, request timeouts and pings in clients.
    pub fn advance(&mut self, ms: u64) {
        with_actor("timer", || self.advance_as_timer(ms));
    }

    fn advance_as_timer(&mut self, ms: u64) {
        self.now_ms += ms;
        let silent = self.broker.tick(self.now_ms);
        for conn in silent {
            if let Some(i) = self.links.iter().position(|l| Arc::ptr_eq(&l.conn, &conn)) {
                self.drop_link(i);
            }
        }
        for l in &self.links {
            if let (true, Some(c)) = (l.open, &l.client) {
                c.tick(self.now_ms);
            }
        }
    }

    /// Ends everything: every link drops, every client and the broker shut
    /// down and release what they hold. Audit the ledger after this.
    pub fn shutdown(&mut self) {
        for i in 0..self.links.len() {
            self.drop_link(i);
        }
        for l in &self.links {
            if let Some(c) = &l.client {
                c.shutdown();
            }
        }
        self.broker.shutdown();
    }

    /// Shuts down and audits the ledger.
    pub fn finish(mut self) -> Audit {
        self.shutdown();
        let audit = self.ledger.audit();
        drop(self);
        audit
    }
}

fn writer(i: usize, dir: Dir) -> String {
    match dir {
        Dir::Up => format!("client {i} writer"),
        Dir::Down => format!("broker writer {i}"),
    }
}

fn l_open(links: &[Link], i: usize) -> bool {
    links.get(i).is_some_and(|l| l.open)
}
