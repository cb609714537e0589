//! Per-handle histories: every allocation, reference change, borrow and
//! operation step, stamped with a sequence number, the actor and the site.

use super::actor::{self, Actor};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// One step in the life of a message or an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// The message was allocated with one reference.
    Alloc,
    /// A reference was taken; `count` is the count afterwards.
    Retain {
        /// Reference count after the step.
        count: u32,
    },
    /// A reference was given back; `count` is the count afterwards.
    Release {
        /// Reference count after the step.
        count: u32,
    },
    /// The last reference was given back and the message freed.
    Free,
    /// The handle was copied without counting (a C pointer copy).
    Alias,
    /// A write in flight started borrowing the message.
    BorrowStart,
    /// The write in flight stopped borrowing the message.
    BorrowEnd,
    /// The message contents were changed.
    Mutate,
    /// A counted handle was dropped without `release`.
    DroppedWithoutRelease,
    /// The operation was begun.
    OpBegin,
    /// A message was attached to the operation.
    OpSetMsg,
    /// The operation was finished with the given outcome.
    OpFinish {
        /// How it finished.
        outcome: String,
    },
    /// Something touched the operation (checked for "after finish").
    OpTouch,
    /// A misuse was detected at this step.
    Violation {
        /// The kind of misuse, as in [`super::ViolationKind`].
        kind: String,
    },
}

/// One recorded step: what happened, who did it, where, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Ledger-wide sequence number: events of different handles interleave
    /// in this order.
    pub seq: u64,
    /// Thread or task that acted.
    pub actor: Actor,
    /// Static label of the code location.
    pub site: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub action: Action,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:<4} {:<16} {:<32} ", self.seq, self.actor, self.site)?;
        match &self.action {
            Action::Alloc => write!(f, "alloc (count 1)"),
            Action::Retain { count } => write!(f, "retain (count {count})"),
            Action::Release { count } => write!(f, "release (count {count})"),
            Action::Free => write!(f, "release (count 0): freed"),
            Action::Alias => write!(f, "alias: handle copied WITHOUT a reference"),
            Action::BorrowStart => write!(f, "borrow for write"),
            Action::BorrowEnd => write!(f, "borrow ends"),
            Action::Mutate => write!(f, "mutate"),
            Action::DroppedWithoutRelease => write!(f, "handle dropped without release"),
            Action::OpBegin => write!(f, "operation begun"),
            Action::OpSetMsg => write!(f, "message attached"),
            Action::OpFinish { outcome } => write!(f, "finished: {outcome}"),
            Action::OpTouch => write!(f, "touched"),
            Action::Violation { kind } => write!(f, "VIOLATION: {kind}"),
        }
    }
}

impl Event {
    pub(crate) fn now(seq: u64, site: &'static str, action: Action) -> Self {
        Event {
            seq,
            actor: actor::current(),
            site,
            action,
        }
    }
}

/// Histories of handles that are no longer current (freed messages, finished
/// operations), kept so that a late misuse of a stale handle still gets its
/// full story. Bounded: the oldest entries go first.
#[derive(Debug)]
pub(crate) struct Archive<K> {
    map: HashMap<K, Vec<Event>>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Copy> Archive<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Archive {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn put(&mut self, key: K, events: Vec<Event>) {
        if self.map.insert(key, events).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut Vec<Event>> {
        self.map.get_mut(key)
    }
}
