//! Operations a caller waits on (the C aio): begun once, finished exactly
//! once, never touched by the protocol after that.

use super::history::{Action, Event};
use super::msg::MsgRef;
use super::slot::MsgSlot;
use super::violation::{Subject, Violation, ViolationKind};
use super::{Mode, Shared};
use crate::sync::{Arc, Condvar, Mutex, lock};
use serde::Serialize;
use std::fmt;

/// What an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum OpKind {
    /// CONNECT waiting for CONNACK.
    Connect,
    /// SUBSCRIBE waiting for SUBACK.
    Subscribe,
    /// UNSUBSCRIBE waiting for UNSUBACK.
    Unsubscribe,
    /// PUBLISH (QoS 1 or 2) waiting for its acknowledgement.
    Publish,
    /// A receive waiting for an incoming message.
    Receive,
    /// Anything else (tests, benches).
    Other,
}

impl fmt::Display for OpKind {
    /// The same spelling as the JSON (`SUBSCRIBE`), so `op #3 SUBSCRIBE` in a
    /// diagnosis and in a report name the same thing, as messages do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Connect => "CONNECT",
            OpKind::Subscribe => "SUBSCRIBE",
            OpKind::Unsubscribe => "UNSUBSCRIBE",
            OpKind::Publish => "PUBLISH",
            OpKind::Receive => "RECEIVE",
            OpKind::Other => "OTHER",
        })
    }
}

/// How an operation finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The peer acknowledged it.
    Success,
    /// The caller or the protocol cancelled it.
    Canceled,
    /// Its timer fired first.
    TimedOut,
    /// The connection closed under it.
    Closed,
    /// Any other failure, described.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Canceled => f.write_str("canceled"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Closed => f.write_str("closed"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

type Callback = Box<dyn FnOnce(&Outcome) + Send>;

struct OpState {
    outcome: Option<Outcome>,
    msg: MsgSlot,
    result: MsgSlot,
    callbacks: Vec<Callback>,
    hist: Vec<Event>,
}

pub(crate) struct OpCell {
    shared: Arc<Shared>,
    id: u64,
    kind: OpKind,
    state: Mutex<OpState>,
    done: Condvar,
}

impl OpCell {
    pub(crate) fn new(shared: Arc<Shared>, id: u64, kind: OpKind, site: &'static str) -> Self {
        let mut hist = Vec::new();
        if shared.mode == Mode::Full {
            hist.push(shared.event(site, Action::OpBegin));
        }
        OpCell {
            shared,
            id,
            kind,
            state: Mutex::new(OpState {
                outcome: None,
                msg: MsgSlot::new(),
                result: MsgSlot::new(),
                callbacks: Vec::new(),
                hist,
            }),
            done: Condvar::new(),
        }
    }

    fn subject(&self) -> Subject {
        Subject::Op {
            id: self.id,
            kind: self.kind,
        }
    }

    fn record(&self, st: &mut OpState, site: &'static str, action: Action) {
        if self.shared.mode == Mode::Full {
            st.hist.push(self.shared.event(site, action));
        }
    }

    fn violate(&self, st: &mut OpState, kind: ViolationKind, site: &'static str, detail: String) {
        let at = self.shared.event(
            site,
            Action::Violation {
                kind: kind.to_string(),
            },
        );
        let history = if self.shared.mode == Mode::Full {
            st.hist.push(at.clone());
            st.hist.clone()
        } else {
            Vec::new()
        };
        self.shared
            .push_violation(kind, self.subject(), at, detail, history);
    }

    /// The audit's finding for an operation still open at quiescence.
    pub(crate) fn never_finished_report(&self) -> Option<Violation> {
        let st = lock(&self.state);
        if st.outcome.is_some() {
            return None;
        }
        let at = self.shared.event(
            "audit",
            Action::Violation {
                kind: ViolationKind::OpNeverFinished.to_string(),
            },
        );
        let mut history = st.hist.clone();
        if !history.is_empty() {
            history.push(at.clone());
        }
        Some(Violation {
            kind: ViolationKind::OpNeverFinished,
            subject: self.subject(),
            at,
            detail: "nobody finished it; its waiter would hang".into(),
            history,
        })
    }
}

/// A handle to an operation. Clones name the same operation: the caller
/// keeps one to wait on, the protocol parks one in its pending table.
#[derive(Clone)]
pub struct Op {
    cell: Arc<OpCell>,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Op(#{} {})", self.cell.id, self.cell.kind)
    }
}

impl Op {
    pub(crate) fn from_cell(cell: Arc<OpCell>) -> Self {
        Op { cell }
    }

    /// Ledger-wide id (`op #N`).
    pub fn id(&self) -> u64 {
        self.cell.id
    }

    /// What the operation waits for.
    pub fn kind(&self) -> OpKind {
        self.cell.kind
    }

    /// Checks that the operation is still unfinished before the protocol
    /// acts on it; after finish this is `OpTouchedAfterFinish` and `false`.
    pub fn touch(&self, site: &'static str) -> bool {
        let mut st = lock(&self.cell.state);
        self.touch_locked(&mut st, site)
    }

    fn touch_locked(&self, st: &mut OpState, site: &'static str) -> bool {
        match &st.outcome {
            None => {
                self.cell.record(st, site, Action::OpTouch);
                true
            }
            Some(o) => {
                let detail = format!("already finished: {o}");
                self.cell
                    .violate(st, ViolationKind::OpTouchedAfterFinish, site, detail);
                false
            }
        }
    }

    /// Records that a waiter now blocks until the operation finishes (for
    /// callers that wait elsewhere than [`Op::wait`], such as a C thread in
    /// `nni_aio_wait`). Waiting on a finished operation is not a misuse: it
    /// returns at once.
    pub fn note_wait(&self, site: &'static str) {
        let mut st = lock(&self.cell.state);
        self.cell.record(&mut st, site, Action::OpWait);
    }

    /// Records a request to cancel the operation. Cancelling a finished
    /// operation is allowed (it does nothing); finishing a cancelled one is
    /// still the provider's job, and an operation nobody finishes is
    /// reported by the audit.
    pub fn note_cancel(&self, site: &'static str) {
        let mut st = lock(&self.cell.state);
        self.cell.record(&mut st, site, Action::OpCancel);
    }

    /// Records a misuse of the operation found by a check outside the
    /// ledger (the C shim sees an aio used after it was freed), with the
    /// operation's history, as the ledger's own checks do.
    pub fn report(&self, kind: ViolationKind, site: &'static str, detail: String) {
        let mut st = lock(&self.cell.state);
        self.cell.violate(&mut st, kind, site, detail);
    }

    /// Puts the request message on the operation (the caller's SUBSCRIBE,
    /// say). Returns whatever the slot held before, which the caller must
    /// release.
    #[must_use = "a message displaced from the slot must be released"]
    pub fn set_msg(&self, m: MsgRef, site: &'static str) -> Option<MsgRef> {
        let mut st = lock(&self.cell.state);
        self.touch_locked(&mut st, site);
        self.cell.record(&mut st, site, Action::OpSetMsg);
        st.msg.set(m)
    }

    /// Takes the request message back out. Allowed after finish: on error
    /// the caller owns what is left in the slot.
    pub fn take_msg(&self) -> Option<MsgRef> {
        lock(&self.cell.state).msg.take()
    }

    /// Runs `f` on the request slot under the operation's lock.
    pub fn with_msg<R>(&self, f: impl FnOnce(&mut MsgSlot) -> R) -> R {
        f(&mut lock(&self.cell.state).msg)
    }

    /// Attaches the result (the SUBACK, say) before finishing. Returns
    /// whatever the result slot held before.
    #[must_use = "a message displaced from the slot must be released"]
    pub fn set_result(&self, m: MsgRef, site: &'static str) -> Option<MsgRef> {
        let mut st = lock(&self.cell.state);
        self.touch_locked(&mut st, site);
        st.result.set(m)
    }

    /// Takes the result; the caller owns it.
    pub fn take_result(&self) -> Option<MsgRef> {
        lock(&self.cell.state).result.take()
    }

    /// Finishes the operation. Returns `true` for the one call that did;
    /// any later call is `OpFinishedTwice` and returns `false`.
    pub fn finish(&self, outcome: Outcome, site: &'static str) -> bool {
        let callbacks = {
            let mut st = lock(&self.cell.state);
            if let Some(first) = &st.outcome {
                let detail = format!("first finished {first}, now {outcome}");
                self.cell
                    .violate(&mut st, ViolationKind::OpFinishedTwice, site, detail);
                return false;
            }
            self.cell.record(
                &mut st,
                site,
                Action::OpFinish {
                    outcome: outcome.to_string(),
                },
            );
            st.outcome = Some(outcome.clone());
            // Removed from the open table under the op's own lock, so an
            // audit never sees a finished op as open. Off mode has no table.
            if self.cell.shared.mode != Mode::Off {
                let mut t = lock(&self.cell.shared.ops);
                t.open.remove(&self.cell.id);
                t.finished += 1;
            }
            std::mem::take(&mut st.callbacks)
        };
        self.cell.done.notify_all();
        for cb in callbacks {
            cb(&outcome);
        }
        true
    }

    /// True once finished.
    pub fn is_finished(&self) -> bool {
        lock(&self.cell.state).outcome.is_some()
    }

    /// How it finished, if it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.cell.state).outcome.clone()
    }

    /// Blocks the calling thread until the operation is finished.
    pub fn wait(&self) -> Outcome {
        let mut st = lock(&self.cell.state);
        loop {
            if let Some(o) = &st.outcome {
                return o.clone();
            }
            st = match self.cell.done.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }

    /// Calls `f` once the operation is finished (at once if it already is).
    /// This is how async callers wait without blocking a thread.
    pub fn on_finish(&self, f: impl FnOnce(&Outcome) + Send + 'static) {
        let mut st = lock(&self.cell.state);
        match st.outcome.clone() {
            Some(o) => {
                drop(st);
                f(&o);
            }
            None => st.callbacks.push(Box::new(f)),
        }
    }
}
