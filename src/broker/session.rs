//! A client's session: its subscriptions and the QoS 1/2 deliveries it has
//! not acknowledged yet, kept across connections when the session persists.
//!
//! Ownership (the broker side of ZOO.md rule 2): a QoS 1/2 delivery parked
//! for its acknowledgement holds its own reference in its slot; the wire
//! holds another. PUBACK, PUBREC or the end of the session release the
//! parked one.

use super::limits::DropReason;
pub use super::queue::{SessionQueue, Waiting};
use super::shared::ShareKey;
use crate::codec::{QoS, SubscriptionOptions};
use crate::kernels::budget::Charge;
use crate::kernels::frame::Delivery;
use crate::ledger::MsgSlot;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where an unacknowledged delivery is in its QoS flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightStage {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck,
    /// QoS 2: PUBREL sent; waiting for PUBCOMP.
    AwaitPubcomp,
}

/// A delivery parked until the subscriber acknowledges it.
#[derive(Debug)]
pub struct Inflight {
    /// The parked reference (empty once PUBREC released it).
    pub slot: MsgSlot,
    /// The header fields to resend with.
    pub delivery: Delivery,
    /// Where it is in the flow.
    pub stage: InflightStage,
    /// Its bytes against the memory budget, until the payload is released
    /// (PUBACK, PUBREC).
    pub charge: Option<Charge>,
    /// The shared group it was delivered through, if any: a session that
    /// ends before the acknowledgement hands it to another member.
    pub share: Option<Box<ShareKey>>,
}

/// A session over its queue limit: since when, why, and what it lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// When it first dropped (ms on the broker's clock), or when the
    /// connection it is timed on began to be timed.
    pub since_ms: u64,
    /// The connection the grace period runs on.
    pub conn: Option<u64>,
    /// The limit that made it drop first.
    pub reason: DropReason,
    /// Deliveries it lost since.
    pub dropped: u64,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    /// The connection serving it, if connected.
    pub conn: Option<u64>,
    /// Filters and their options (and subscription identifier).
    pub subscriptions: HashMap<String, (SubscriptionOptions, Option<u32>)>,
    /// Unacknowledged QoS 1/2 deliveries by packet id. Boxed: packet ids
    /// go up, so the tree's nodes are about half full, and a stopped
    /// consumer holds a whole window of these (168 bytes each inline, where
    /// the slack was 350 bytes per delivery in a 100-subscriber soak).
    pub inflight: BTreeMap<u16, Box<Inflight>>,
    /// Deliveries waiting for the window or for a connection.
    pub waiting: SessionQueue,
    /// Set while the session is over its queue limit.
    pub over: Option<OverLimit>,
    /// How many deliveries may be unacknowledged at once (the client's
    /// Receive Maximum).
    pub window: u16,
    /// Session Expiry Interval in seconds (0: ends with the connection;
    /// `u32::MAX`: never).
    pub expiry_secs: u32,
    /// The client's Maximum Packet Size (MQTT 5): larger deliveries are
    /// dropped for it [MQTT-3.1.2-24].
    pub max_packet_out: Option<u32>,
    /// When a disconnected session expires (ms on the broker's clock).
    pub expires_at_ms: Option<u64>,
    /// QoS 2 packet ids received from the client and not yet released by
    /// PUBREL (session state [MQTT-4.1.0-1]): kept with the session, so
    /// that a resend on a later connection, a takeover's included, is not
    /// routed twice.
    pub awaiting_pubrel: HashSet<u16>,
    next_pid: u16,
}

impl Session {
    /// A fresh session.
    pub fn new(expiry_secs: u32, window: u16) -> Self {
        Session {
            conn: None,
            subscriptions: HashMap::new(),
            inflight: BTreeMap::new(),
            waiting: SessionQueue::default(),
            over: None,
            window: window.max(1),
            expiry_secs,
            expires_at_ms: None,
            max_packet_out: None,
            awaiting_pubrel: HashSet::new(),
            next_pid: 1,
        }
    }

    /// A packet id no inflight delivery uses, or `None` when the window is
    /// full.
    pub fn take_pid(&mut self) -> Option<u16> {
        if !self.has_window() {
            return None;
        }
        for _ in 0..u16::MAX {
            let pid = self.next_pid;
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&pid) {
                return Some(pid);
            }
        }
        None
    }

    /// The highest QoS among the subscriptions (for tests and reports).
    pub fn max_qos(&self) -> QoS {
        self.subscriptions
            .values()
            .map(|(o, _)| o.qos)
            .max()
            .unwrap_or_default()
    }

    /// Releases the waiting deliveries whose message expired at `now_ms`
    /// (nobody started to deliver them [MQTT-3.3.2-5]); how many.
    pub fn expire_waiting(&mut self, now_ms: u64) -> usize {
        let gone = self.waiting.take_if(|w| w.delivery.expired(now_ms));
        let n = gone.len();
        for w in gone {
            w.msg.release("session: message expired while waiting");
        }
        n
    }

    /// Releases every reference the session holds (the session ends).
    pub fn release_all(&mut self, site: &'static str) {
        for (_, mut i) in std::mem::take(&mut self.inflight) {
            if let Some(m) = i.slot.take() {
                m.release(site);
            }
        }
        self.waiting.release_all(site);
    }

    /// True while the in-flight window has room.
    pub fn has_window(&self) -> bool {
        self.inflight.len() < usize::from(self.window)
    }
}
