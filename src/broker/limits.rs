//! How much the broker holds for consumers that fall behind, and what it
//! does when that is reached.
//!
//! What counts: a session's *queue* is what waits for its client beyond the
//! in-flight window: QoS 1/2 deliveries waiting for a free packet id or for
//! the client to come back, and QoS 0 deliveries on its connection not yet
//! written. The in-flight window itself is bounded by `max_inflight` (and
//! the client's Receive Maximum). The broker-wide budget counts every byte
//! held for delivery, queued or in flight. Sizes are topic plus payload.
//!
//! The policy, when a delivery does not fit ([`QueueLimits`]):
//! 1. QoS 0 goes first: a disconnected session gets no QoS 0 at all (as
//!    MQTT 3.1.1 says and mosquitto does by default), and a session over its
//!    limit sheds its oldest queued QoS 0 to make room for a QoS 1/2
//!    delivery; for a new QoS 0, [`WhenFull::DropOldest`] sheds the oldest
//!    QoS 0 and the other policies drop the new one.
//! 2. Then [`WhenFull`] decides for QoS 1/2: drop the session's oldest
//!    queued message (EMQX), drop the new one (mosquitto), or refuse the
//!    publication so that an MQTT 5 publisher gets Quota exceeded (0x97).
//! 3. When the broker-wide budget is what is exhausted, room is taken from
//!    the session holding the most queued bytes, so a healthy consumer does
//!    not pay for a stalled one.
//! 4. A connected consumer that stays over its limit longer than
//!    `slow_consumer_ms` is disconnected (MQTT 5: DISCONNECT with Quota
//!    exceeded); its session stays, within the same limits, as any
//!    disconnected session does.
//!
//! Every dropped delivery's reference is released once, at a ledger site
//! naming the reason ([`DropReason::site`]), and counted in [`Drops`]. A
//! session going over its limit is logged once (warn), and again when it is
//! back under half of it (info, with how many it lost); the budget running
//! out likewise, once for the whole broker; single drops are `trace`.

use serde::{Deserialize, Serialize};

/// What happens to QoS 1/2 deliveries once a session's queued QoS 0 are
/// gone and it is still over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Drop the session's oldest queued message to make room: the freshest
    /// data survives (EMQX's policy).
    #[default]
    DropOldest,
    /// Drop the new message for that session (mosquitto's policy).
    DropNewest,
    /// Refuse the publication as a whole when any QoS 1/2 subscriber cannot
    /// take it: nobody gets it, it is not retained, and an MQTT 5 publisher
    /// gets PUBACK/PUBREC with Quota exceeded (0x97) so it can slow down.
    /// MQTT 3.1.1 has no negative acknowledgement: for those publishers and
    /// for wills this acts as `DropNewest`.
    Refuse,
}

/// Per-session and broker-wide limits on what is held for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimits {
    /// Queued messages per session, connected or not (0: no limit).
    pub max_messages: usize,
    /// Queued bytes per session (0: no limit).
    pub max_bytes: usize,
    /// Bytes held for delivery by all sessions together, queued or in
    /// flight (0: no limit).
    pub memory: usize,
    /// What to do with QoS 1/2 once QoS 0 are gone.
    pub when_full: WhenFull,
    /// A connected consumer over its limit for longer than this is
    /// disconnected (0: never).
    pub slow_consumer_ms: u64,
}

impl Default for QueueLimits {
    /// mosquitto's and EMQX's 1000 messages per session, 16 MiB per session
    /// and 256 MiB in all, drop the oldest, and a minute of grace.
    fn default() -> Self {
        QueueLimits {
            max_messages: 1_000,
            max_bytes: 16 << 20,
            memory: 256 << 20,
            when_full: WhenFull::DropOldest,
            slow_consumer_ms: 60_000,
        }
    }
}

impl QueueLimits {
    /// No limit at all (the broker before issue 19; for measurements).
    pub fn unlimited() -> Self {
        QueueLimits {
            max_messages: 0,
            max_bytes: 0,
            memory: 0,
            when_full: WhenFull::DropOldest,
            slow_consumer_ms: 0,
        }
    }

    /// The limit `messages` queued messages and `bytes` queued bytes break
    /// with one more of `size` bytes, if any.
    pub(crate) fn exceeded(
        &self,
        messages: usize,
        bytes: usize,
        size: usize,
    ) -> Option<DropReason> {
        if self.max_messages > 0 && messages + 1 > self.max_messages {
            Some(DropReason::QueueMessages)
        } else if self.max_bytes > 0 && bytes + size > self.max_bytes {
            Some(DropReason::QueueBytes)
        } else {
            None
        }
    }

    /// True when `messages` and `bytes` are at most half of the limits:
    /// the point where a session over its limit counts as caught up again.
    pub(crate) fn below_half(&self, messages: usize, bytes: usize) -> bool {
        (self.max_messages == 0 || messages <= self.max_messages / 2)
            && (self.max_bytes == 0 || bytes <= self.max_bytes / 2)
    }
}

/// Why a delivery was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The session's queue held `max_messages`.
    QueueMessages,
    /// The session's queue held `max_bytes`.
    QueueBytes,
    /// The broker-wide budget was exhausted.
    MemoryBudget,
    /// The connection's send queue was at its hard bound.
    SendQueueFull,
    /// QoS 0 for a session with no connection (or one being closed).
    OfflineQos0,
    /// Larger than the client's Maximum Packet Size [MQTT-3.1.2-24].
    ClientMaxPacket,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueMessages,
        DropReason::QueueBytes,
        DropReason::MemoryBudget,
        DropReason::SendQueueFull,
        DropReason::OfflineQos0,
        DropReason::ClientMaxPacket,
    ];

    /// The name used in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueMessages => "queue_messages",
            DropReason::QueueBytes => "queue_bytes",
            DropReason::MemoryBudget => "memory_budget",
            DropReason::SendQueueFull => "send_queue_full",
            DropReason::OfflineQos0 => "offline_qos0",
            DropReason::ClientMaxPacket => "client_max_packet",
        }
    }

    /// The ledger site a delivery dropped for this reason is released at.
    pub fn site(self) -> &'static str {
        match self {
            DropReason::QueueMessages => "queue limit: messages (dropped)",
            DropReason::QueueBytes => "queue limit: bytes (dropped)",
            DropReason::MemoryBudget => "memory budget (dropped)",
            DropReason::SendQueueFull => "send queue full (dropped)",
            DropReason::OfflineQos0 => "QoS 0 to a disconnected session (dropped)",
            DropReason::ClientMaxPacket => "over the client's maximum packet size (dropped)",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Deliveries dropped, per reason, and what the policy did about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// [`DropReason::QueueMessages`].
    pub queue_messages: u64,
    /// [`DropReason::QueueBytes`].
    pub queue_bytes: u64,
    /// [`DropReason::MemoryBudget`].
    pub memory_budget: u64,
    /// [`DropReason::SendQueueFull`].
    pub send_queue_full: u64,
    /// [`DropReason::OfflineQos0`].
    pub offline_qos0: u64,
    /// [`DropReason::ClientMaxPacket`].
    pub client_max_packet: u64,
    /// Publications refused with Quota exceeded ([`WhenFull::Refuse`]).
    pub refused_publishes: u64,
    /// Consumers disconnected for staying over their limit.
    pub slow_consumers_disconnected: u64,
}

impl Drops {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        *self.slot(reason) += 1;
    }

    /// Drops for `reason`.
    pub fn of(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueMessages => self.queue_messages,
            DropReason::QueueBytes => self.queue_bytes,
            DropReason::MemoryBudget => self.memory_budget,
            DropReason::SendQueueFull => self.send_queue_full,
            DropReason::OfflineQos0 => self.offline_qos0,
            DropReason::ClientMaxPacket => self.client_max_packet,
        }
    }

    /// Deliveries dropped for any reason.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.of(*r)).sum()
    }

    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::QueueMessages => &mut self.queue_messages,
            DropReason::QueueBytes => &mut self.queue_bytes,
            DropReason::MemoryBudget => &mut self.memory_budget,
            DropReason::SendQueueFull => &mut self.send_queue_full,
            DropReason::OfflineQos0 => &mut self.offline_qos0,
            DropReason::ClientMaxPacket => &mut self.client_max_packet,
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_named_by_the_first_it_breaks() {
        let l = QueueLimits {
            max_messages: 2,
            max_bytes: 100,
            ..QueueLimits::default()
        };
        assert_eq!(l.exceeded(1, 50, 50), None);
        assert_eq!(l.exceeded(2, 0, 1), Some(DropReason::QueueMessages));
        assert_eq!(l.exceeded(1, 60, 41), Some(DropReason::QueueBytes));
        assert_eq!(QueueLimits::unlimited().exceeded(1 << 30, 1 << 40, 1), None);
        assert!(l.below_half(1, 50));
        assert!(!l.below_half(1, 51));
    }

    #[test]
    fn drops_count_per_reason_and_in_total() {
        let mut d = Drops::default();
        for r in DropReason::ALL {
            d.count(r);
        }
        d.count(DropReason::QueueBytes);
        assert_eq!(d.of(DropReason::QueueBytes), 2);
        assert_eq!(d.total(), 7);
    }
}
