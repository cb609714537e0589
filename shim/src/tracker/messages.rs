//! `nni_msg_alloc`, `_free`, `_clone`, `_dup`, `_unique` and `_pull_up`.

use super::{Call, Freed, Msg, State, Tracker, dangling};
use crate::sites::Stack;
use crate::sync::lock;
use mqtls_harness::ledger::{MsgKind, ViolationKind, current_actor};

/// Marks a replace token whose release was already recorded.
const RELEASED: u64 = 1 << 63;

impl Tracker {
    /// `nni_msg_alloc` returned `ptr`.
    pub fn msg_alloc(&self, ptr: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        self.alloc_at(&mut c, ptr, MsgKind::Other);
    }

    fn alloc_at(&self, c: &mut Call<'_>, ptr: usize, kind: MsgKind) {
        let st = &mut *c.st;
        if let Some(old) = st.msgs.remove(&ptr) {
            // The target freed it where no wrapper sees (inside
            // message.c): give its references back so the ledger does not
            // count them as leaks.
            st.counters.freed_out_of_sight += 1;
            for r in old.refs {
                r.release("(freed out of the shim's sight)");
            }
        }
        st.freed.remove(ptr);
        st.counters.messages += 1;
        // The ledger's message carries no bytes: the target's are in the
        // target.
        let m = self.ledger.alloc(kind, bytes::Bytes::new(), c.site);
        st.msgs.insert(
            ptr,
            Msg {
                watch: m.watch(),
                refs: vec![m],
                kind,
                holders: Vec::new(),
                alias: None,
            },
        );
    }

    /// `nni_msg_free(ptr)` is about to run.
    pub fn msg_free(&self, ptr: usize, stack: &Stack) {
        dangling::free_starts();
        let mut c = self.enter(stack, None);
        let (site, thread) = (c.site, c.thread);
        self.release_one(&mut c.st, ptr, site, thread, "freed again (nni_msg_free)");
    }

    /// `nni_msg_free` returned.
    pub fn msg_free_done(&self) {
        if dangling::free_ends() {
            let thread = crate::threads::current();
            dangling::arm(&mut lock(&self.state), thread);
        }
    }

    /// Gives back one reference of the message at `ptr`; the last one frees
    /// it and leaves any slot still pointing at it dangling.
    fn release_one(
        &self,
        st: &mut State,
        ptr: usize,
        site: &'static str,
        thread: crate::threads::ThreadId,
        again: &str,
    ) {
        let Some(msg) = st.msgs.get_mut(&ptr) else {
            match st.freed.get(ptr) {
                Some(f) => {
                    f.watch
                        .report(ViolationKind::DoubleRelease, site, again.into());
                    st.kinds.insert(f.watch.serial(), f.kind);
                }
                None => st.counters.unknown_messages += 1,
            }
            return;
        };
        if msg.kind == MsgKind::Other {
            msg.kind = self.kind_of(ptr);
        }
        if let Some(r) = msg.refs.pop() {
            r.release(site);
        }
        if !msg.refs.is_empty() {
            return;
        }
        let Some(msg) = st.msgs.remove(&ptr) else {
            return;
        };
        let serial = msg.watch.serial();
        for aio in &msg.holders {
            let older = msg
                .alias
                .as_ref()
                .filter(|a| a.older.contains(aio))
                .map(|a| a.by);
            let busy = st
                .aios
                .get(aio)
                .and_then(|a| a.op.as_ref())
                .is_some_and(|op| !op.is_finished());
            dangling::left_dangling(
                st,
                *aio,
                serial,
                super::Dangling {
                    watch: msg.watch.clone(),
                    kind: msg.kind,
                    actor: current_actor(),
                    site,
                    grace: match (busy, older) {
                        (false, _) => super::Grace::Idle,
                        (true, Some(by)) => super::Grace::ClearBy(by),
                        (true, None) => super::Grace::NextCallOf(thread),
                    },
                },
            );
        }
        st.freed.insert(
            ptr,
            Freed {
                watch: msg.watch,
                kind: msg.kind,
            },
        );
    }

    /// `nni_msg_clone(ptr)` is about to run.
    pub fn msg_clone(&self, ptr: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let st = &mut *c.st;
        match st.msgs.get_mut(&ptr) {
            Some(msg) => {
                if let Some(first) = msg.refs.first() {
                    let r = first.retain(site);
                    msg.refs.push(r);
                }
                resolve_alias(msg);
            }
            None => stale_use(st, ptr, site, "cloned (nni_msg_clone) after it was freed"),
        }
    }

    /// `nni_msg_dup(src)` returned `dup` (0 when it failed).
    pub fn msg_dup(&self, dup: usize, src: usize, stack: &Stack) {
        let mut c = self.enter(stack, None);
        let site = c.site;
        let kind = match c.st.msgs.get_mut(&src) {
            Some(msg) => {
                if msg.kind == MsgKind::Other {
                    msg.kind = self.kind_of(src);
                }
                msg.kind
            }
            None => {
                stale_use(
                    &mut c.st,
                    src,
                    site,
                    "duplicated (nni_msg_dup) after it was freed",
                );
                MsgKind::Other
            }
        };
        if dup != 0 {
            self.alloc_at(&mut c, dup, kind);
        }
    }

    /// `nni_msg_unique` / `nni_msg_pull_up` are about to run on `ptr`;
    /// `frees` says the call will free it (a shared message: known before
    /// the call for unique). Returns the token for [`Tracker::msg_replace_end`].
    pub fn msg_replace_begin(&self, ptr: usize, frees: bool, stack: &Stack) -> u64 {
        let mut c = self.enter(stack, None);
        let Some(serial) = c.st.msgs.get(&ptr).map(|m| m.watch.serial()) else {
            let site = c.site;
            stale_use(&mut c.st, ptr, site, "made unique after it was freed");
            return 0;
        };
        if frees {
            let (site, thread) = (c.site, c.thread);
            self.release_one(&mut c.st, ptr, site, thread, "freed again (nni_msg_unique)");
            return serial | RELEASED;
        }
        serial
    }

    /// The call of [`Tracker::msg_replace_begin`] returned `out`. A new
    /// pointer means the original lost a reference (inside message.c) and
    /// `out` is a fresh copy.
    pub fn msg_replace_end(&self, ptr: usize, token: u64, out: usize, stack: &Stack) {
        if out == ptr {
            return;
        }
        let mut c = self.enter(stack, None);
        let kind = c.st.msgs.get(&ptr).map_or(MsgKind::Other, |m| m.kind);
        let serial = token & !RELEASED;
        let current = c.st.msgs.get(&ptr).map(|m| m.watch.serial());
        if token & RELEASED == 0 && serial != 0 && current == Some(serial) {
            let (site, thread) = (c.site, c.thread);
            self.release_one(&mut c.st, ptr, site, thread, "freed again");
        }
        if out != 0 {
            self.alloc_at(&mut c, out, kind);
        }
    }
}

/// A reference count that covers every slot again ends the alias.
fn resolve_alias(msg: &mut Msg) {
    if msg.holders.len() <= msg.refs.len() {
        msg.alias = None;
    }
}

/// A call on a pointer that names no live message.
fn stale_use(st: &mut State, ptr: usize, site: &'static str, what: &str) {
    match st.freed.get(ptr) {
        Some(f) => {
            f.watch
                .report(ViolationKind::UseAfterRelease, site, what.into());
            st.kinds.insert(f.watch.serial(), f.kind);
        }
        None => st.counters.unknown_messages += 1,
    }
}
