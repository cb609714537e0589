//! `nni_aio_*`: allocation and freeing, the message slot, begin, schedule,
//! every finish, wait and cancel.

use super::{Abandoned, Aio, AliasNote, Call, FreedAio, Slot, State, Tracker, dangling, now_ms};
use crate::sites::Stack;
use crate::sync::lock;
use mqtls_harness::ledger::{MsgKind, Outcome, ViolationKind};

impl Tracker {
    /// `nni_aio_init` / `nni_aio_alloc` set up the aio at `aio`.
    pub fn aio_init(&self, aio: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        if c.st.aios.contains_key(&aio) {
            // Initialised again without a fini in sight: the old one is
            // gone.
            dangling::aio_gone(&mut c.st, aio, "then its aio was initialised again");
            forget_aio(&mut c.st, aio);
        }
        c.st.freed_aios.remove(aio);
        c.st.counters.aios += 1;
        let token = c.st.next_token;
        c.st.next_token += 1;
        c.st.aios.insert(aio, new_aio(token, c.site));
    }

    /// `nni_aio_fini` / `nni_aio_free` are about to run (their cancel may
    /// still finish the current operation). Returns the token for
    /// [`Tracker::aio_free_end`].
    pub fn aio_free_begin(&self, aio: usize, stack: &Stack) -> u64 {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let Some(a) = self.aio_for(&mut c, aio, Use::Free) else {
            return 0;
        };
        if let Some(op) = a.op.as_ref().filter(|op| !op.is_finished()) {
            op.note_cancel(site);
        }
        a.freed_at = Some(site);
        a.token
    }

    /// The free of [`Tracker::aio_free_begin`] returned.
    pub fn aio_free_end(&self, aio: usize, token: u64) {
        let mut st = lock(&self.state);
        if token == 0 || st.aios.get(&aio).map(|a| a.token) != Some(token) {
            return;
        }
        dangling::aio_gone(&mut st, aio, "then its aio was freed");
        let site = st.aios.get(&aio).and_then(|a| a.freed_at).unwrap_or("?");
        let op = forget_aio(&mut st, aio);
        st.freed_aios.insert(aio, FreedAio { op, site });
    }

    /// `nni_aio_reap(aio)`: freed later, out of sight, by the reaper thread.
    pub fn aio_reap(&self, aio: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        if let Some(a) = self.aio_for(&mut c, aio, Use::Free) {
            a.freed_at = Some(site);
        }
    }

    /// `nni_aio_set_msg(aio, msg)` is about to run.
    pub fn aio_set_msg(&self, aio: usize, msg: usize, stack: &Stack) {
        let mut c = self.enter(stack, Some(aio));
        if self.aio_for(&mut c, aio, Use::SetMsg).is_none() {
            return;
        }
        self.put_in_slot(&mut c, aio, msg);
    }

    fn put_in_slot(&self, c: &mut Call<'_>, aio: usize, msg: usize) {
        let (thread, site, forgivable) = (c.thread, c.site, c.forgivable);
        let st = &mut *c.st;
        dangling::on_set(st, aio, thread, site, forgivable);
        unhold(st, aio);
        let slot = match st.msgs.get_mut(&msg) {
            _ if msg == 0 => None,
            Some(m) => {
                if m.kind == MsgKind::Other {
                    m.kind = self.kind_of(msg);
                }
                m.holders.push(aio);
                if m.holders.len() > m.refs.len() {
                    // More slots than references: this one (or an older one)
                    // holds it without a reference of its own.
                    if let Some(first) = m.refs.first() {
                        drop(first.alias(site));
                    }
                    m.alias = Some(AliasNote {
                        by: thread,
                        older: m.holders.iter().copied().filter(|h| *h != aio).collect(),
                    });
                }
                Some(Slot {
                    ptr: msg,
                    serial: m.watch.serial(),
                })
            }
            None => {
                let serial = match st.freed.get(msg) {
                    Some(f) => {
                        f.watch.report(
                            ViolationKind::UseAfterRelease,
                            site,
                            "put in an aio slot (nni_aio_set_msg) after it was freed".into(),
                        );
                        st.kinds.insert(f.watch.serial(), f.kind);
                        f.watch.serial()
                    }
                    None => {
                        st.counters.unknown_messages += 1;
                        0
                    }
                };
                Some(Slot { ptr: msg, serial })
            }
        };
        if let Some(a) = st.aios.get_mut(&aio) {
            a.slot = slot;
        }
    }

    /// `nni_aio_get_msg(aio)` returned `msg`.
    pub fn aio_get_msg(&self, aio: usize, msg: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let Some(a) = self.aio_for(&mut c, aio, Use::GetMsg) else {
            return;
        };
        let mirrored = a.slot.map_or(0, |s| s.ptr);
        dangling::on_read(&mut c.st, aio, site);
        if mirrored != msg {
            // Set where no wrapper sees it: take the target's word.
            c.st.counters.slots_resynced += 1;
            unhold(&mut c.st, aio);
            let slot = (msg != 0).then(|| match c.st.msgs.get_mut(&msg) {
                Some(m) => {
                    m.holders.push(aio);
                    Slot {
                        ptr: msg,
                        serial: m.watch.serial(),
                    }
                }
                None => Slot {
                    ptr: msg,
                    serial: 0,
                },
            });
            if let Some(a) = c.st.aios.get_mut(&aio) {
                a.slot = slot;
            }
        }
    }

    /// `nni_aio_begin(aio)` returned `rv` (non-zero: the aio is stopped and
    /// nothing was begun).
    pub fn aio_begin(&self, aio: usize, rv: i32, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        if rv != 0 {
            return;
        }
        let kind = {
            let slot = c.st.aios.get(&aio).and_then(|a| a.slot);
            slot.and_then(|s| c.st.msgs.get(&s.ptr)).map(|m| m.kind)
        };
        let Some(a) = self.aio_for(&mut c, aio, Use::Begin) else {
            return;
        };
        let old = a.op.take().filter(|op| !op.is_finished());
        a.op = Some(self.ledger.begin_op(super::op_kind_for(kind), site));
        a.deadline_ms = None;
        a.begun_ms = now_ms();
        if let Some(old) = old {
            c.st.abandoned.insert(old.id(), Abandoned { site });
        }
    }

    /// `nni_aio_schedule(aio, ...)` is about to run: only an operation still
    /// open may be armed.
    pub fn aio_schedule(&self, aio: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let Some(a) = self.aio_for(&mut c, aio, Use::Schedule) else {
            return;
        };
        match &a.op {
            Some(op) => {
                op.touch(site);
            }
            None => {
                let label = site.to_string();
                *c.st.counters.scheduled_unbegun.entry(label).or_insert(0) += 1;
            }
        }
    }

    /// `nni_aio_schedule` returned `rv`; with a cancel function, a finite
    /// timeout now holds (the expiry thread can only cancel through it).
    pub fn aio_scheduled(&self, aio: usize, rv: i32, has_cancel: bool) {
        let mut st = lock(&self.state);
        let Some(a) = st.aios.get_mut(&aio) else {
            return;
        };
        if rv != 0 || !has_cancel || a.op.as_ref().is_none_or(|op| op.is_finished()) {
            return;
        }
        a.deadline_ms = match (a.expire_ms, a.timeout_ms) {
            (Some(at), _) => Some(at),
            (None, t) if t > 0 => Some(now_ms() + t),
            _ => None,
        };
    }

    /// An `nni_aio_finish*` (or `nni_aio_completions_add`) is about to run
    /// with result `rv`; `msg` is the message `nni_aio_finish_msg` puts in
    /// the slot (0 for the others).
    pub fn aio_finish(&self, aio: usize, rv: i32, msg: usize, stack: &Stack) {
        let mut c = self.enter(stack, Some(aio).filter(|_| msg != 0));
        if self.aio_for(&mut c, aio, Use::Finish).is_none() {
            return;
        }
        if msg != 0 {
            self.put_in_slot(&mut c, aio, msg);
        }
        let site = c.site;
        let op = c.st.aios.get(&aio).and_then(|a| a.op.clone());
        match op {
            Some(op) => {
                op.finish(outcome(rv), site);
            }
            None => {
                let label = site.to_string();
                *c.st.counters.finished_unbegun.entry(label).or_insert(0) += 1;
            }
        }
    }

    /// `nni_aio_wait(aio)` is about to block.
    pub fn aio_wait(&self, aio: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let Some(a) = self.aio_for(&mut c, aio, Use::Wait) else {
            return;
        };
        if let Some(op) = a.op.as_ref().filter(|op| !op.is_finished()) {
            op.note_wait(site);
            a.waiters += 1;
        }
    }

    /// `nni_aio_wait(aio)` returned.
    pub fn aio_waited(&self, aio: usize) {
        if let Some(a) = lock(&self.state).aios.get_mut(&aio) {
            a.waiters = a.waiters.saturating_sub(1);
        }
    }

    /// `nni_aio_abort`, `_close` or `_stop` is about to run.
    pub fn aio_cancel(&self, aio: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        if let Some(a) = self.aio_for(&mut c, aio, Use::Cancel)
            && let Some(op) = a.op.as_ref().filter(|op| !op.is_finished())
        {
            op.note_cancel(site);
        }
    }

    /// `nni_aio_set_timeout` (relative ms) or `nni_aio_set_expire`
    /// (absolute, the target's clock) ran.
    pub fn aio_timeout(&self, aio: usize, relative_ms: i64, absolute_ms: i64) {
        if let Some(a) = lock(&self.state).aios.get_mut(&aio) {
            if absolute_ms >= 0 {
                a.expire_ms = Some(absolute_ms);
            } else {
                a.timeout_ms = relative_ms;
                a.expire_ms = None;
            }
        }
    }

    /// The live aio at `aio`, registering one never seen initialised. A
    /// call on an aio freed already is reported on its last operation.
    fn aio_for<'c>(&self, c: &'c mut Call<'_>, aio: usize, what: Use) -> Option<&'c mut Aio> {
        let site = c.site;
        let st = &mut *c.st;
        let freed_at = st.aios.get(&aio).and_then(|a| a.freed_at);
        let gone = st.freed_aios.get(aio).map(|f| (f.op.clone(), f.site));
        match (freed_at, gone) {
            (None, Some((op, freed_site))) if !st.aios.contains_key(&aio) => {
                if let Some(op) = op {
                    op.report(
                        ViolationKind::OpTouchedAfterFinish,
                        site,
                        format!(
                            "{} after its aio was freed at `{freed_site}`",
                            what.describe()
                        ),
                    );
                }
                return None;
            }
            // Its own free (or the reaper's) may still finish or cancel it.
            (Some(freed_site), _) if !what.allowed_while_freeing() => {
                if let Some(op) = st.aios.get(&aio).and_then(|a| a.op.clone()) {
                    op.report(
                        ViolationKind::OpTouchedAfterFinish,
                        site,
                        format!(
                            "{} after its aio was freed at `{freed_site}`",
                            what.describe()
                        ),
                    );
                }
            }
            _ => {}
        }
        if !st.aios.contains_key(&aio) {
            st.counters.unknown_aios += 1;
            let token = st.next_token;
            st.next_token += 1;
            st.aios.insert(aio, new_aio(token, site));
        }
        st.aios.get_mut(&aio)
    }
}

/// What a hook does with an aio (for "used after it was freed").
#[derive(Clone, Copy)]
enum Use {
    Free,
    SetMsg,
    GetMsg,
    Begin,
    Schedule,
    Finish,
    Wait,
    Cancel,
}

impl Use {
    /// While an aio is being freed (or waits for the reaper) its provider's
    /// cancel still finishes its operation: that is the free's own work.
    fn allowed_while_freeing(self) -> bool {
        matches!(self, Use::Finish | Use::Cancel | Use::Wait)
    }

    fn describe(self) -> &'static str {
        match self {
            Use::Free => "freed again",
            Use::SetMsg => "slot set (nni_aio_set_msg)",
            Use::GetMsg => "slot read (nni_aio_get_msg)",
            Use::Begin => "begun (nni_aio_begin)",
            Use::Schedule => "scheduled (nni_aio_schedule)",
            Use::Finish => "finished",
            Use::Wait => "waited on (nni_aio_wait)",
            Use::Cancel => "cancelled",
        }
    }
}

fn new_aio(token: u64, site: &'static str) -> Aio {
    Aio {
        token,
        site,
        slot: None,
        op: None,
        timeout_ms: -1,
        expire_ms: None,
        deadline_ms: None,
        begun_ms: 0,
        waiters: 0,
        freed_at: None,
        dangling: None,
    }
}

/// Takes `aio` out of its slot message's holders.
fn unhold(st: &mut State, aio: usize) {
    let Some(slot) = st.aios.get(&aio).and_then(|a| a.slot) else {
        return;
    };
    if let Some(m) = st.msgs.get_mut(&slot.ptr)
        && m.watch.serial() == slot.serial
    {
        m.holders.retain(|h| *h != aio);
        // The slots that held it before the alias stay suspect until they
        // are cleared themselves: when the aliased slot is the one cleared
        // (the transport's send aio), the older one is left with a pointer
        // whose reference went to the wire.
        if let Some(note) = &mut m.alias {
            note.older.retain(|h| *h != aio);
            if note.older.is_empty() {
                m.alias = None;
            }
        }
    }
}

/// Removes `aio` from the tables; returns its last operation.
fn forget_aio(st: &mut State, aio: usize) -> Option<mqtls_harness::ledger::Op> {
    unhold(st, aio);
    st.next_call
        .values_mut()
        .for_each(|(_, v)| v.retain(|a| *a != aio));
    st.aios.remove(&aio).and_then(|a| a.op)
}

/// An nng error number as the ledger's outcome.
pub(crate) fn outcome(rv: i32) -> Outcome {
    match rv {
        0 => Outcome::Success,
        5 => Outcome::TimedOut,
        7 => Outcome::Closed,
        20 => Outcome::Canceled,
        _ => Outcome::Failed(error_name(rv)),
    }
}

/// The name of an nng error number (`NNG_ECONNSHUT`), or the MQTT reason
/// code NanoNNG sometimes finishes with.
pub(crate) fn error_name(rv: i32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "NNG_EINTR",
        "NNG_ENOMEM",
        "NNG_EINVAL",
        "NNG_EBUSY",
        "NNG_ETIMEDOUT",
        "NNG_ECONNREFUSED",
        "NNG_ECLOSED",
        "NNG_EAGAIN",
        "NNG_ENOTSUP",
        "NNG_EADDRINUSE",
        "NNG_ESTATE",
        "NNG_ENOENT",
        "NNG_EPROTO",
        "NNG_EUNREACHABLE",
        "NNG_EADDRINVAL",
        "NNG_EPERM",
        "NNG_EMSGSIZE",
        "NNG_ECONNABORTED",
        "NNG_ECONNRESET",
        "NNG_ECANCELED",
        "NNG_ENOFILES",
        "NNG_ENOSPC",
        "NNG_EEXIST",
        "NNG_EREADONLY",
        "NNG_EWRITEONLY",
        "NNG_ECRYPTO",
        "NNG_EPEERAUTH",
        "NNG_ENOARG",
        "NNG_EAMBIGUOUS",
        "NNG_EBADTYPE",
        "NNG_ECONNSHUT",
    ];
    match usize::try_from(rv).ok().and_then(|i| NAMES.get(i)) {
        Some(name) => (*name).to_string(),
        None if (0x80..=0xa2).contains(&rv) => format!("MQTT reason code {rv:#04x}"),
        None => format!("error {rv}"),
    }
}
