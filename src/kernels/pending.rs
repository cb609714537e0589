//! Operations parked waiting for their acknowledgement (client side).
//!
//! Ownership (ZOO.md rules 2, 4, 5): a parked operation holds its own
//! reference to its request message in its slot (the wire holds another).
//! Whoever takes the operation out of the table (the ACK, the timeout, a
//! cancel, the close) releases that reference, clears the slot and finishes
//! the operation, all under the table's lock, so nobody else can reach the
//! operation half-done.

use crate::faults::{Fault, FaultSet};
use crate::ledger::{MsgRef, Op, Outcome};
use crate::sync::{Mutex, lock};
use std::collections::BTreeMap;

/// Which acknowledgement a parked operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The first (and for most packets only) acknowledgement: CONNACK,
    /// SUBACK, UNSUBACK, PUBACK, or PUBREC for QoS 2.
    Ack,
    /// QoS 2 after PUBREC: waiting for PUBCOMP.
    Pubcomp,
}

/// One parked operation.
#[derive(Debug)]
pub struct Parked {
    /// The operation; its slot holds the request's own reference.
    pub op: Op,
    /// When the timer gives up on it (ms on the caller's clock), if ever.
    pub deadline_ms: Option<u64>,
    /// What it waits for.
    pub stage: Stage,
}

/// What an acknowledgement found.
#[derive(Debug)]
pub enum AckResult {
    /// The operation was finished by this acknowledgement.
    Finished,
    /// QoS 2: PUBREC moved the operation on to wait for PUBCOMP.
    Advanced,
    /// No operation waits under that packet id; the result message (if any)
    /// comes back for the caller to release.
    Unknown(Option<MsgRef>),
}

/// The pending table: packet id to parked operation.
pub struct Pending {
    table: Mutex<BTreeMap<u16, Parked>>,
    faults: FaultSet,
}

impl Pending {
    /// An empty table.
    pub fn new(faults: FaultSet) -> Self {
        Pending {
            table: Mutex::new(BTreeMap::new()),
            faults,
        }
    }

    /// Parks `op` under `pid`. A packet id already in use is refused and
    /// the operation handed back.
    pub fn park(&self, pid: u16, op: Op, deadline_ms: Option<u64>) -> Result<(), Op> {
        let mut t = lock(&self.table);
        if t.contains_key(&pid) {
            return Err(op);
        }
        t.insert(
            pid,
            Parked {
                op,
                deadline_ms,
                stage: Stage::Ack,
            },
        );
        Ok(())
    }

    /// The first packet id at or after `from` (wrapping, never 0) that no
    /// parked operation uses, or `None` when all 65535 are taken.
    pub fn free_pid(&self, from: u16) -> Option<u16> {
        let t = lock(&self.table);
        let mut pid = from.max(1);
        for _ in 0..u16::MAX {
            if !t.contains_key(&pid) {
                return Some(pid);
            }
            pid = pid.checked_add(1).unwrap_or(1);
        }
        None
    }

    /// Parked operations right now.
    pub fn len(&self) -> usize {
        lock(&self.table).len()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stage the operation under `pid` waits in.
    pub fn stage(&self, pid: u16) -> Option<Stage> {
        lock(&self.table).get(&pid).map(|p| p.stage)
    }

    /// The acknowledgement for `pid` arrived (rule 4). `result` is the
    /// acknowledgement message the caller will own (a SUBACK); `advance`
    /// says this is a PUBREC, after which a QoS 2 publish waits for PUBCOMP.
    pub fn ack(&self, pid: u16, result: Option<MsgRef>, advance: bool) -> AckResult {
        let f = self.faults;
        if f.has(Fault::Nanonng83430191f) {
            return self.ack_outside_lock(pid, result);
        }
        let mut t = lock(&self.table);
        if advance && let Some(p) = t.get_mut(&pid).filter(|p| p.stage == Stage::Ack) {
            p.op.with_msg(|s| f.release_slot(Fault::Nanonng23d0eb290, s, "reader: PUBREC"));
            p.stage = Stage::Pubcomp;
            return AckResult::Advanced;
        }
        let Some(p) = t.remove(&pid) else {
            return AckResult::Unknown(result);
        };
        p.op.with_msg(|s| f.release_slot(Fault::Nanonng23d0eb290, s, "reader: ACK"));
        if let Some(r) = result
            && let Some(old) = p.op.set_result(r, "reader: ACK")
        {
            old.release("reader: ACK (displaced result)");
        }
        p.op.finish(Outcome::Success, "reader: ACK");
        AckResult::Finished
    }

    /// NanoNNG 83430191f: as in `mqtt_recv_cb` before the fix, the
    /// operation is looked up, its message released and the SUBACK attached
    /// under the lock (`nni_aio_set_msg`), but it is finished after the lock
    /// is dropped (`nni_mtx_unlock` before `nni_aio_finish`), and only then
    /// taken out of the table. The timeout finds it in either window, before
    /// or after that finish: either way the operation is finished twice.
    fn ack_outside_lock(&self, pid: u16, result: Option<MsgRef>) -> AckResult {
        let op = {
            let t = lock(&self.table);
            let Some(p) = t.get(&pid) else {
                return AckResult::Unknown(result);
            };
            let op = p.op.clone();
            op.with_msg(|s| {
                self.faults
                    .release_slot(Fault::Nanonng23d0eb290, s, "reader: ACK")
            });
            if let Some(r) = result
                && let Some(old) = op.set_result(r, "reader: ACK")
            {
                old.release("reader: ACK (displaced result)");
            }
            op
        };
        op.finish(Outcome::Success, "reader: ACK (unlocked)");
        lock(&self.table).remove(&pid);
        AckResult::Finished
    }

    /// The timer fired at `now_ms`: every operation past its deadline is
    /// taken out, its reference released and it is finished `TimedOut`.
    /// Returns the packet ids that expired.
    pub fn expire(&self, now_ms: u64) -> Vec<u16> {
        let mut t = lock(&self.table);
        let due: Vec<u16> = t
            .iter()
            .filter(|(_, p)| p.deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &due {
            if let Some(p) = t.remove(pid) {
                p.op.with_msg(|s| {
                    self.faults
                        .release_slot(Fault::Nanonng23d0eb290, s, "timer: timeout")
                });
                p.op.finish(Outcome::TimedOut, "timer: timeout");
            }
        }
        due
    }

    /// The timer for `pid` fired, whatever its deadline (the loom models'
    /// timer thread). Returns true when it found the operation.
    pub fn time_out(&self, pid: u16) -> bool {
        let mut t = lock(&self.table);
        let Some(p) = t.remove(&pid) else {
            return false;
        };
        p.op.with_msg(|s| {
            self.faults
                .release_slot(Fault::Nanonng23d0eb290, s, "timer: timeout")
        });
        p.op.finish(Outcome::TimedOut, "timer: timeout");
        true
    }

    /// The caller cancels `op` (rule 5). Returns true when it was parked.
    pub fn cancel(&self, op: &Op) -> bool {
        let f = self.faults;
        let mut t = lock(&self.table);
        let Some(pid) = t
            .iter()
            .find(|(_, p)| p.op.id() == op.id())
            .map(|(pid, _)| *pid)
        else {
            return false;
        };
        if f.has(Fault::Nng355) {
            // The op stays armed in the table; a late ACK finds it.
            if let Some(p) = t.get(&pid) {
                p.op.with_msg(|s| f.release_slot(Fault::Nanonng23d0eb290, s, "cancel"));
                p.op.finish(Outcome::Canceled, "cancel");
            }
            return true;
        }
        if let Some(p) = t.remove(&pid) {
            p.op.with_msg(|s| f.release_slot(Fault::Nanonng23d0eb290, s, "cancel"));
            if !f.has(Fault::Nanonng1578) {
                p.op.finish(Outcome::Canceled, "cancel");
            }
        }
        true
    }

    /// The connection closed (rule 5): every operation `keep` does not
    /// claim is finished `Closed` and its reference released. Kept ones
    /// (QoS 1/2 publishes of a persistent session) stay parked for the
    /// retransmission after reconnect.
    pub fn close(&self, keep: impl Fn(&Parked) -> bool) {
        let mut t = lock(&self.table);
        let gone: Vec<u16> = t
            .iter()
            .filter(|(_, p)| !keep(p))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            if let Some(p) = t.remove(&pid) {
                p.op.finish(Outcome::Closed, "close: pending flush");
                if let Some(m) = p.op.take_msg() {
                    m.release("close: pending flush");
                }
            }
        }
    }

    /// Visits every parked operation in packet id order (for the
    /// retransmission after reconnect).
    pub fn for_each(&self, mut f: impl FnMut(u16, &Parked)) {
        for (pid, p) in lock(&self.table).iter() {
            f(*pid, p);
        }
    }
}

impl Pending {
    /// Takes the operation under `pid` out and finishes it with `outcome`,
    /// releasing its reference (a request whose send was refused).
    pub fn fail(&self, pid: u16, outcome: Outcome, site: &'static str) -> bool {
        let mut t = lock(&self.table);
        let Some(p) = t.remove(&pid) else {
            return false;
        };
        if let Some(m) = p.op.take_msg() {
            m.release(site);
        }
        p.op.finish(outcome, site);
        true
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, Mode, MsgKind, OpKind};
    use bytes::Bytes;

    /// A parked publish holding its request's reference, like the client's.
    fn park(ledger: &Ledger, pending: &Pending, pid: u16) -> Op {
        let op = ledger.begin_op(OpKind::Publish, "test: publish");
        let m = ledger.alloc(MsgKind::Publish, Bytes::from_static(b"p"), "test: publish");
        assert!(op.set_msg(m, "test: park").is_none());
        pending.park(pid, op.clone(), None).unwrap();
        op
    }

    // The reconnect's resend reads the stage to choose PUBLISH or PUBREL
    // (MQTT-4.4.0-1); a QoS 2 publish is parked until its PUBCOMP.
    #[test]
    fn a_pubrec_moves_a_qos_2_publish_to_the_pubcomp_stage() {
        let ledger = Ledger::new(Mode::Full);
        let pending = Pending::new(FaultSet::NONE);
        assert!(pending.is_empty());
        let op = park(&ledger, &pending, 5);
        assert_eq!(pending.stage(5), Some(Stage::Ack));
        assert!(matches!(pending.ack(5, None, true), AckResult::Advanced));
        assert_eq!(pending.stage(5), Some(Stage::Pubcomp));
        assert!(!pending.is_empty() && !op.is_finished());
        assert!(matches!(pending.ack(5, None, false), AckResult::Finished));
        assert_eq!(pending.stage(5), None);
        assert!(pending.is_empty());
        assert_eq!(op.outcome(), Some(Outcome::Success));
        assert!(ledger.audit().is_clean());
    }

    // The keep-alive timer's sweep: an op is due at its deadline, not a
    // tick later, and one without a deadline waits for its acknowledgement
    // however long it takes (the schedule engine's nanonng-f135bbc6b scenario
    // starts from such a timeout).
    #[test]
    fn the_timer_expires_what_is_due_and_nothing_else() {
        let ledger = Ledger::new(Mode::Full);
        let pending = Pending::new(FaultSet::NONE);
        let due = ledger.begin_op(OpKind::Publish, "test: publish");
        pending.park(1, due.clone(), Some(100)).unwrap();
        let later = ledger.begin_op(OpKind::Publish, "test: publish");
        pending.park(2, later.clone(), Some(101)).unwrap();
        let never = park(&ledger, &pending, 3);
        assert_eq!(pending.expire(99), Vec::<u16>::new());
        assert_eq!(pending.expire(100), vec![1]);
        assert_eq!(due.outcome(), Some(Outcome::TimedOut));
        assert!(!later.is_finished());
        assert_eq!(pending.expire(u64::MAX), vec![2]);
        assert!(!never.is_finished());
        pending.close(|_| false);
        assert!(ledger.audit().is_clean());
    }

    // Every way out other than the acknowledgement (the timer, the caller's
    // cancel, a refused send, the close) takes the op out of the table,
    // finishes it with its own outcome and releases the request: each one is
    // a path where NanoNNG leaked or double-finished (ZOO.md).
    #[test]
    fn each_way_out_finishes_once_with_its_outcome() {
        let ledger = Ledger::new(Mode::Full);
        let pending = Pending::new(FaultSet::NONE);
        let timed = park(&ledger, &pending, 1);
        let canceled = park(&ledger, &pending, 2);
        let failed = park(&ledger, &pending, 3);
        let closed = park(&ledger, &pending, 4);
        let kept = park(&ledger, &pending, 5);

        let mut seen = Vec::new();
        pending.for_each(|pid, p| seen.push((pid, p.op.id())));
        let ids = [&timed, &canceled, &failed, &closed, &kept].map(|op| op.id());
        assert_eq!(seen, (1..=5).zip(ids).collect::<Vec<_>>());

        assert!(pending.time_out(1) && !pending.time_out(1));
        assert!(pending.cancel(&canceled) && !pending.cancel(&canceled));
        assert!(pending.fail(3, Outcome::Failed("refused".into()), "test: fail"));
        assert!(!pending.fail(3, Outcome::Canceled, "test: fail"));
        pending.close(|p| p.op.id() == kept.id());
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.stage(5), Some(Stage::Ack));

        assert_eq!(timed.outcome(), Some(Outcome::TimedOut));
        assert_eq!(canceled.outcome(), Some(Outcome::Canceled));
        assert_eq!(failed.outcome(), Some(Outcome::Failed("refused".into())));
        assert_eq!(closed.outcome(), Some(Outcome::Closed));
        assert!(!kept.is_finished());
        assert_eq!(ledger.releases_at("test: fail"), 1);
        assert_eq!(ledger.releases_at("close: pending flush"), 1);
        pending.close(|_| false);
        assert!(ledger.audit().is_clean());
    }
}
