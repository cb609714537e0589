//! The bug zoo as runtime switches (shared/ZOO.md).
//!
//! Each [`Fault`] reintroduces one historic ownership mistake at the place
//! in our kernels where the C code made it: an `alias` where the fix takes a
//! reference, a release that leaves the handle in its slot, a finish outside
//! the lock, a cancel that never finishes. None of them reports anything by
//! itself; the violation has to come out of the ledger. All are off by
//! default, and a kernel only ever reads the [`FaultSet`] it was built with
//! (no global switch: loom needs every iteration independent).

use crate::ledger::{MsgRef, MsgSlot};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// One historic bug, reproducible on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "&'static str")]
#[non_exhaustive]
pub enum Fault {
    /// NanoMQ 1766, the seed: the SUBSCRIBE is parked without its own
    /// reference.
    Nanomq1766,
    /// NanoNNG 23d0eb290: SUBACK/timeout release the op's message but leave
    /// it in the slot.
    Nanonng23d0eb290,
    /// NanoNNG 230: the TLS send callback releases the sent message but
    /// leaves it on the write slot.
    Nanonng230,
    /// NanoMQ 531: a QoS 1/2 delivery is parked for its ACK without its own
    /// reference, so teardown frees what send completion already freed.
    Nanomq531,
    /// NanoMQ 485: a retained message is delivered without its own
    /// reference.
    Nanomq485,
    /// Fan-out to N subscribers with N-1 references.
    FanoutMissingRetain,
    /// NanoMQ 1329: the close drain releases queued messages without
    /// clearing the op's slot.
    Nanomq1329,
    /// NanoNNG 83430191f: SUBACK finishes the op after dropping the lock.
    Nanonng83430191f,
    /// nng 355: cancel finishes the op but leaves it armed.
    Nng355,
    /// NanoNNG 1578: cancel detaches the op and never finishes it.
    Nanonng1578,
    /// NanoNNG 1505: the SUBSCRIBE decode error path releases the partly
    /// built message the caller releases too.
    Nanonng1505,
    /// mosquitto CVE-2019-11778: the session ends and publishes its will
    /// but leaves it on the will-delay timer, which publishes it again.
    MosquittoCve201911778,
    /// NanoMQ 360: merging a client's overlapping subscriptions rebuilds
    /// its fan-out entry around the old entry's pointer, then frees the old
    /// entry.
    Nanomq360,
    /// A shared-group hand-over gives the next member the departing
    /// member's reference instead of its own.
    SharedHandover,
    /// NanoMQ 992557ab: fan-out snapshots the subscribers under the tree
    /// lock, drops it, and delivers to the snapshot.
    Nanomq992557ab,
    /// NanoNNG f135bbc6b: the resend looks the message up, drops the lock,
    /// and sends what it found.
    NanonngF135bbc6b,
}

impl Fault {
    /// Every fault, in ZOO.md order.
    pub const ALL: [Fault; 16] = [
        Fault::Nanomq1766,
        Fault::Nanonng23d0eb290,
        Fault::Nanonng230,
        Fault::Nanomq531,
        Fault::Nanomq485,
        Fault::FanoutMissingRetain,
        Fault::Nanomq1329,
        Fault::Nanonng83430191f,
        Fault::Nng355,
        Fault::Nanonng1578,
        Fault::Nanonng1505,
        Fault::MosquittoCve201911778,
        Fault::Nanomq360,
        Fault::SharedHandover,
        Fault::Nanomq992557ab,
        Fault::NanonngF135bbc6b,
    ];

    /// The name used on the command line and in test names (as in ZOO.md).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Nanomq1766 => "nanomq-1766",
            Fault::Nanonng23d0eb290 => "nanonng-23d0eb290",
            Fault::Nanonng230 => "nanonng-230",
            Fault::Nanomq531 => "nanomq-531",
            Fault::Nanomq485 => "nanomq-485",
            Fault::FanoutMissingRetain => "fanout-missing-retain",
            Fault::Nanomq1329 => "nanomq-1329",
            Fault::Nanonng83430191f => "nanonng-83430191f",
            Fault::Nng355 => "nng-355",
            Fault::Nanonng1578 => "nanonng-1578",
            Fault::Nanonng1505 => "nanonng-1505",
            Fault::MosquittoCve201911778 => "mosquitto-cve-2019-11778",
            Fault::Nanomq360 => "nanomq-360",
            Fault::SharedHandover => "shared-handover",
            Fault::Nanomq992557ab => "nanomq-992557ab",
            Fault::NanonngF135bbc6b => "nanonng-f135bbc6b",
        }
    }

    /// Where the bug comes from.
    pub fn source(self) -> &'static str {
        match self {
            Fault::Nanomq1766 => "NanoMQ issue 1766; NanoNNG fixes c3b043d84, f62f5d2df",
            Fault::Nanonng23d0eb290 => "NanoNNG 23d0eb290 (regression inside the first 1766 fix)",
            Fault::Nanonng230 => "NanoNNG 230 (broker TLS send callback)",
            Fault::Nanomq531 => "NanoMQ 531 (broker pipe teardown)",
            Fault::Nanomq485 => "NanoMQ 485 (retained messages)",
            Fault::FanoutMissingRetain => "same family as NanoMQ 485 (fan-out)",
            Fault::Nanomq1329 => "NanoMQ 1329 (send-queue drain)",
            Fault::Nanonng83430191f => "NanoNNG 83430191f (SUBACK vs timeout)",
            Fault::Nng355 => "nng 355 (cancellation)",
            Fault::Nanonng1578 => "NanoNNG 1578 (cancel that never finishes)",
            Fault::Nanonng1505 => "NanoNNG 1505 (SUBSCRIBE decode error path)",
            Fault::MosquittoCve201911778 => {
                "mosquitto CVE-2019-11778 (issue 1401; fixes 3c35c6cd, 5fd92cbf: will delay longer than session expiry)"
            }
            Fault::Nanomq360 => {
                "NanoMQ issue 360, fix d812d747 in PR 361 (overlapping subscriptions `-t aaa -t +`)"
            }
            Fault::SharedHandover => {
                "shared-group hand-over of a departed member's deliveries (MQTT 5 section 4.8.2; EMQX PRs 7807, 9094), with the NanoMQ 531 mistake"
            }
            Fault::Nanomq992557ab => {
                "NanoMQ 992557ab, 91919321 (pub_handler foreach_client on the dbtree_find_clients snapshot)"
            }
            Fault::NanonngF135bbc6b => "NanoNNG f135bbc6b (nano_pipe_timer_cb resend lookup)",
        }
    }

    /// The mistake, in one line.
    pub fn mistake(self) -> &'static str {
        match self {
            Fault::Nanomq1766 => {
                "parks the SUBSCRIBE on the pending op without its own reference; the wire's release frees it, close frees it again"
            }
            Fault::Nanonng23d0eb290 => {
                "SUBACK/timeout release the op's message but leave it in the slot; the caller's cleanup releases it again"
            }
            Fault::Nanonng230 => {
                "the send callback releases the written message but leaves it on the write slot; the next completion or teardown releases it again"
            }
            Fault::Nanomq531 => {
                "a QoS 1/2 delivery is parked without its own reference; send completion frees it and teardown frees it again"
            }
            Fault::Nanomq485 => {
                "a retained delivery uses the store's message without its own reference; the first write frees the store's copy"
            }
            Fault::FanoutMissingRetain => {
                "fans one message out to N subscribers with N-1 references; the last write frees freed memory"
            }
            Fault::Nanomq1329 => {
                "the close drain releases each queued message without clearing its op's slot; the caller's error handler releases again"
            }
            Fault::Nanonng83430191f => {
                "SUBACK finishes the op after dropping the pending lock; the timeout finishes it in between"
            }
            Fault::Nng355 => {
                "cancel finishes the op but leaves it in the pending table; the late ACK finishes it again"
            }
            Fault::Nanonng1578 => {
                "cancel detaches the op and never finishes it; the waiter hangs forever"
            }
            Fault::Nanonng1505 => {
                "a SUBSCRIBE decode error releases the partly built message; the reader releases it again"
            }
            Fault::MosquittoCve201911778 => {
                "the session ends and publishes the will without taking it off the will-delay timer; the timer publishes the freed will again"
            }
            Fault::Nanomq360 => {
                "merging a client's overlapping subscriptions copies the old fan-out entry's pointer and frees the old entry; the delivery reads freed memory"
            }
            Fault::SharedHandover => {
                "a departed group member's delivery is handed to the next member without its own reference; the departed session's release frees it under the new member"
            }
            Fault::Nanomq992557ab => {
                "fan-out snapshots the subscribers under the lock and delivers after dropping it; an UNSUBSCRIBE in between still gets the message (in C: the freed sub ctx)"
            }
            Fault::NanonngF135bbc6b => {
                "the reconnect resend copies the kept message's pointer under the lock and clones it after dropping the lock; the timeout frees it in between"
            }
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Fault> for &'static str {
    fn from(f: Fault) -> Self {
        f.name()
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{0}`: run `mqtls zoo --list` for the names")]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// The faults a kernel was built with. Empty by default: the fixed protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FaultSet(u32);

impl FaultSet {
    /// No fault: the fixed protocol.
    pub const NONE: FaultSet = FaultSet(0);

    /// Just `f`.
    pub fn only(f: Fault) -> Self {
        FaultSet(f.bit())
    }

    /// This set plus `f`.
    pub fn with(self, f: Fault) -> Self {
        FaultSet(self.0 | f.bit())
    }

    /// True when `f` is switched on.
    pub fn has(self, f: Fault) -> bool {
        self.0 & f.bit() != 0
    }

    /// The faults switched on.
    pub fn iter(self) -> impl Iterator<Item = Fault> {
        Fault::ALL.into_iter().filter(move |f| self.has(*f))
    }

    /// Another reference to `m` for a second owner: `retain` in the fixed
    /// protocol, a bare pointer copy (`alias`) when `fault` is on. A fault
    /// and its fix are one call apart, as they were in C.
    pub fn reference(self, fault: Fault, m: &MsgRef, site: &'static str) -> MsgRef {
        if self.has(fault) {
            m.alias(site)
        } else {
            m.retain(site)
        }
    }

    /// Takes the message out of `slot` for a new owner: `take` in the fixed
    /// protocol; when `fault` is on, a bare copy of the handle, leaving the
    /// slot armed with it for its old owner to use again.
    pub fn take_slot(self, fault: Fault, slot: &mut MsgSlot, site: &'static str) -> Option<MsgRef> {
        if self.has(fault) {
            slot.peek().map(|m| m.alias(site))
        } else {
            slot.take()
        }
    }

    /// Releases the message held in `slot`: take-and-release in the fixed
    /// protocol; when `fault` is on, release through a copy and leave the
    /// stale handle in the slot for the next owner to release again.
    pub fn release_slot(self, fault: Fault, slot: &mut MsgSlot, site: &'static str) {
        if self.has(fault) {
            if let Some(m) = slot.peek() {
                m.alias(site).release(site);
            }
        } else if let Some(m) = slot.take() {
            m.release(site);
        }
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        iter.into_iter().fold(FaultSet::NONE, FaultSet::with)
    }
}

impl FromStr for FaultSet {
    type Err = UnknownFault;
    /// Comma-separated names; `all` for every fault, `none` or empty for
    /// none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(FaultSet::NONE);
        }
        if s.eq_ignore_ascii_case("all") {
            return Ok(Fault::ALL.into_iter().collect());
        }
        s.split(',').map(str::parse::<Fault>).collect()
    }
}
