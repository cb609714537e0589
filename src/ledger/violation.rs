//! Misuses of the ownership protocol, and how they are told to a person.

use super::history::{Action, Event};
use super::msg::MsgKind;
use super::op::OpKind;
use serde::Serialize;
use std::fmt;

/// The kinds of misuse the ledger detects (DESIGN.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A reference was given back after the message was freed: in C, a
    /// second `nni_msg_free` of freed memory.
    DoubleRelease,
    /// A freed message was read, retained, borrowed or mutated through a
    /// stale handle.
    UseAfterRelease,
    /// At quiescence the message still has references nobody will give back.
    Leak,
    /// The last reference was given back while a write in flight still
    /// borrowed the message.
    ReleaseWhileBorrowed,
    /// The message was changed while another reference or a write in flight
    /// could see it.
    MutateWhileShared,
    /// An operation was finished a second time.
    OpFinishedTwice,
    /// At quiescence an operation was begun but never finished: its waiter
    /// hangs forever.
    OpNeverFinished,
    /// An operation was touched after it had been finished.
    OpTouchedAfterFinish,
    /// The last reference was given back while a slot (a C aio's message
    /// pointer) still pointed at the message: the slot dangles, and whoever
    /// reads it next uses freed memory. Found even when nobody does.
    FreedWhileInSlot,
}

impl ViolationKind {
    /// Every kind, in a stable order (for tables and tests).
    pub const ALL: [ViolationKind; 9] = [
        ViolationKind::DoubleRelease,
        ViolationKind::UseAfterRelease,
        ViolationKind::Leak,
        ViolationKind::ReleaseWhileBorrowed,
        ViolationKind::MutateWhileShared,
        ViolationKind::OpFinishedTwice,
        ViolationKind::OpNeverFinished,
        ViolationKind::OpTouchedAfterFinish,
        ViolationKind::FreedWhileInSlot,
    ];

    /// What the misuse amounts to in the C code this harness models.
    pub fn meaning(self) -> &'static str {
        match self {
            ViolationKind::DoubleRelease => "double release (use-after-free in C)",
            ViolationKind::UseAfterRelease => "use after release (use-after-free in C)",
            ViolationKind::Leak => "leak (reference never released)",
            ViolationKind::ReleaseWhileBorrowed => {
                "freed while a write was in flight (use-after-free by the writer in C)"
            }
            ViolationKind::MutateWhileShared => {
                "mutated while shared (a data race on the message in C)"
            }
            ViolationKind::OpFinishedTwice => "operation finished twice (double completion)",
            ViolationKind::OpNeverFinished => "operation never finished (the waiter hangs)",
            ViolationKind::OpTouchedAfterFinish => {
                "operation touched after finish (use of a completed aio in C)"
            }
            ViolationKind::FreedWhileInSlot => {
                "freed while a slot still points at it (a dangling aio message pointer in C)"
            }
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The handle a violation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// A message, by its ledger-wide serial number.
    Msg {
        /// Serial number (`msg #N` in reports).
        serial: u64,
        /// What kind of packet it carries.
        kind: MsgKind,
    },
    /// An operation, by its ledger-wide id.
    Op {
        /// Operation id (`op #N` in reports).
        id: u64,
        /// What the operation waits for.
        kind: OpKind,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Msg { serial, kind } => write!(f, "msg #{serial} {kind}"),
            Subject::Op { id, kind } => write!(f, "op #{id} {kind}"),
        }
    }
}

/// One detected misuse, with the subject's history up to that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// What went wrong.
    pub kind: ViolationKind,
    /// Which message or operation.
    pub subject: Subject,
    /// The step that was wrong (its actor and site); for audit findings, the
    /// audit itself.
    pub at: Event,
    /// Extra facts (counts, outcomes) for the diagnosis.
    pub detail: String,
    /// Every recorded step of the subject, oldest first (empty in counting
    /// mode).
    pub history: Vec<Event>,
}

impl Violation {
    /// The diagnosis in one paragraph, as a maintainer would write it.
    pub fn diagnosis(&self) -> String {
        let mut parts = vec![self.subject.to_string()];
        let find = |pred: &dyn Fn(&Action) -> bool| self.history.iter().find(|e| pred(&e.action));
        if let Some(a) = find(&|a| matches!(a, Action::Alloc | Action::OpBegin)) {
            let verb = if matches!(a.action, Action::Alloc) {
                "allocated"
            } else {
                "begun"
            };
            parts.push(format!("{verb} by `{}` on `{}`", a.site, a.actor));
        }
        // Writes still in flight when the last reference went: the reader
        // that a release-while-borrowed frees memory under.
        let mut open_borrows: Vec<&Event> = Vec::new();
        for e in &self.history {
            match &e.action {
                Action::BorrowStart => open_borrows.push(e),
                Action::BorrowEnd => {
                    open_borrows.pop();
                }
                Action::Alias => parts.push(format!(
                    "copied without a reference by `{}` at `{}`",
                    e.actor, e.site
                )),
                Action::Free if e.seq < self.at.seq => {
                    parts.push(format!("freed by `{}` at `{}`", e.actor, e.site))
                }
                Action::OpFinish { outcome } if e.seq < self.at.seq => parts.push(format!(
                    "finished ({outcome}) by `{}` at `{}`",
                    e.actor, e.site
                )),
                _ => {}
            }
        }
        if self.kind == ViolationKind::ReleaseWhileBorrowed {
            for e in open_borrows {
                parts.push(format!(
                    "borrowed for a write by `{}` at `{}`",
                    e.actor, e.site
                ));
            }
        }
        let last = match self.kind {
            ViolationKind::DoubleRelease => "released again",
            ViolationKind::UseAfterRelease => "used again",
            ViolationKind::Leak | ViolationKind::OpNeverFinished => "still outstanding at audit",
            ViolationKind::ReleaseWhileBorrowed => "last reference released",
            ViolationKind::MutateWhileShared => "mutated",
            ViolationKind::OpFinishedTwice => "finished again",
            ViolationKind::OpTouchedAfterFinish => "touched again",
            ViolationKind::FreedWhileInSlot => "left in a slot",
        };
        parts.push(format!(
            "{last} by `{}` at `{}`",
            self.at.actor, self.at.site
        ));
        let mut s = format!("{}: {}", parts.join(", "), self.kind.meaning());
        if !self.detail.is_empty() {
            s.push_str(&format!(" [{}]", self.detail));
        }
        if self.history.is_empty() {
            s.push_str(" (counting mode: run the ledger in full mode for the history)");
        }
        s
    }

    /// The history as a numbered timeline, one step a line.
    pub fn timeline(&self) -> String {
        let mut s = String::new();
        for e in &self.history {
            s.push_str(&format!("  {e}\n"));
        }
        s
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.kind, self.diagnosis())?;
        f.write_str(&self.timeline())
    }
}
