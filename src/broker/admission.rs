//! The queue policy of [`super::limits`] at work: whether a delivery fits
//! its session's queue and the broker's memory budget, making room by
//! shedding what the policy allows; every drop counted and logged; consumers
//! that stay over their limit disconnected.
//!
//! Everything here runs under the broker state lock, so deciding and then
//! queueing cannot race with another delivery; the writers running at the
//! same time only ever take deliveries out.

use super::limits::{DropReason, WhenFull};
use super::session::{OverLimit, Session};
use super::{Broker, Conn, State};
use crate::codec::{Disconnect, Packet, QoS, ReasonCode, Version};
use crate::ledger::MsgRef;
use crate::sync::Arc;

/// What a session holds beyond its in-flight window: (messages, bytes).
pub(super) fn queued(s: &Session, conn: Option<&Arc<Conn>>) -> (usize, usize) {
    let d = conn.map(|c| c.outbox.droppable()).unwrap_or_default();
    (s.waiting.len() + d.entries, s.waiting.bytes() + d.bytes)
}

/// Where the memory budget takes room from: the session last seen holding
/// the most queued bytes. Found by a scan of all sessions, repeated only
/// when that one has nothing left, and at most once per clock tick when
/// nobody has anything to shed (the budget is then all in flight).
#[derive(Debug, Default)]
pub(super) struct Fattest {
    id: Option<String>,
    found_none_at_ms: Option<u64>,
}

/// The broker-wide memory budget exhausted: since when, and how many
/// deliveries and publications it cost. One episode for the whole broker,
/// logged once when it starts and once when the budget is back under half:
/// the deliveries it drops may belong to sessions that hold nothing queued
/// (everything in flight), and those are not over any limit of their own.
#[derive(Debug, Clone, Copy)]
pub(super) struct BudgetOver {
    since_ms: u64,
    dropped: u64,
}

/// What a session over its limit may shed to make room for a delivery.
#[derive(Debug, Clone, Copy)]
struct Shed {
    /// Its oldest queued QoS 0.
    qos0: bool,
    /// Its oldest waiting QoS 1/2.
    qos12: bool,
}

impl Shed {
    /// What `policy` sheds for an incoming delivery of `qos`: QoS 0 always
    /// makes room for QoS 1/2; an older QoS 0 makes room for a newer one,
    /// and QoS 1/2 for QoS 1/2, only when dropping the oldest.
    fn for_policy(policy: WhenFull, qos: QoS) -> Shed {
        let oldest = policy == WhenFull::DropOldest;
        let qos12 = qos != QoS::AtMostOnce;
        Shed {
            qos0: oldest || qos12,
            qos12: oldest && qos12,
        }
    }
}

/// Sheds one queued delivery of `s` at `reason`'s site, as `shed` allows.
/// False when it had nothing to shed.
fn shed_one(s: &mut Session, conn: Option<&Arc<Conn>>, shed: Shed, reason: DropReason) -> bool {
    if shed.qos0 && conn.is_some_and(|c| c.outbox.drop_oldest_droppable(reason.site()).is_some()) {
        return true;
    }
    let qos12 = shed.qos12;
    if qos12 && let Some(w) = s.waiting.pop_front() {
        w.msg.release(reason.site());
        return true;
    }
    false
}

impl Broker {
    /// Makes room for a delivery of `qos` and `size` bytes to `client`,
    /// shedding what the policy allows. `Err` names the limit the new
    /// delivery breaks: the caller drops it with [`Broker::drop_delivery`].
    pub(super) fn admit(
        &self,
        st: &mut State,
        client: &str,
        qos: QoS,
        size: usize,
    ) -> Result<(), DropReason> {
        let shed = Shed::for_policy(self.cfg.queue.when_full, qos);
        self.fit_session(st, client, qos, size, shed)?;
        self.fit_budget(st, Some(client), size, shed)
    }

    /// [`WhenFull::Refuse`]: `Ok` when every QoS 1/2 subscriber of a
    /// publication can take it (after shedding its own QoS 0) and the
    /// budget holds a copy for every subscriber; otherwise the reason to
    /// refuse it. `targets` are the subscribers and the QoS each gets.
    pub(super) fn check_refuse(
        &self,
        st: &mut State,
        targets: &[(String, QoS)],
        size: usize,
    ) -> Result<(), DropReason> {
        for (client, qos) in targets {
            if *qos == QoS::AtMostOnce {
                continue;
            }
            let shed = Shed::for_policy(WhenFull::Refuse, *qos);
            if let Err(reason) = self.fit_session(st, client, *qos, size, shed) {
                let now = self.now_ms();
                if let Some(s) = st.sessions.get_mut(client) {
                    Self::mark_over(s, client, reason, now, 0);
                }
                return Err(reason);
            }
        }
        let need = size.saturating_mul(targets.len());
        let shed = Shed::for_policy(WhenFull::Refuse, QoS::AtLeastOnce);
        self.fit_budget(st, None, need, shed)
    }

    /// Drops a new delivery for `client`: released once at the reason's
    /// site, counted, and the session marked as over its limit.
    pub(super) fn drop_delivery(
        &self,
        st: &mut State,
        client: &str,
        msg: MsgRef,
        reason: DropReason,
    ) {
        msg.release(reason.site());
        let now = self.now_ms();
        let State {
            sessions,
            conns,
            stats,
            ..
        } = st;
        stats.drops.count(reason);
        tracing::trace!(client, %reason, "delivery dropped");
        if let Some(s) = sessions.get_mut(client) {
            // The budget dropping a delivery to a session with nothing
            // queued is the broker's episode, not the session's: it could
            // not have shed anything, and its next delivery would end the
            // episode again (one warning and one info line per delivery).
            let holds = || queued(s, s.conn.and_then(|c| conns.get(&c))).0 > 0;
            if reason != DropReason::MemoryBudget || holds() {
                Self::note_drop(s, client, reason, now);
            }
        }
    }

    fn fit_session(
        &self,
        st: &mut State,
        client: &str,
        qos: QoS,
        size: usize,
        shed: Shed,
    ) -> Result<(), DropReason> {
        let now = self.now_ms();
        let State {
            sessions,
            conns,
            stats,
            ..
        } = st;
        let Some(s) = sessions.get_mut(client) else {
            return Ok(());
        };
        let conn = s.conn.and_then(|id| conns.get(&id)).cloned();
        if qos == QoS::AtMostOnce && conn.as_ref().is_none_or(|c| c.is_closing()) {
            return Err(DropReason::OfflineQos0);
        }
        if qos != QoS::AtMostOnce && conn.is_some() && s.waiting.is_empty() && s.has_window() {
            // Straight into the in-flight window: nothing is queued.
            self.caught_up(s, conn.as_ref(), client);
            return Ok(());
        }
        loop {
            let (messages, bytes) = queued(s, conn.as_ref());
            let Some(reason) = self.cfg.queue.exceeded(messages, bytes, size) else {
                self.caught_up(s, conn.as_ref(), client);
                return Ok(());
            };
            if !shed_one(s, conn.as_ref(), shed, reason) {
                return Err(reason);
            }
            stats.drops.count(reason);
            Self::note_drop(s, client, reason, now);
        }
    }

    /// Makes room for `size` more bytes in the memory budget by shedding
    /// from the session holding the most queued bytes.
    fn fit_budget(
        &self,
        st: &mut State,
        current: Option<&str>,
        size: usize,
        shed: Shed,
    ) -> Result<(), DropReason> {
        let reason = DropReason::MemoryBudget;
        let now = self.now_ms();
        while !self.budget.fits(size) {
            self.note_budget(st, now);
            let Some(victim) = Self::fattest(st, current, now) else {
                return Err(reason);
            };
            let State {
                sessions,
                conns,
                stats,
                fattest,
                ..
            } = &mut *st;
            // Another session's oldest QoS 0 always makes room: "newest"
            // and "oldest" order a session's own queue.
            let shed = Shed {
                qos0: shed.qos0 || current != Some(victim.as_str()),
                ..shed
            };
            let shed_any = sessions.get_mut(&victim).is_some_and(|s| {
                let conn = s.conn.and_then(|id| conns.get(&id)).cloned();
                let shed_any = shed_one(s, conn.as_ref(), shed, reason);
                if shed_any {
                    stats.drops.count(reason);
                    Self::note_drop(s, &victim, reason, now);
                }
                shed_any
            });
            if !shed_any {
                // It holds only what this policy may not shed; looking
                // further would scan again for every delivery.
                fattest.id = None;
                return Err(reason);
            }
        }
        Ok(())
    }

    /// The session to take budget room from, if any holds queued bytes:
    /// the larger of the remembered one and `current`, or a scan's result.
    fn fattest(st: &mut State, current: Option<&str>, now: u64) -> Option<String> {
        let bytes_of = |st: &State, id: &str| {
            st.sessions
                .get(id)
                .map_or(0, |s| queued(s, s.conn.and_then(|c| st.conns.get(&c))).1)
        };
        if let Some(known) = st.fattest.id.clone() {
            let best = [Some(known.as_str()), current]
                .into_iter()
                .flatten()
                .map(|id| (id, bytes_of(st, id)))
                .filter(|(_, b)| *b > 0)
                .max_by_key(|(_, b)| *b)
                .map(|(id, _)| id.to_string());
            if best.is_some() {
                st.fattest.id = best.clone();
                return best;
            }
        }
        if st.fattest.found_none_at_ms == Some(now) {
            return None;
        }
        let scan = st
            .sessions
            .iter()
            .map(|(id, s)| (id, queued(s, s.conn.and_then(|c| st.conns.get(&c))).1))
            .filter(|(_, b)| *b > 0)
            .max_by_key(|(_, b)| *b)
            .map(|(id, _)| id.clone());
        st.fattest.found_none_at_ms = scan.is_none().then_some(now);
        st.fattest.id = scan.clone();
        scan
    }

    /// Counts one delivery (shed or refused) against the budget's episode,
    /// which starts, with a warning, at the first.
    fn note_budget(&self, st: &mut State, now: u64) {
        match &mut st.budget_over {
            Some(o) => o.dropped += 1,
            None => {
                tracing::warn!(
                    held = self.budget.used(),
                    limit = self.budget.limit(),
                    "memory budget exhausted: shedding the largest queues, dropping what does not fit"
                );
                st.budget_over = Some(BudgetOver {
                    since_ms: now,
                    dropped: 1,
                });
            }
        }
    }

    /// True when the budget holds at most half of its limit: where its
    /// episode, and a session's episode that began with it, end.
    fn budget_below_half(&self) -> bool {
        self.budget.used() <= self.budget.limit() / 2
    }

    /// Counts a drop against the session's episode over its limit, which
    /// starts (with a warning) at its first drop. QoS 0 to a disconnected
    /// session and deliveries too large for the client are not an episode:
    /// nothing would make them fit.
    fn note_drop(s: &mut Session, client: &str, reason: DropReason, now: u64) {
        if matches!(
            reason,
            DropReason::OfflineQos0 | DropReason::ClientMaxPacket
        ) {
            return;
        }
        Self::mark_over(s, client, reason, now, 1);
    }

    fn mark_over(s: &mut Session, client: &str, reason: DropReason, now: u64, dropped: u64) {
        match &mut s.over {
            Some(o) => o.dropped += dropped,
            None => {
                tracing::warn!(
                    client,
                    %reason,
                    connected = s.conn.is_some(),
                    "queue limit reached: dropping or refusing deliveries for this session"
                );
                s.over = Some(OverLimit {
                    since_ms: now,
                    conn: s.conn,
                    reason,
                    dropped,
                });
            }
        }
    }

    /// Ends a session's episode over its limit once its queue is down to
    /// half of the limits.
    fn caught_up(&self, s: &mut Session, conn: Option<&Arc<Conn>>, client: &str) {
        let Some(over) = s.over else { return };
        let (m, b) = queued(s, conn);
        // A session the budget shed from stays over until the budget has
        // room again: with no per-session limit it is always "under half".
        let budget = over.reason != DropReason::MemoryBudget || self.budget_below_half();
        if budget && self.cfg.queue.below_half(m, b) {
            tracing::info!(
                client,
                dropped = over.dropped,
                reason = %over.reason,
                "queue back under half its limit"
            );
            s.over = None;
        }
    }

    /// The timer's part: ends the budget's episode once it is back under
    /// half and the episodes of sessions that caught up, and
    /// returns the connections of consumers over their limit for longer
    /// than `slow_consumer_ms`, marked closing (MQTT 5 ones told with a
    /// DISCONNECT, Quota exceeded). Their sessions stay as any
    /// disconnected session does.
    pub(super) fn slow_consumers(&self, st: &mut State, now: u64) -> Vec<Arc<Conn>> {
        if let Some(o) = st.budget_over
            && self.budget_below_half()
        {
            tracing::info!(
                dropped = o.dropped,
                secs = now.saturating_sub(o.since_ms) / 1000,
                held = self.budget.used(),
                "memory budget back under half"
            );
            st.budget_over = None;
        }
        let ids: Vec<String> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.over.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let grace = self.cfg.queue.slow_consumer_ms;
        let mut slow = Vec::new();
        for id in ids {
            let State {
                sessions,
                conns,
                versions,
                stats,
                ..
            } = &mut *st;
            let Some(s) = sessions.get_mut(&id) else {
                continue;
            };
            let conn = s.conn.and_then(|c| conns.get(&c)).cloned();
            self.caught_up(s, conn.as_ref(), &id);
            let Some(over) = &mut s.over else { continue };
            if over.conn != s.conn {
                // Its episode began on another connection (or none): this
                // connection's grace starts now.
                over.conn = s.conn;
                over.since_ms = now;
                continue;
            }
            let Some(conn) = conn else {
                continue;
            };
            if grace == 0 || conn.is_closing() || now.saturating_sub(over.since_ms) < grace {
                continue;
            }
            tracing::warn!(
                client = %id,
                secs = now.saturating_sub(over.since_ms) / 1000,
                dropped = over.dropped,
                reason = %over.reason,
                "disconnecting a slow consumer: over its queue limit for too long"
            );
            stats.drops.slow_consumers_disconnected += 1;
            s.over = None;
            if versions.get(&id) == Some(&Version::V5) {
                let d = Disconnect {
                    reason: ReasonCode::QuotaExceeded,
                    ..Default::default()
                };
                self.send(
                    &conn,
                    &Packet::Disconnect(d),
                    Version::V5,
                    "slow consumer: DISCONNECT",
                );
            }
            conn.close_for(ReasonCode::QuotaExceeded);
            slow.push(conn);
        }
        slow
    }
}
