//! Slots left pointing at a freed message: the check ASan does not have.
//!
//! NanoMQ 1766 on an ordinary subscribe: the SUBSCRIBE sits in the user
//! aio's slot while the protocol hands its only reference to the transport;
//! the TLS write completes and frees it; the slot now points at freed memory
//! until the SUBACK overwrites it. Nothing reads it, so ASan sees nothing,
//! but the ownership mistake was made.
//!
//! C code also leaves a slot dangling for one statement on purpose, and that
//! must not be reported:
//! - free, then clear: `nni_msg_free(nni_aio_get_msg(a)); nni_aio_set_msg(a,
//!   NULL);` the freeing thread's very next wrapped call clears the slot
//!   (calls made inside the free itself do not count);
//! - hand over, then clear: `nni_aio_set_msg(b, m); ...; nni_aio_set_msg(a,
//!   NULL);` the thread that put the message in a second slot without a
//!   reference clears the first one itself, however late.
//!
//! - an idle aio: no operation in progress, so the slot is its consumer's
//!   leftover (`msg = nng_aio_get_msg(a); ...; nng_msg_free(msg);` and the
//!   aio is reused or freed later): only reading it is a violation.
//!
//! For an aio with an operation in progress, any other way the slot is next
//! touched confirms the violation: another
//! thread overwrites or clears it, anyone reads it (the reader now holds a
//! pointer to freed memory), the freeing thread goes on to anything else
//! (free, then clear) or the aio is freed or re-initialised; slots still
//! dangling when the report is written are confirmed then. The violation is
//! recorded at the free, by the freeing thread, with the message's history.

use super::{Dangling, State};
use crate::threads::ThreadId;
use mqtls_harness::ledger::{ViolationKind, with_actor};
use std::cell::Cell;

/// Who may still clear a dangling slot without it being a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grace {
    /// The freeing thread, as its very next call (free, then clear).
    NextCallOf(ThreadId),
    /// The thread that put the message in another slot without a reference,
    /// whenever it does (hand over, then clear).
    ClearBy(ThreadId),
    /// The aio had no operation in progress: the slot is its consumer's
    /// leftover (the application freed what it received and will reuse or
    /// free the aio). Only reading it is a violation.
    Idle,
}

thread_local! {
    /// Frees in progress on this thread (a free can free other messages).
    static FREE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A wrapped free starts on this thread.
pub(crate) fn free_starts() {
    let _ = FREE_DEPTH.try_with(|d| d.set(d.get() + 1));
}

/// A wrapped free returned; true when it was the outermost one (or the
/// thread is exiting and keeps no count).
pub(crate) fn free_ends() -> bool {
    FREE_DEPTH
        .try_with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n == 0
        })
        .unwrap_or(true)
}

/// Records that `aio`'s slot still points at message `serial`, just freed.
pub(super) fn left_dangling(st: &mut State, aio: usize, serial: u64, d: Dangling) {
    let Some(a) = st.aios.get_mut(&aio) else {
        return;
    };
    if a.slot.map(|s| s.serial) != Some(serial) {
        return;
    }
    // A slot can dangle once per message: an older dangling one was
    // overwritten by this message, which settled it.
    a.dangling = Some(d.clone_for_slot());
    if let Grace::NextCallOf(t) = d.grace {
        st.next_call
            .entry(t)
            .or_insert((false, Vec::new()))
            .1
            .push(aio);
    }
}

impl Dangling {
    fn clone_for_slot(&self) -> Dangling {
        Dangling {
            watch: self.watch.clone(),
            kind: self.kind,
            actor: self.actor.clone(),
            site: self.site,
            grace: self.grace,
        }
    }
}

/// The outermost free on `thread` returned: its next call decides.
pub(super) fn arm(st: &mut State, thread: ThreadId) {
    if let Some((armed, _)) = st.next_call.get_mut(&thread) {
        *armed = true;
    }
}

/// At the start of every call by `thread`: a slot this thread left
/// dangling by its previous free is confirmed, unless this call is a set on
/// that slot (`target`), which is then forgivable. Returns whether it is.
pub(super) fn settle(
    st: &mut State,
    thread: ThreadId,
    site: &'static str,
    target: Option<usize>,
) -> bool {
    if st.next_call.is_empty() {
        return false;
    }
    let Some((true, _)) = st.next_call.get(&thread) else {
        return false;
    };
    let Some((_, aios)) = st.next_call.remove(&thread) else {
        return false;
    };
    let mut forgivable = false;
    for aio in aios {
        if Some(aio) == target {
            forgivable = true;
            continue;
        }
        let still = st
            .aios
            .get(&aio)
            .and_then(|a| a.dangling.as_ref())
            .is_some_and(|d| d.grace == Grace::NextCallOf(thread));
        if still {
            confirm(
                st,
                aio,
                format!(
                    "the thread that freed it went on without clearing the slot (next: `{site}`)"
                ),
            );
        }
    }
    forgivable
}

/// `aio`'s slot is being set (overwritten or cleared) by `thread`.
pub(super) fn on_set(
    st: &mut State,
    aio: usize,
    thread: ThreadId,
    site: &'static str,
    forgivable: bool,
) {
    let Some(d) = st.aios.get(&aio).and_then(|a| a.dangling.as_ref()) else {
        return;
    };
    let forgiven = match d.grace {
        Grace::NextCallOf(t) => forgivable && t == thread,
        Grace::ClearBy(t) => t == thread,
        Grace::Idle => true,
    };
    if forgiven {
        if d.grace != Grace::Idle {
            st.counters.dangling_forgiven += 1;
        }
        if let Some(a) = st.aios.get_mut(&aio) {
            a.dangling = None;
        }
        return;
    }
    let actor = mqtls_harness::ledger::current_actor();
    confirm(
        st,
        aio,
        format!("then overwritten by `{actor}` at `{site}`"),
    );
}

/// `aio`'s slot is being read.
pub(super) fn on_read(st: &mut State, aio: usize, site: &'static str) {
    if st.aios.get(&aio).is_some_and(|a| a.dangling.is_some()) {
        let actor = mqtls_harness::ledger::current_actor();
        confirm(
            st,
            aio,
            format!("then read by `{actor}` at `{site}`, who got a pointer to freed memory"),
        );
    }
}

/// The aio of a dangling slot goes away (freed, initialised again): an
/// idle one's leftover goes with it unreported.
pub(super) fn aio_gone(st: &mut State, aio: usize, then: &str) {
    let idle = st
        .aios
        .get(&aio)
        .and_then(|a| a.dangling.as_ref())
        .is_some_and(|d| d.grace == Grace::Idle);
    if idle {
        if let Some(a) = st.aios.get_mut(&aio) {
            a.dangling = None;
        }
    } else {
        confirm(st, aio, then.to_string());
    }
}

/// Reports `aio`'s dangling slot, as of the free that left it so.
pub(super) fn confirm(st: &mut State, aio: usize, then: String) {
    let Some(a) = st.aios.get_mut(&aio) else {
        return;
    };
    let Some(d) = a.dangling.take() else {
        return;
    };
    let op = match &a.op {
        Some(op) => match op.outcome() {
            None => format!(" (op #{} {}, in progress)", op.id(), op.kind()),
            Some(o) => format!(" (op #{} {}, finished: {o})", op.id(), op.kind()),
        },
        None => String::new(),
    };
    let detail = format!(
        "the slot of the aio allocated at `{}`{op} still pointed at it; {then}",
        a.site
    );
    with_actor(&d.actor, || {
        d.watch
            .report(ViolationKind::FreedWhileInSlot, d.site, detail)
    });
    st.kinds.insert(d.watch.serial(), d.kind);
}

/// Confirms every slot still dangling (the report is being written).
pub(super) fn confirm_all(st: &mut State) {
    let mut aios: Vec<usize> = st
        .aios
        .iter()
        .filter(|(_, a)| a.dangling.is_some())
        .map(|(p, _)| *p)
        .collect();
    aios.sort_unstable();
    for aio in aios {
        aio_gone(st, aio, "still so when the report was written");
    }
    st.next_call.clear();
}
