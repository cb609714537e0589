//! Per-handle histories: every allocation, reference change, borrow and
//! operation step, stamped with a sequence number, the actor and the site.

use super::actor::{self, Actor};
use crate::sync::StdArc;
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
    /// A waiter started blocking until the operation finishes.
    OpWait,
    /// Someone asked for the operation to be cancelled (finishing it is
    /// still its provider's job).
    OpCancel,
    /// A misuse was detected at this step.
    Violation {
        /// The kind of misuse, as in [`super::ViolationKind`].
        kind: String,
    },
    /// Routine steps (retains, releases, borrows) of a long-lived message
    /// were not kept, to bound its history; this event stands for the last
    /// of them.
    Elided {
        /// How many steps were dropped here.
        count: u64,
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
            Action::OpWait => write!(f, "waiter blocks until it finishes"),
            Action::OpCancel => write!(f, "cancel requested"),
            Action::Violation { kind } => write!(f, "VIOLATION: {kind}"),
            Action::Elided { count } => write!(f, "... {count} routine step(s) not kept"),
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

/// One step as a message history stores it: the actor as an index into the
/// history's own actor list, so recording a step costs no reference count.
#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    actor: usize,
    site: &'static str,
    action: Action,
}

/// Steps kept from the start of a message's life (the allocation first).
const HEAD_KEEP: usize = 16;
/// Most recent steps kept.
const RECENT_KEEP: usize = 64;
/// Landmark steps (alias, free, mutate, violations...) kept from the middle.
const LANDMARK_KEEP: usize = 256;

/// The bounded history of one message. A retained message can be delivered
/// millions of times; its history keeps the first steps, every landmark
/// that matters to a diagnosis (up to a cap), and the most recent steps,
/// and counts what it dropped.
#[derive(Debug, Default)]
pub(crate) struct History {
    actors: Vec<Actor>,
    head: Vec<Rec>,
    recent: VecDeque<Rec>,
    elided: u64,
    last_elided: Option<Rec>,
}

impl History {
    /// Records a step by the current actor.
    pub(crate) fn record(&mut self, seq: u64, site: &'static str, action: Action) {
        let actor = actor::with_current(|a| {
            // Few actors touch one message: the last one is the usual hit.
            match self.actors.iter().rposition(|k| StdArc::ptr_eq(k, a)) {
                Some(i) => i,
                None => {
                    self.actors.push(StdArc::clone(a));
                    self.actors.len() - 1
                }
            }
        });
        self.push_rec(Rec {
            seq,
            actor,
            site,
            action,
        });
    }

    /// Records a step that was already stamped (a violation's `at`).
    pub(crate) fn push(&mut self, e: Event) {
        let actor = match self.actors.iter().rposition(|k| **k == *e.actor) {
            Some(i) => i,
            None => {
                self.actors.push(e.actor);
                self.actors.len() - 1
            }
        };
        self.push_rec(Rec {
            seq: e.seq,
            actor,
            site: e.site,
            action: e.action,
        });
    }

    fn push_rec(&mut self, r: Rec) {
        if self.head.len() < HEAD_KEEP && self.recent.is_empty() {
            self.head.push(r);
            return;
        }
        self.recent.push_back(r);
        if self.recent.len() > RECENT_KEEP
            && let Some(old) = self.recent.pop_front()
        {
            let landmark = !matches!(
                old.action,
                Action::Retain { .. }
                    | Action::Release { .. }
                    | Action::BorrowStart
                    | Action::BorrowEnd
                    | Action::OpTouch
            );
            if landmark && self.head.len() < HEAD_KEEP + LANDMARK_KEEP {
                // The elision marker, if any, goes first: order is kept.
                self.flush_elided();
                self.head.push(old);
            } else {
                self.elided += 1;
                self.last_elided = Some(old);
            }
        }
    }

    /// Moves the pending elision marker into the kept part.
    fn flush_elided(&mut self) {
        if let Some(last) = self.last_elided.take() {
            self.head.push(Rec {
                action: Action::Elided { count: self.elided },
                ..last
            });
            self.elided = 0;
        }
    }

    /// The first recorded step, if any.
    pub(crate) fn first_action(&self) -> Option<&Action> {
        self.head.first().map(|r| &r.action)
    }

    /// Forgets everything (a recycled cell starting a new message).
    pub(crate) fn clear(&mut self) {
        self.actors.clear();
        self.head.clear();
        self.recent.clear();
        self.elided = 0;
        self.last_elided = None;
    }

    /// The kept steps, oldest first, as reports show them.
    pub(crate) fn events(&self) -> Vec<Event> {
        let pending = self.last_elided.as_ref().map(|last| Rec {
            action: Action::Elided { count: self.elided },
            ..last.clone()
        });
        self.head
            .iter()
            .chain(pending.iter())
            .chain(self.recent.iter())
            .map(|r| Event {
                seq: r.seq,
                actor: self
                    .actors
                    .get(r.actor)
                    .cloned()
                    .unwrap_or_else(|| Actor::from("unknown")),
                site: r.site,
                action: r.action.clone(),
            })
            .collect()
    }
}

/// Histories of handles that are no longer current (freed messages, finished
/// operations), kept so that a late misuse of a stale handle still gets its
/// full story. Bounded: the oldest entries go first.
#[derive(Debug)]
pub(crate) struct Archive<K> {
    map: HashMap<K, History>,
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

    pub(crate) fn put(&mut self, key: K, events: History) {
        if self.map.insert(key, events).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut History> {
        self.map.get_mut(key)
    }

    /// Every kept history, in no particular order.
    pub(crate) fn histories(&self) -> impl Iterator<Item = &History> {
        self.map.values()
    }
}
