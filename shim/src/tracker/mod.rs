//! The C target's messages and aios, mirrored in a ledger.
//!
//! Every `nni_msg *` the target allocates becomes a ledger message; each C
//! reference (`nni_msg_clone`) is one counted [`MsgRef`], given back by
//! `nni_msg_free`. Every `nni_aio *` is an [`Aio`] with its message slot
//! (the pointer, which owns nothing: a [`MsgWatch`]) and, per
//! `nni_aio_begin`, one ledger [`Op`] that must be finished exactly once.
//! The ledger then finds what it finds on the Rust side (double release, use
//! after release, double finish, touch after finish, never finished, leaks)
//! and the shim adds what only a C view has: a message freed while an aio
//! slot still points at it ([`dangling`]).
//!
//! One lock guards the tables (C has no handle to hand to a per-connection
//! ledger, and the target's own locking is what is under test); it is never
//! held across a call into the target.

mod aios;
mod dangling;
mod messages;
mod recent;

use crate::sites::{Sites, Stack};
use crate::sync::{Mutex, MutexGuard, lock};
use crate::threads::{self, ThreadId};
use mqtls_harness::ledger::{Actor, Ledger, Mode, MsgKind, MsgRef, MsgWatch, Op, OpKind};
use mqtls_harness::sync::Arc;
use recent::Recent;
use std::collections::HashMap;

pub(crate) use dangling::Grace;

/// Reads the MQTT packet type (1..=15, 0 when unknown) of a message the
/// ledger knows to be alive. Called under the tracker's lock, never on a
/// freed message.
pub type KindReader = Box<dyn Fn(usize) -> u8 + Send + Sync>;

/// How many freed messages (and freed aios) keep their story for a late use
/// of a stale pointer.
const RECENT_CAPACITY: usize = 1 << 16;

/// The mirror of one target process.
pub struct Tracker {
    ledger: Arc<Ledger>,
    sites: Sites,
    kind_of: Option<KindReader>,
    state: Mutex<State>,
}

/// One live C message.
struct Msg {
    /// One counted reference per C reference.
    refs: Vec<MsgRef>,
    watch: MsgWatch,
    kind: MsgKind,
    /// Aios whose slot points at it (references of their own or not).
    holders: Vec<usize>,
    /// Set while more slots point at it than it has references: who put it
    /// in a slot without one, and which slots held it before.
    alias: Option<AliasNote>,
}

struct AliasNote {
    by: ThreadId,
    older: Vec<usize>,
}

struct Freed {
    watch: MsgWatch,
    kind: MsgKind,
}

/// What an aio's slot points at.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot {
    ptr: usize,
    /// The message the pointer named when it was put there (0: unknown).
    serial: u64,
}

/// A slot left pointing at a freed message, waiting to be forgiven (the
/// owner clears it at once) or reported.
struct Dangling {
    watch: MsgWatch,
    kind: MsgKind,
    actor: Actor,
    site: &'static str,
    grace: Grace,
}

/// One live C aio.
struct Aio {
    /// Tells this aio from a later one at the same address.
    token: u64,
    /// Where it was allocated or initialised.
    site: &'static str,
    slot: Option<Slot>,
    /// The current operation, or the last one once finished.
    op: Option<Op>,
    /// `nni_aio_set_timeout`, in ms (negative: infinite or default).
    timeout_ms: i64,
    /// `nni_aio_set_expire`, on the target's monotonic clock (ms).
    expire_ms: Option<i64>,
    /// When the current operation must be finished by, if it was scheduled
    /// with a cancel function and a finite timeout (monotonic ms).
    deadline_ms: Option<i64>,
    /// When the current operation was begun (monotonic ms).
    begun_ms: i64,
    /// Threads blocked in `nni_aio_wait` on it right now.
    waiters: u32,
    /// Set by `nni_aio_reap` or during `nni_aio_free`: only its provider's
    /// cancel may still finish it.
    freed_at: Option<&'static str>,
    dangling: Option<Dangling>,
}

struct FreedAio {
    op: Option<Op>,
    site: &'static str,
}

pub use mqtls_harness::report::shim::ShimCounters as Counters;

/// An operation begun again while still open: nobody will finish the old
/// one.
pub(crate) struct Abandoned {
    pub(crate) site: &'static str,
}

/// What the report needs to know about an operation still open.
pub(crate) struct OpenOp {
    pub(crate) aio_site: &'static str,
    pub(crate) begun_ms: i64,
    pub(crate) waiters: u32,
    pub(crate) timeout_ms: i64,
    pub(crate) deadline_ms: Option<i64>,
}

struct State {
    msgs: HashMap<usize, Msg>,
    freed: Recent<Freed>,
    aios: HashMap<usize, Aio>,
    freed_aios: Recent<FreedAio>,
    /// Dangling slots whose grace is the freeing thread's next call: by
    /// thread, the aios, and whether the free has returned (calls made
    /// inside the free do not count).
    next_call: HashMap<ThreadId, (bool, Vec<usize>)>,
    /// Kinds of messages named in violations (the ledger knows a C message
    /// only as `OTHER` until the target encodes it).
    kinds: HashMap<u64, MsgKind>,
    abandoned: HashMap<u64, Abandoned>,
    next_token: u64,
    counters: Counters,
}

impl Tracker {
    /// A tracker over a fresh ledger in `mode`.
    pub fn new(mode: Mode, kind_of: Option<KindReader>) -> Tracker {
        Tracker {
            ledger: Ledger::new(mode),
            sites: Sites::default(),
            kind_of,
            state: Mutex::new(State {
                msgs: HashMap::new(),
                freed: Recent::new(RECENT_CAPACITY),
                aios: HashMap::new(),
                freed_aios: Recent::new(RECENT_CAPACITY),
                next_call: HashMap::new(),
                kinds: HashMap::new(),
                abandoned: HashMap::new(),
                next_token: 1,
                counters: Counters::default(),
            }),
        }
    }

    /// The ledger behind the mirror.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The call sites seen so far.
    pub fn sites(&self) -> &Sites {
        &self.sites
    }

    /// Takes the lock for one hook: names the thread, interns the site and
    /// settles this thread's pending dangling slots (unless the call is a
    /// set on `target`, which decides itself).
    fn enter(&self, stack: &Stack, target: Option<usize>) -> Call<'_> {
        let thread = threads::current();
        let site = self.sites.intern(stack);
        let mut st = lock(&self.state);
        let forgivable = dangling::settle(&mut st, thread, site, target);
        Call {
            st,
            thread,
            site,
            forgivable,
        }
    }

    fn kind_of(&self, ptr: usize) -> MsgKind {
        match &self.kind_of {
            Some(read) => kind_from_type(read(ptr)),
            None => MsgKind::Other,
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        lock(&self.state).counters.clone()
    }

    /// Reads the kind of every live message still unknown (for the
    /// report). Safe while the target runs: a message cannot be freed while
    /// the lock is held, its free's hook comes first.
    pub fn refresh_kinds(&self) {
        let mut st = lock(&self.state);
        for (ptr, m) in st.msgs.iter_mut() {
            if m.kind == MsgKind::Other {
                m.kind = self.kind_of(*ptr);
            }
        }
    }

    /// Reports every slot still left dangling (at the end of the run).
    pub fn confirm_all_dangling(&self) {
        let mut st = lock(&self.state);
        dangling::confirm_all(&mut st);
    }

    /// The kind the mirror learnt for message `serial`, if it did.
    pub(crate) fn kind_of_serial(&self, serial: u64) -> Option<MsgKind> {
        let st = lock(&self.state);
        if let Some(k) = st.kinds.get(&serial) {
            return Some(*k);
        }
        st.msgs
            .values()
            .find(|m| m.watch.serial() == serial)
            .map(|m| m.kind)
    }

    /// Operations begun again while open, by id.
    pub(crate) fn abandoned_site(&self, op: u64) -> Option<&'static str> {
        lock(&self.state).abandoned.get(&op).map(|a| a.site)
    }

    /// What the mirror knows about open operations, by op id.
    pub(crate) fn open_ops(&self) -> HashMap<u64, OpenOp> {
        let st = lock(&self.state);
        st.aios
            .values()
            .filter_map(|a| {
                let op = a.op.as_ref()?;
                (!op.is_finished()).then(|| {
                    (
                        op.id(),
                        OpenOp {
                            aio_site: a.site,
                            begun_ms: a.begun_ms,
                            waiters: a.waiters,
                            timeout_ms: a.timeout_ms,
                            deadline_ms: a.deadline_ms,
                        },
                    )
                })
            })
            .collect()
    }
}

/// One hook's hold on the state.
struct Call<'a> {
    st: MutexGuard<'a, State>,
    thread: ThreadId,
    site: &'static str,
    /// The target of a set was left dangling by this thread's previous
    /// free, and this is its very next call.
    forgivable: bool,
}

/// The ledger's kind for an MQTT packet type number.
pub fn kind_from_type(t: u8) -> MsgKind {
    match t {
        1 => MsgKind::Connect,
        2 => MsgKind::Connack,
        3 => MsgKind::Publish,
        4 => MsgKind::Puback,
        5 => MsgKind::Pubrec,
        6 => MsgKind::Pubrel,
        7 => MsgKind::Pubcomp,
        8 => MsgKind::Subscribe,
        9 => MsgKind::Suback,
        10 => MsgKind::Unsubscribe,
        11 => MsgKind::Unsuback,
        12 => MsgKind::Pingreq,
        13 => MsgKind::Pingresp,
        14 => MsgKind::Disconnect,
        15 => MsgKind::Auth,
        _ => MsgKind::Other,
    }
}

/// What an operation waits for, from the message in its slot when begun.
fn op_kind_for(kind: Option<MsgKind>) -> OpKind {
    match kind {
        Some(MsgKind::Connect) => OpKind::Connect,
        Some(MsgKind::Subscribe) => OpKind::Subscribe,
        Some(MsgKind::Unsubscribe) => OpKind::Unsubscribe,
        Some(MsgKind::Publish) => OpKind::Publish,
        _ => OpKind::Other,
    }
}

/// The target's monotonic clock (`nni_clock`: CLOCK_MONOTONIC in ms).
pub(crate) fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

#[cfg(test)]
mod tests;
