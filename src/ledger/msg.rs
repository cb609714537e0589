//! Counted message handles over generation-tagged, recycled cells.
//!
//! A cell's whole lifecycle state is one atomic word: generation (high 32
//! bits), borrows by writes in flight (8 bits) and the reference count (24
//! bits). Every step is a single compare-and-swap that checks the handle's
//! generation, so a stale handle is caught even after its cell was reused
//! for another message, and counting mode costs about what `Arc` costs.

use super::error::LedgerError;
use super::history::{Action, History};
use super::violation::{Subject, Violation, ViolationKind};
use super::{Mode, Shared};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};
use bytes::Bytes;
use serde::Serialize;
use std::fmt;

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const BORROW_SHIFT: u32 = COUNT_BITS;
const BORROW_MASK: u64 = 0xff << BORROW_SHIFT;
const GEN_SHIFT: u32 = 32;

fn gen_of(s: u64) -> u32 {
    (s >> GEN_SHIFT) as u32
}
fn count_of(s: u64) -> u32 {
    (s & COUNT_MASK) as u32
}
fn borrows_of(s: u64) -> u32 {
    ((s & BORROW_MASK) >> BORROW_SHIFT) as u32
}
fn pack(generation: u32, borrows: u32, count: u32) -> u64 {
    (u64::from(generation) << GEN_SHIFT)
        | ((u64::from(borrows) << BORROW_SHIFT) & BORROW_MASK)
        | (u64::from(count) & COUNT_MASK)
}

/// What a message carries, for reports (the MQTT control packet type, or a
/// will or application payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
#[allow(missing_docs)] // the variants are the MQTT packet names
pub enum MsgKind {
    Connect,
    Connack,
    Publish,
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Pingreq,
    Pingresp,
    Disconnect,
    Auth,
    /// A will message held by the broker until the connection ends.
    Will,
    /// Anything else (tests, benches).
    Other,
}

impl fmt::Display for MsgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{self:?}"));
        f.write_str(&s)
    }
}

pub(crate) struct Body {
    pub(crate) serial: u64,
    pub(crate) kind: MsgKind,
    pub(crate) data: Bytes,
}

/// The storage behind every handle of one message at a time.
pub(crate) struct MsgCell {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    /// The ledger's mode, copied here so the per-step check does not chase
    /// the pointer to `Shared`.
    full: bool,
    /// [`Mode::Off`]: every step succeeds without touching `state`.
    off: bool,
    pub(crate) state: AtomicU64,
    pub(crate) body: Mutex<Body>,
    /// Full mode: the current message's history. Held across the state CAS so
    /// that history order is the order of the state changes.
    pub(crate) hist: Mutex<History>,
}

impl MsgCell {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Self {
        MsgCell {
            full: shared.mode == Mode::Full,
            off: shared.mode == Mode::Off,
            shared,
            index,
            state: AtomicU64::new(0),
            body: Mutex::new(Body {
                serial: 0,
                kind: MsgKind::Other,
                data: Bytes::new(),
            }),
            hist: Mutex::new(History::default()),
        }
    }

    /// True while some message in this cell has references outstanding.
    pub(crate) fn is_live(&self) -> bool {
        count_of(self.state.load(Ordering::Acquire)) > 0
    }

    /// The audit's finding for a message still referenced at quiescence.
    pub(crate) fn leak_report(&self) -> Option<Violation> {
        let shared = &self.shared;
        let hist = lock(&self.hist);
        let s = self.state.load(Ordering::Acquire);
        if count_of(s) == 0 {
            return None;
        }
        let (serial, kind) = {
            let b = lock(&self.body);
            (b.serial, b.kind)
        };
        let at = shared.event(
            "audit",
            Action::Violation {
                kind: ViolationKind::Leak.to_string(),
            },
        );
        let mut history = hist.events();
        if !history.is_empty() {
            history.push(at.clone());
        }
        Some(Violation {
            kind: ViolationKind::Leak,
            subject: Subject::Msg { serial, kind },
            at,
            detail: format!("{} reference(s) never released", count_of(s)),
            history,
        })
    }

    /// Starts a new message in this (fresh or recycled) cell. An associated
    /// function rather than a method: loom's `Arc` cannot be a receiver.
    pub(crate) fn start(
        this: &Arc<Self>,
        serial: u64,
        kind: MsgKind,
        data: Bytes,
        site: &'static str,
    ) -> MsgRef {
        {
            let mut b = lock(&this.body);
            b.serial = serial;
            b.kind = kind;
            b.data = data;
        }
        let generation = gen_of(this.state.load(Ordering::Acquire));
        if this.shared.mode == Mode::Full {
            let mut h = lock(&this.hist);
            h.clear();
            h.record(this.shared.next_seq(), site, Action::Alloc);
            this.state.store(pack(generation, 0, 1), Ordering::Release);
        } else {
            this.state.store(pack(generation, 0, 1), Ordering::Release);
        }
        MsgRef {
            cell: this.clone(),
            generation,
            serial,
            kind,
            counted: true,
        }
    }
}

/// Outcome of one attempted state transition.
enum Step {
    Done { before: u64 },
    Stale { now: u64 },
}

/// One counted reference to a message (the C `nng_msg *` that the holder
/// must free). Not `Copy`, not `Clone`: a second reference is [`retain`]ed,
/// and every reference is given back with [`release`].
///
/// [`retain`]: MsgRef::retain
/// [`release`]: MsgRef::release
pub struct MsgRef {
    cell: Arc<MsgCell>,
    generation: u32,
    serial: u64,
    kind: MsgKind,
    counted: bool,
}

impl fmt::Debug for MsgRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MsgRef(#{} {} gen {}{})",
            self.serial,
            self.kind,
            self.generation,
            if self.counted { "" } else { ", alias" }
        )
    }
}

impl MsgRef {
    /// Ledger-wide serial number of the message (`msg #N`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// What the message carries.
    pub fn kind(&self) -> MsgKind {
        self.kind
    }

    /// True for a handle made by [`MsgRef::alias`].
    pub fn is_alias(&self) -> bool {
        !self.counted
    }

    /// The current reference count, or `None` once the message is freed.
    /// Under [`Mode::Off`] nothing is counted: always `Some(1)`.
    pub fn count(&self) -> Option<u32> {
        let s = self.cell.state.load(Ordering::Acquire);
        (gen_of(s) == self.generation).then(|| count_of(s))
    }

    /// True while the message this handle names has not been freed.
    pub fn is_live(&self) -> bool {
        self.count().is_some()
    }

    fn subject(&self) -> Subject {
        Subject::Msg {
            serial: self.serial,
            kind: self.kind,
        }
    }

    /// Applies `f` to the state word if this handle is current. In full
    /// mode the history lock is held across the CAS and `record` runs under
    /// it, so events appear in the order the state changed.
    fn step(
        &self,
        f: impl Fn(u64) -> Option<u64>,
        record: impl FnOnce(&mut History, &Shared, u64, u64),
    ) -> Step {
        if self.cell.off {
            // Off: the state word stays at "one reference, no borrow", so
            // `before` never reads as a last release.
            return Step::Done {
                before: pack(self.generation, 0, 2),
            };
        }
        let mut hist = self.cell.full.then(|| lock(&self.cell.hist));
        let mut cur = self.cell.state.load(Ordering::Acquire);
        loop {
            if gen_of(cur) != self.generation {
                return Step::Stale { now: cur };
            }
            let Some(next) = f(cur) else {
                return Step::Stale { now: cur };
            };
            match self.cell.state.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(h) = hist.as_mut() {
                        record(h, &self.cell.shared, cur, next);
                    }
                    return Step::Done { before: cur };
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Reports a misuse of this handle, with the message's history.
    fn violate(&self, kind: ViolationKind, site: &'static str, detail: String) {
        let shared = &self.cell.shared;
        let at = shared.event(
            site,
            Action::Violation {
                kind: kind.to_string(),
            },
        );
        let history = if shared.mode == Mode::Full {
            shared.with_msg_history(&self.cell, self.serial, |h| {
                h.push(at.clone());
                h.events()
            })
        } else {
            Vec::new()
        };
        shared.push_violation(kind, self.subject(), at, detail, history);
    }

    /// Takes another counted reference (the C `nni_msg_clone`).
    ///
    /// Retaining a freed message is reported as `UseAfterRelease`; the
    /// returned handle is then itself stale.
    pub fn retain(&self, site: &'static str) -> MsgRef {
        let step = self.step(
            |s| {
                let c = count_of(s);
                (c > 0 && u64::from(c) < COUNT_MASK).then(|| pack(gen_of(s), borrows_of(s), c + 1))
            },
            |h, sh, _, after| {
                h.record(
                    sh.next_seq(),
                    site,
                    Action::Retain {
                        count: count_of(after),
                    },
                )
            },
        );
        if let Step::Stale { .. } = step {
            self.violate(
                ViolationKind::UseAfterRelease,
                site,
                "retained after it was freed".into(),
            );
        }
        MsgRef {
            cell: self.cell.clone(),
            generation: self.generation,
            serial: self.serial,
            kind: self.kind,
            counted: true,
        }
    }

    /// Copies the handle *without* taking a reference (a C pointer copy).
    /// Correct code never calls this; the injected faults do, exactly where
    /// the historic C code copied a pointer instead of cloning it.
    pub fn alias(&self, site: &'static str) -> MsgRef {
        let shared = &self.cell.shared;
        if shared.mode == Mode::Full {
            shared.with_msg_history(&self.cell, self.serial, |h| {
                h.record(shared.next_seq(), site, Action::Alias)
            });
        }
        MsgRef {
            cell: self.cell.clone(),
            generation: self.generation,
            serial: self.serial,
            kind: self.kind,
            counted: false,
        }
    }

    /// A watch on this message: it holds no reference and records nothing,
    /// but can tell whether the message is still alive and report a misuse
    /// of it with its history. For checks made outside the ledger, such as
    /// the C shim's view of an aio slot that points at a message it does not
    /// own a reference to.
    pub fn watch(&self) -> MsgWatch {
        MsgWatch {
            cell: self.cell.clone(),
            generation: self.generation,
            serial: self.serial,
            kind: self.kind,
        }
    }

    /// Gives this reference back (the C `nni_msg_free`); the last release
    /// frees the message. Releasing through an alias counts as a release,
    /// as a free through a copied pointer does in C.
    pub fn release(mut self, site: &'static str) {
        self.counted = false;
        let step = self.step(
            |s| {
                let c = count_of(s);
                match c {
                    0 => None,
                    1 => Some(pack(gen_of(s).wrapping_add(1), 0, 0)),
                    _ => Some(pack(gen_of(s), borrows_of(s), c - 1)),
                }
            },
            |h, sh, before, after| {
                if count_of(before) == 1 {
                    if borrows_of(before) > 0 {
                        h.record(
                            sh.next_seq(),
                            site,
                            Action::Violation {
                                kind: ViolationKind::ReleaseWhileBorrowed.to_string(),
                            },
                        );
                    }
                    h.record(sh.next_seq(), site, Action::Free);
                } else {
                    h.record(
                        sh.next_seq(),
                        site,
                        Action::Release {
                            count: count_of(after),
                        },
                    );
                }
            },
        );
        match step {
            Step::Stale { .. } => self.violate(
                ViolationKind::DoubleRelease,
                site,
                "released after it was freed".into(),
            ),
            Step::Done { before, .. } if count_of(before) == 1 => {
                if borrows_of(before) > 0 {
                    let shared = &self.cell.shared;
                    let history = if shared.mode == Mode::Full {
                        lock(&self.cell.hist).events()
                    } else {
                        Vec::new()
                    };
                    let at = history
                        .iter()
                        .rev()
                        .find(|e| e.action == Action::Free)
                        .cloned();
                    shared.push_violation(
                        ViolationKind::ReleaseWhileBorrowed,
                        self.subject(),
                        at.unwrap_or_else(|| shared.event(site, Action::Free)),
                        format!("{} write(s) still in flight", borrows_of(before)),
                        history,
                    );
                }
                self.cell.shared.free_cell(&self.cell, self.serial);
            }
            Step::Done { .. } => {}
        }
    }

    /// Reads the message. A stale handle is reported as `UseAfterRelease`
    /// and gets an error instead of another message's bytes.
    pub fn data(&self, site: &'static str) -> Result<Bytes, LedgerError> {
        {
            let body = lock(&self.cell.body);
            let s = self.cell.state.load(Ordering::Acquire);
            if gen_of(s) == self.generation && body.serial == self.serial {
                return Ok(body.data.clone());
            }
        }
        self.violate(
            ViolationKind::UseAfterRelease,
            site,
            "read after it was freed".into(),
        );
        Err(self.stale_error())
    }

    fn stale_error(&self) -> LedgerError {
        LedgerError::StaleMessage {
            serial: self.serial,
            kind: self.kind,
        }
    }

    /// Changes the message in place. Only the sole owner may do that: with
    /// another reference or a write in flight it is `MutateWhileShared`
    /// (the change is still applied, as the C code would).
    pub fn mutate(
        &self,
        site: &'static str,
        f: impl FnOnce(&mut Bytes),
    ) -> Result<(), LedgerError> {
        if self.cell.off {
            let mut body = lock(&self.cell.body);
            f(&mut body.data);
            return Ok(());
        }
        // A read-modify-write, not a load: it linearises the ownership check
        // with concurrent retains and releases, and loom's partial-order
        // reduction only sees a race between a check and a later
        // compare-and-swap when both sides write.
        let s = self.cell.state.fetch_or(0, Ordering::AcqRel);
        if gen_of(s) != self.generation {
            self.violate(
                ViolationKind::UseAfterRelease,
                site,
                "mutated after it was freed".into(),
            );
            return Err(self.stale_error());
        }
        let shared = &self.cell.shared;
        if count_of(s) > 1 || borrows_of(s) > 0 {
            self.violate(
                ViolationKind::MutateWhileShared,
                site,
                format!(
                    "{} reference(s), {} write(s) in flight",
                    count_of(s),
                    borrows_of(s)
                ),
            );
        } else if shared.mode == Mode::Full {
            shared.with_msg_history(&self.cell, self.serial, |h| {
                h.record(shared.next_seq(), site, Action::Mutate)
            });
        }
        let mut body = lock(&self.cell.body);
        if body.serial == self.serial {
            f(&mut body.data);
        }
        Ok(())
    }

    /// Starts a write in flight that reads the message until the returned
    /// borrow is dropped.
    pub fn borrow(&self, site: &'static str) -> Result<Borrow, LedgerError> {
        let step = self.step(
            |s| {
                let b = borrows_of(s);
                (count_of(s) > 0 && b < 0xff).then(|| pack(gen_of(s), b + 1, count_of(s)))
            },
            |h, sh, _, _| h.record(sh.next_seq(), site, Action::BorrowStart),
        );
        match step {
            Step::Done { .. } => Ok(Borrow {
                msg: MsgRef {
                    cell: self.cell.clone(),
                    generation: self.generation,
                    serial: self.serial,
                    kind: self.kind,
                    counted: false,
                },
                site,
            }),
            Step::Stale { now } => {
                let why = if gen_of(now) == self.generation {
                    "too many writes in flight".to_string()
                } else {
                    "borrowed for a write after it was freed".to_string()
                };
                self.violate(ViolationKind::UseAfterRelease, site, why);
                Err(self.stale_error())
            }
        }
    }
}

impl Drop for MsgRef {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        // The count stays up, so the audit reports the leak; the history
        // says who dropped the reference.
        let shared = &self.cell.shared;
        if shared.mode == Mode::Full && self.is_live() {
            shared.with_msg_history(&self.cell, self.serial, |h| {
                h.record(shared.next_seq(), "drop", Action::DroppedWithoutRelease)
            });
        }
    }
}

/// A watch on one message (see [`MsgRef::watch`]): no reference, no
/// history of its own, only "is it alive" and "report this misuse of it".
#[derive(Clone)]
pub struct MsgWatch {
    cell: Arc<MsgCell>,
    generation: u32,
    serial: u64,
    kind: MsgKind,
}

impl fmt::Debug for MsgWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgWatch(#{} {})", self.serial, self.kind)
    }
}

impl MsgWatch {
    /// Ledger-wide serial number of the message watched.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// True while the message watched has not been freed.
    pub fn is_live(&self) -> bool {
        gen_of(self.cell.state.load(Ordering::Acquire)) == self.generation
    }

    /// Records a misuse of the message found by a check outside the ledger,
    /// with the message's history (also once it was freed), as the ledger's
    /// own checks do.
    pub fn report(&self, kind: ViolationKind, site: &'static str, detail: String) {
        let handle = MsgRef {
            cell: self.cell.clone(),
            generation: self.generation,
            serial: self.serial,
            kind: self.kind,
            counted: false,
        };
        handle.violate(kind, site, detail);
    }
}

/// A write in flight reading a message. Dropping it ends the borrow.
pub struct Borrow {
    msg: MsgRef,
    site: &'static str,
}

impl Borrow {
    /// The borrowed bytes; a message freed under the write is reported as
    /// `UseAfterRelease`.
    pub fn data(&self) -> Result<Bytes, LedgerError> {
        self.msg.data(self.site)
    }

    /// The message borrowed.
    pub fn msg(&self) -> &MsgRef {
        &self.msg
    }
}

impl Drop for Borrow {
    fn drop(&mut self) {
        // A message freed under the write was already reported as
        // ReleaseWhileBorrowed; its new generation has no borrow to end.
        let site = self.site;
        let _ = self.msg.step(
            |s| {
                let b = borrows_of(s);
                (b > 0).then(|| pack(gen_of(s), b - 1, count_of(s)))
            },
            |h, sh, _, _| h.record(sh.next_seq(), site, Action::BorrowEnd),
        );
    }
}
