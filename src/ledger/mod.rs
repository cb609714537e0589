//! The ownership ledger: counted message handles and operations, checked on
//! every run (DESIGN.md section 2).
//!
//! A [`Ledger`] is created per run (never a global: loom needs a fresh one
//! per iteration) and shared by `Arc`. Messages are [`MsgRef`]s, parked in
//! [`MsgSlot`]s; operations a caller waits on are [`Op`]s. Misuse is never
//! undefined behaviour: it is recorded as a [`Violation`] with the handle's
//! history and the run goes on, so one report can show every finding.
//!
//! ```
//! # #[cfg(not(feature = "loom"))] {
//! use mqtls_harness::ledger::{Ledger, Mode, MsgKind, ViolationKind};
//! let ledger = Ledger::new(Mode::Full);
//! let m = ledger.alloc(MsgKind::Subscribe, "t/0".into(), "client::subscribe");
//! let wire = m.alias("park (fault)"); // a pointer copy, not a reference
//! wire.release("write_done");
//! m.release("subscribe (error path)");
//! let v = &ledger.violations()[0];
//! assert_eq!(v.kind, ViolationKind::DoubleRelease);
//! # }
//! ```

mod actor;
mod error;
mod history;
pub mod misuse;
mod msg;
mod op;
mod slot;
mod violation;

pub use actor::{Actor, current as current_actor, set_actor, with_actor};
pub use error::LedgerError;
pub use history::{Action, Event};
pub use msg::{Borrow, MsgKind, MsgRef, MsgWatch};
pub use op::{Op, OpKind, Outcome};
pub use slot::MsgSlot;
pub use violation::{Subject, Violation, ViolationKind};

use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};
use bytes::Bytes;
use history::{Archive, History};
use msg::MsgCell;
use op::OpCell;
use serde::Serialize;
use std::collections::BTreeMap;

/// How much the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Counts and generations only: every misuse is still detected, at
    /// about the cost of an `Arc`, but reports carry no history.
    Counting,
    /// Counts plus the history of every handle, for reports that read like
    /// a diagnosis.
    Full,
    /// For overhead measurement only: detects nothing. Handles keep
    /// working (data readable and mutable, the cell's `Arc` keeps the
    /// bytes alive, operations still finish and call back), but there is no
    /// state word, no history, no table of messages or operations and no
    /// violation: the audit is always clean and the counts stay at zero.
    /// It exists so that benches can show what counting mode costs next to
    /// no accounting at all.
    Off,
}

/// How many freed messages keep their history for late misuse reports.
const ARCHIVE_CAPACITY: usize = 1 << 16;

struct CellTable {
    all: Vec<Arc<MsgCell>>,
    free: Vec<usize>,
    allocated: u64,
}

struct OpTable {
    next_id: u64,
    begun: u64,
    /// Counted under the same lock as `open`, so `begun == finished + open`
    /// holds in every snapshot.
    finished: u64,
    open: BTreeMap<u64, Arc<OpCell>>,
}

/// State every handle of one ledger points to.
pub(crate) struct Shared {
    mode: Mode,
    seq: AtomicU64,
    cells: Mutex<CellTable>,
    archive: Mutex<Archive<u64>>,
    ops: Mutex<OpTable>,
    violations: Mutex<Vec<Violation>>,
}

impl Shared {
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn event(&self, site: &'static str, action: Action) -> Event {
        Event::now(self.next_seq(), site, action)
    }

    /// Runs `f` on the history of message `serial`: the cell's own while it
    /// still holds that message, the archive once it was freed.
    pub(crate) fn with_msg_history<R>(
        &self,
        cell: &MsgCell,
        serial: u64,
        f: impl FnOnce(&mut History) -> R,
    ) -> R {
        let mut hist = lock(&cell.hist);
        let current =
            lock(&cell.body).serial == serial && hist.first_action() == Some(&Action::Alloc);
        if current {
            return f(&mut hist);
        }
        drop(hist);
        let mut archive = lock(&self.archive);
        match archive.get_mut(&serial) {
            Some(h) => f(h),
            None => f(&mut History::default()),
        }
    }

    pub(crate) fn push_violation(
        &self,
        kind: ViolationKind,
        subject: Subject,
        at: Event,
        detail: String,
        history: Vec<Event>,
    ) {
        if self.mode == Mode::Off {
            return;
        }
        lock(&self.violations).push(Violation {
            kind,
            subject,
            at,
            detail,
            history,
        });
    }

    /// Returns a freed cell to the pool, archiving its history first.
    pub(crate) fn free_cell(&self, cell: &Arc<MsgCell>, serial: u64) {
        if self.mode == Mode::Full {
            let events = std::mem::take(&mut *lock(&cell.hist));
            lock(&self.archive).put(serial, events);
        }
        lock(&cell.body).data = Bytes::new();
        lock(&self.cells).free.push(cell.index);
    }
}

/// One run's ledger of messages and operations.
pub struct Ledger {
    shared: Arc<Shared>,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Cells and open operations point back at `Shared`; dropping the
        // tables breaks those cycles. Handles still held elsewhere keep
        // their own cell alive.
        let cells = std::mem::take(&mut lock(&self.shared.cells).all);
        drop(cells);
        let open = std::mem::take(&mut lock(&self.shared.ops).open);
        drop(open);
    }
}

/// Counts at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Messages ever allocated.
    pub allocated: u64,
    /// Messages freed by their last release.
    pub freed: u64,
    /// Messages with references outstanding right now.
    pub live: u64,
    /// Operations ever begun.
    pub ops_begun: u64,
    /// Operations finished (once each).
    pub ops_finished: u64,
    /// Operations begun and not finished yet.
    pub ops_open: u64,
    /// Violations recorded so far (audit findings not included).
    pub violations: u64,
}

/// The result of [`Ledger::audit`].
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// Counts when the audit ran.
    pub stats: Stats,
    /// Every violation: those recorded during the run, then leaks and
    /// unfinished operations found by the audit.
    pub violations: Vec<Violation>,
}

impl Audit {
    /// True when nothing was misused, leaked or left unfinished.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// How many violations of `kind` the audit holds.
    pub fn count(&self, kind: ViolationKind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }
}

impl Ledger {
    /// A fresh ledger.
    pub fn new(mode: Mode) -> Arc<Ledger> {
        Arc::new(Ledger {
            shared: Arc::new(Shared {
                mode,
                seq: AtomicU64::new(1),
                cells: Mutex::new(CellTable {
                    all: Vec::new(),
                    free: Vec::new(),
                    allocated: 0,
                }),
                archive: Mutex::new(Archive::new(ARCHIVE_CAPACITY)),
                ops: Mutex::new(OpTable {
                    next_id: 1,
                    begun: 0,
                    finished: 0,
                    open: BTreeMap::new(),
                }),
                violations: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The recording mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// Allocates a message with one reference, held by the returned handle.
    pub fn alloc(&self, kind: MsgKind, data: Bytes, site: &'static str) -> MsgRef {
        if self.shared.mode == Mode::Off {
            // A cell of its own, never registered nor recycled: dropping the
            // last handle frees it, as an `Arc` would.
            let cell = Arc::new(MsgCell::new(self.shared.clone(), usize::MAX));
            return MsgCell::start(&cell, 0, kind, data, site);
        }
        let mut t = lock(&self.shared.cells);
        t.allocated += 1;
        let serial = t.allocated;
        let cell = match t.free.pop().and_then(|i| t.all.get(i).cloned()) {
            Some(c) => c,
            None => {
                let index = t.all.len();
                let c = Arc::new(MsgCell::new(self.shared.clone(), index));
                t.all.push(c.clone());
                c
            }
        };
        // Started under the table lock: `stats` counts `allocated` and the
        // live cells under it, so a message being set up must already be
        // live there, or it would pass for freed for a moment.
        MsgCell::start(&cell, serial, kind, data, site)
    }

    /// Begins an operation that must be finished exactly once.
    pub fn begin_op(&self, kind: OpKind, site: &'static str) -> Op {
        if self.shared.mode == Mode::Off {
            // Ids stay unique (the pending table looks ops up by id), but the
            // op is in no table.
            let id = self.shared.next_seq();
            return Op::from_cell(Arc::new(OpCell::new(self.shared.clone(), id, kind, site)));
        }
        let cell = {
            let mut t = lock(&self.shared.ops);
            let id = t.next_id;
            t.next_id += 1;
            t.begun += 1;
            let cell = Arc::new(OpCell::new(self.shared.clone(), id, kind, site));
            t.open.insert(id, cell.clone());
            cell
        };
        Op::from_cell(cell)
    }

    /// Violations recorded so far (no leak scan: safe to call mid-run).
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.violations).clone()
    }

    /// How many violations were recorded so far.
    pub fn violation_count(&self) -> usize {
        lock(&self.shared.violations).len()
    }

    /// Counts right now.
    pub fn stats(&self) -> Stats {
        let (allocated, live) = {
            let t = lock(&self.shared.cells);
            let live = t.all.iter().filter(|c| c.is_live()).count() as u64;
            (t.allocated, live)
        };
        let (ops_begun, ops_finished, ops_open) = {
            let t = lock(&self.shared.ops);
            (t.begun, t.finished, t.open.len() as u64)
        };
        Stats {
            allocated,
            freed: allocated - live,
            live,
            ops_begun,
            ops_finished,
            ops_open,
            violations: self.violation_count() as u64,
        }
    }

    /// How many releases (freeing or not) were recorded at `site`, over every message whose
    /// history is kept (full mode only: 0 otherwise; freed messages beyond
    /// the archive's last 65,536 and the elided middle of very long
    /// histories are not seen). Lets a test tie a counter to the ledger:
    /// "86 drops" is 86 releases at the drop site.
    pub fn releases_at(&self, site: &str) -> usize {
        let count = |h: &History| {
            h.events()
                .iter()
                .filter(|e| {
                    e.site == site && matches!(e.action, Action::Release { .. } | Action::Free)
                })
                .count()
        };
        let cells: Vec<Arc<MsgCell>> = lock(&self.shared.cells).all.clone();
        let live: usize = cells.iter().map(|c| count(&lock(&c.hist))).sum();
        let archived: usize = lock(&self.shared.archive).histories().map(count).sum();
        live + archived
    }

    /// Checks the ledger at quiescence: every recorded violation, plus a
    /// `Leak` for every message still referenced and an `OpNeverFinished`
    /// for every operation still open. Call it when no actor is running.
    pub fn audit(&self) -> Audit {
        let stats = self.stats();
        let mut violations = self.violations();
        let live: Vec<Arc<MsgCell>> = lock(&self.shared.cells)
            .all
            .iter()
            .filter(|c| c.is_live())
            .cloned()
            .collect();
        // Cells are reused in any order; reports list leaks oldest first.
        let mut leaks: Vec<Violation> = live.iter().filter_map(|c| c.leak_report()).collect();
        leaks.sort_by_key(|v| match v.subject {
            Subject::Msg { serial, .. } => serial,
            Subject::Op { id, .. } => id,
        });
        violations.extend(leaks);
        let open: Vec<Arc<OpCell>> = lock(&self.shared.ops).open.values().cloned().collect();
        for op in open {
            if let Some(v) = op.never_finished_report() {
                violations.push(v);
            }
        }
        Audit { stats, violations }
    }
}
