//! The per-connection send queue plus the write in flight.
//!
//! Ownership (ZOO.md rule 3): a queued message's reference travels to the
//! wire. Write completion releases it (the transport), a write error
//! releases it (the protocol's send callback), and close releases the ones
//! still queued. The write in flight sits in a [`MsgSlot`]; every release of
//! it clears the slot in the same critical section (rule 6).
//!
//! The outbox does not know how a message becomes bytes: each entry carries
//! a frame description `F` that the writer interprets (a raw packet, or a
//! PUBLISH delivery whose header is encoded per subscriber).
//!
//! Bounds: at most `max_queued` entries of any kind. Entries queued with
//! [`Outbox::enqueue_droppable`] (the broker's QoS 0 deliveries) are also
//! counted in bytes and hold a [`Charge`] against the broker's memory
//! budget until they leave the queue; the broker's queue policy reads
//! [`Outbox::droppable`] and sheds the oldest of them with
//! [`Outbox::drop_oldest_droppable`] when a consumer falls behind.

use super::budget::Charge;
use crate::faults::{Fault, FaultSet};
use crate::ledger::{Borrow, LedgerError, MsgRef, MsgSlot, Op, Outcome};
use crate::sync::{Mutex, lock};
use std::collections::VecDeque;

/// One thing to send.
#[derive(Debug)]
pub enum Entry<F> {
    /// A message the queue owns one reference of.
    Msg {
        /// The reference that travels to the wire.
        msg: MsgRef,
        /// How the writer encodes it.
        frame: F,
    },
    /// A message still held in its operation's slot (a QoS 0 PUBLISH): the
    /// operation finishes when the write does.
    Op {
        /// The caller's operation; its slot holds the message.
        op: Op,
        /// How the writer encodes it.
        frame: F,
    },
}

impl<F> Entry<F> {
    fn frame(&self) -> &F {
        match self {
            Entry::Msg { frame, .. } | Entry::Op { frame, .. } => frame,
        }
    }
}

impl<F> State<F> {
    /// Takes a queued entry that leaves the queue out of the counts.
    fn forget(&mut self, q: &Queued<F>) {
        self.forget_charge(q.droppable.as_ref());
    }

    fn forget_charge(&mut self, droppable: Option<&Charge>) {
        if let Some(c) = droppable {
            self.droppable.entries -= 1;
            self.droppable.bytes -= c.bytes();
        }
    }
}

/// Why an entry was not queued. The entry was already disposed of by the
/// outbox (released, its op finished with `Closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closed.
    Closed,
    /// The queue is at its bound.
    Full,
}

/// The write in flight: a message borrowed for the duration of the write.
/// Hand it back to [`Outbox::write_done`].
pub struct WriteJob<F> {
    id: u64,
    borrow: Borrow,
    frame: F,
}

impl<F> WriteJob<F> {
    /// The bytes of the message being written (a freed message is reported
    /// by the ledger and refused here).
    pub fn data(&self) -> Result<bytes::Bytes, LedgerError> {
        self.borrow.data()
    }

    /// How to encode it.
    pub fn frame(&self) -> &F {
        &self.frame
    }

    /// The message written.
    pub fn msg(&self) -> &MsgRef {
        self.borrow.msg()
    }
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// All bytes were handed to the transport.
    Complete,
    /// The transport failed; the connection is going down.
    Failed(String),
}

/// A queued entry; droppable ones carry their budget charge.
struct Queued<F> {
    entry: Entry<F>,
    droppable: Option<Charge>,
}

/// Droppable entries waiting in one outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Droppable {
    /// How many.
    pub entries: usize,
    /// Their charged bytes.
    pub bytes: usize,
}

struct State<F> {
    queue: VecDeque<Queued<F>>,
    droppable: Droppable,
    /// The transport's write slot.
    tx: MsgSlot,
    /// The operation finished by the write in flight (QoS 0 PUBLISH).
    tx_op: Option<Op>,
    /// Id of the write in flight, if one is.
    busy: Option<u64>,
    next_job: u64,
    closed: bool,
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The per-connection send queue and write in flight.
pub struct Outbox<F> {
    state: Mutex<State<F>>,
    faults: FaultSet,
    max_queued: usize,
    waker: Option<Waker>,
}

impl<F: Clone> Outbox<F> {
    /// An empty, open outbox holding at most `max_queued` entries.
    pub fn new(faults: FaultSet, max_queued: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                droppable: Droppable::default(),
                tx: MsgSlot::new(),
                tx_op: None,
                busy: None,
                next_job: 1,
                closed: false,
            }),
            faults,
            max_queued,
            waker: None,
        }
    }

    /// Calls `waker` (outside the lock) whenever an entry is queued or the
    /// outbox closes, so an async writer can sleep until there is work.
    pub fn with_waker(mut self, waker: impl Fn() + Send + Sync + 'static) -> Self {
        self.waker = Some(Box::new(waker));
        self
    }

    fn wake(&self) {
        if let Some(w) = &self.waker {
            w();
        }
    }

    /// Queues an entry. When refused, the entry's reference is released and
    /// its operation finished here, so nothing leaks.
    pub fn enqueue(&self, entry: Entry<F>) -> Result<(), Refused> {
        self.push(Queued {
            entry,
            droppable: None,
        })
    }

    /// Queues an entry the broker may shed later (a QoS 0 delivery): it is
    /// counted in [`Outbox::droppable`] and holds `charge` until it leaves
    /// the queue. Refused as [`Outbox::enqueue`] is.
    pub fn enqueue_droppable(&self, entry: Entry<F>, charge: Charge) -> Result<(), Refused> {
        self.push(Queued {
            entry,
            droppable: Some(charge),
        })
    }

    /// Queues an entry whose number is bounded elsewhere (a QoS 1/2
    /// delivery inside its session's in-flight window): only a closed
    /// outbox refuses it, so a full queue never strands an in-flight
    /// delivery that was never sent.
    pub fn enqueue_windowed(&self, entry: Entry<F>) -> Result<(), Refused> {
        self.push_bounded(
            Queued {
                entry,
                droppable: None,
            },
            false,
        )
    }

    fn push(&self, queued: Queued<F>) -> Result<(), Refused> {
        self.push_bounded(queued, true)
    }

    fn push_bounded(&self, queued: Queued<F>, bounded: bool) -> Result<(), Refused> {
        let (why, queued) = {
            let mut st = lock(&self.state);
            let why = if st.closed {
                Refused::Closed
            } else if bounded && st.queue.len() >= self.max_queued {
                Refused::Full
            } else {
                if let Some(c) = &queued.droppable {
                    st.droppable.entries += 1;
                    st.droppable.bytes += c.bytes();
                }
                st.queue.push_back(queued);
                drop(st);
                self.wake();
                return Ok(());
            };
            (why, queued)
        };
        match queued.entry {
            Entry::Msg { msg, .. } => msg.release("outbox::enqueue (refused)"),
            Entry::Op { op, .. } => {
                if let Some(m) = op.take_msg() {
                    m.release("outbox::enqueue (refused)");
                }
                let outcome = match why {
                    Refused::Closed => Outcome::Closed,
                    Refused::Full => Outcome::Failed("send queue full".into()),
                };
                op.finish(outcome, "outbox::enqueue (refused)");
            }
        }
        Err(why)
    }

    /// Droppable entries waiting (not counting the write in flight).
    pub fn droppable(&self) -> Droppable {
        lock(&self.state).droppable
    }

    /// Removes the oldest droppable entry, releases its message once at
    /// `site` and returns the bytes it was charged; `None` when there is
    /// none. The write in flight is never touched.
    pub fn drop_oldest_droppable(&self, site: &'static str) -> Option<usize> {
        let queued = {
            let mut st = lock(&self.state);
            if st.droppable.entries == 0 {
                // The usual case for a QoS 1 consumer: no scan of its
                // in-flight copies.
                return None;
            }
            let at = st.queue.iter().position(|q| q.droppable.is_some())?;
            let q = st.queue.remove(at)?;
            st.forget(&q);
            q
        };
        let bytes = queued.droppable.as_ref().map_or(0, Charge::bytes);
        match queued.entry {
            Entry::Msg { msg, .. } => msg.release(site),
            Entry::Op { op, .. } => {
                if let Some(m) = op.take_msg() {
                    m.release(site);
                }
                op.finish(Outcome::Failed("dropped by the queue limit".into()), site);
            }
        }
        Some(bytes)
    }

    /// Wakes the writer without queueing anything (the connection should
    /// flush and close).
    pub fn poke(&self) {
        self.wake();
    }

    /// Opens a closed outbox again for a new connection of the same
    /// client (reconnect). Whatever the write slot still holds is released
    /// first, as teardown would.
    pub fn reopen(&self) {
        let stale = {
            let mut st = lock(&self.state);
            st.closed = false;
            if st.busy.is_none() {
                st.tx.take()
            } else {
                None
            }
        };
        if let Some(m) = stale {
            m.release("reopen: write slot");
        }
    }

    /// Entries waiting (not counting the write in flight).
    pub fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Takes the queued messages whose frame `stale` picks out of the queue
    /// and releases them at `site` (an expired delivery nobody started to
    /// write). The write in flight is never touched: its bytes are already
    /// going out. Operations' entries are left alone (only the caller may
    /// give up its own request). Returns how many were released.
    pub fn discard_queued(&self, stale: impl Fn(&F) -> bool, site: &'static str) -> usize {
        let picked: Vec<MsgRef> = {
            let mut st = lock(&self.state);
            let mut picked = Vec::new();
            let mut kept = VecDeque::with_capacity(st.queue.len());
            let queue = std::mem::take(&mut st.queue);
            for q in queue {
                match q.entry {
                    Entry::Msg { msg, frame } if stale(&frame) => {
                        st.forget_charge(q.droppable.as_ref());
                        picked.push(msg);
                    }
                    entry => kept.push_back(Queued { entry, ..q }),
                }
            }
            st.queue = kept;
            picked
        };
        let n = picked.len();
        for m in picked {
            m.release(site);
        }
        n
    }

    /// True once [`Outbox::close`] ran.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// True while nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        let st = lock(&self.state);
        st.queue.is_empty() && st.busy.is_none()
    }

    /// Starts writing the next entry, if any and if no write is in flight.
    pub fn start_write(&self) -> Option<WriteJob<F>> {
        let mut st = lock(&self.state);
        if st.busy.is_some() || st.closed {
            return None;
        }
        loop {
            let queued = st.queue.pop_front()?;
            st.forget(&queued);
            // The bytes now belong to the write; a droppable entry's charge
            // ends here.
            let Queued { entry, .. } = queued;
            let frame = entry.frame().clone();
            let (msg, op) = match entry {
                Entry::Msg { msg, .. } => (msg, None),
                Entry::Op { op, .. } => match op.take_msg() {
                    Some(m) => (m, Some(op)),
                    None => {
                        // The caller took its message back (cancel); there
                        // is nothing to write for this op any more.
                        op.finish(Outcome::Canceled, "outbox::start_write (empty op)");
                        continue;
                    }
                },
            };
            let borrow = match msg.borrow("tls::write start") {
                Ok(b) => b,
                Err(_) => {
                    // Freed under the queue: the ledger has the report, and
                    // dropping a stale handle records nothing more.
                    drop(msg);
                    if let Some(op) = op {
                        let why = Outcome::Failed("message freed while queued".into());
                        op.finish(why, "tls::write start");
                    }
                    continue;
                }
            };
            if let Some(stale) = st.tx.set(msg) {
                // Only a completion that released without clearing leaves
                // something here; releasing it is what the C code did next.
                stale.release("tls::write start (previous write slot)");
            }
            let id = st.next_job;
            st.next_job += 1;
            st.busy = Some(id);
            st.tx_op = op;
            return Some(WriteJob { id, borrow, frame });
        }
    }

    /// Ends the write in flight. On `Complete` the transport releases the
    /// wire reference; on `Failed` the send callback does. Either way the
    /// slot is cleared with the release, and a QoS 0 op is finished.
    pub fn write_done(&self, job: WriteJob<F>, result: WriteResult) {
        let WriteJob { id, borrow, .. } = job;
        // The borrow ends before the release: the write no longer reads it.
        drop(borrow);
        let mut st = lock(&self.state);
        if st.busy != Some(id) {
            return;
        }
        st.busy = None;
        let op = st.tx_op.take();
        match &result {
            WriteResult::Complete => {
                self.faults
                    .release_slot(Fault::Nanonng230, &mut st.tx, "tls::write_done")
            }
            WriteResult::Failed(_) => {
                if let Some(m) = st.tx.take() {
                    m.release("send_cb (write error)");
                }
            }
        }
        drop(st);
        if let Some(op) = op {
            let outcome = match result {
                WriteResult::Complete => Outcome::Success,
                WriteResult::Failed(why) => Outcome::Failed(why),
            };
            op.finish(outcome, "send_cb");
        }
    }

    /// Closes the outbox: every queued entry is released (and its op
    /// finished with `Closed`); the write in flight, if any, is left to its
    /// completion. With no write in flight, whatever the write slot still
    /// holds is released (teardown).
    pub fn close(&self) {
        let (drained, stale) = {
            let mut st = lock(&self.state);
            st.closed = true;
            let drained: Vec<Entry<F>> = st.queue.drain(..).map(|q| q.entry).collect();
            st.droppable = Droppable::default();
            let stale = if st.busy.is_none() {
                st.tx.take()
            } else {
                None
            };
            (drained, stale)
        };
        for e in drained {
            match e {
                Entry::Msg { msg, .. } => msg.release("close: queue flush"),
                Entry::Op { op, .. } => {
                    op.with_msg(|slot| {
                        self.faults
                            .release_slot(Fault::Nanomq1329, slot, "close: queue flush")
                    });
                    op.finish(Outcome::Closed, "close: queue flush");
                }
            }
        }
        if let Some(m) = stale {
            m.release("teardown: write slot");
        }
        self.wake();
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::kernels::budget::MemoryBudget;
    use crate::ledger::{Ledger, Mode, MsgKind};
    use crate::sync::{Arc, AtomicUsize, Ordering};
    use bytes::Bytes;

    fn entry(ledger: &Ledger, n: usize) -> Entry<()> {
        Entry::Msg {
            msg: ledger.alloc(MsgKind::Publish, Bytes::from(vec![0u8; n]), "test: publish"),
            frame: (),
        }
    }

    // The tokio shell parks its writer until the waker runs: an enqueue
    // that does not wake leaves the message queued until the next read.
    #[test]
    fn an_enqueue_and_a_poke_wake_the_writer() {
        let ledger = Ledger::new(Mode::Full);
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let outbox = Outbox::new(FaultSet::NONE, 8).with_waker(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        outbox.enqueue(entry(&ledger, 1)).unwrap();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        outbox.poke();
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        outbox.close();
        assert!(ledger.audit().is_clean());
    }

    // One write at a time per connection: a second start while the first is
    // in flight would replace the message in the write slot and release it
    // while the transport still reads it: the use-after-free of nanonng-230
    // (a slot released without clearing), reached another way.
    #[test]
    fn no_second_write_starts_while_one_is_in_flight() {
        let ledger = Ledger::new(Mode::Full);
        let outbox: Outbox<()> = Outbox::new(FaultSet::NONE, 8);
        outbox.enqueue(entry(&ledger, 1)).unwrap();
        outbox.enqueue(entry(&ledger, 2)).unwrap();
        let first = outbox.start_write().unwrap();
        assert!(outbox.start_write().is_none());
        assert_eq!(outbox.queued(), 1);
        assert_eq!(first.data().unwrap().len(), 1);
        outbox.write_done(first, WriteResult::Complete);
        let second = outbox.start_write().unwrap();
        assert_eq!(second.data().unwrap().len(), 2);
        outbox.write_done(second, WriteResult::Complete);
        outbox.close();
        assert!(ledger.audit().is_clean());
    }

    // Message expiry discards the queued deliveries that expired and keeps
    // the rest (the broker's `expire`); the writer's drain ends on an idle
    // outbox, so one that reads idle too early drops what is left to write.
    #[test]
    fn discard_takes_only_the_stale_entries_and_idle_means_nothing_left() {
        let ledger = Ledger::new(Mode::Full);
        let outbox: Outbox<bool> = Outbox::new(FaultSet::NONE, 8);
        assert!(outbox.is_idle() && !outbox.is_closed());
        for stale in [true, false, true] {
            let msg = ledger.alloc(MsgKind::Publish, Bytes::new(), "test: publish");
            outbox.enqueue(Entry::Msg { msg, frame: stale }).unwrap();
        }
        assert!(!outbox.is_idle());
        assert_eq!(outbox.discard_queued(|stale| *stale, "test: discard"), 2);
        assert_eq!(outbox.queued(), 1);
        let job = outbox.start_write().unwrap();
        assert!(!*job.frame());
        assert!(!outbox.is_idle(), "a write is in flight");
        outbox.write_done(job, WriteResult::Complete);
        assert!(outbox.is_idle());
        outbox.close();
        assert!(outbox.is_closed());
        assert!(ledger.audit().is_clean());
    }

    // The queue policy sheds by these counts (broker/limits.rs); a count
    // that is not given back when an entry leaves by the write, a discard
    // or a drop makes the policy shed a consumer that is keeping up.
    #[test]
    fn droppable_counts_follow_every_way_an_entry_leaves() {
        let ledger = Ledger::new(Mode::Full);
        let budget = MemoryBudget::new(0);
        let outbox: Outbox<()> = Outbox::new(FaultSet::NONE, 8);
        assert_eq!(outbox.drop_oldest_droppable("test: drop"), None);
        for n in [10, 20, 40] {
            outbox
                .enqueue_droppable(entry(&ledger, n), budget.charge(n))
                .unwrap();
        }
        outbox.enqueue(entry(&ledger, 5)).unwrap();
        let counts = |entries, bytes| Droppable { entries, bytes };
        assert_eq!(outbox.droppable(), counts(3, 70));
        assert_eq!(outbox.queued(), 4);

        let job = outbox.start_write().unwrap();
        assert_eq!(outbox.droppable(), counts(2, 60));
        assert_eq!(outbox.queued(), 3);
        assert_eq!(budget.used(), 60, "the written entry's charge ended");
        outbox.write_done(job, WriteResult::Complete);

        assert_eq!(outbox.drop_oldest_droppable("test: drop"), Some(20));
        assert_eq!(outbox.droppable(), counts(1, 40));
        assert_eq!(ledger.releases_at("test: drop"), 1);

        assert_eq!(outbox.discard_queued(|_| true, "test: discard"), 2);
        assert_eq!(outbox.droppable(), counts(0, 0));
        assert_eq!(outbox.drop_oldest_droppable("test: drop"), None);
        assert_eq!(budget.used(), 0);
        assert!(ledger.audit().is_clean());
    }
}
