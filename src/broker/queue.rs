//! A session's queue of QoS 1/2 deliveries waiting for the in-flight window
//! or for the client to come back, with its size kept as it changes.
//!
//! The queue is only reachable through these methods, so its counts cannot
//! drift from its contents, whichever path (the window, a queue limit,
//! message expiry, the end of the session) takes deliveries out. Each
//! delivery carries its own budget [`Charge`], refunded when it leaves.

use super::shared::ShareKey;
use crate::kernels::budget::Charge;
use crate::kernels::frame::Delivery;
use crate::ledger::MsgRef;
use std::collections::VecDeque;

/// A delivery waiting for a free place in the in-flight window, or for the
/// client to come back.
#[derive(Debug)]
pub struct Waiting {
    /// The delivery's own reference.
    pub msg: MsgRef,
    /// The header fields.
    pub delivery: Delivery,
    /// Its bytes against the broker's memory budget (topic plus payload).
    pub charge: Charge,
    /// The shared group it was delivered through, if any (boxed: few
    /// deliveries have one, and every queued delivery carries the field).
    pub share: Option<Box<ShareKey>>,
}

impl Waiting {
    /// Its size as the queue limits count it.
    pub fn size(&self) -> usize {
        self.charge.bytes()
    }
}

/// The waiting deliveries of one session, oldest first.
#[derive(Debug, Default)]
pub struct SessionQueue {
    items: VecDeque<Waiting>,
    bytes: usize,
}

impl SessionQueue {
    /// Deliveries waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Their bytes (topic plus payload).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a delivery at the back.
    pub fn push_back(&mut self, w: Waiting) {
        self.bytes += w.size();
        self.items.push_back(w);
    }

    /// Takes the oldest delivery.
    pub fn pop_front(&mut self) -> Option<Waiting> {
        let w = self.items.pop_front()?;
        self.bytes -= w.size();
        Some(w)
    }

    /// The deliveries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Waiting> {
        self.items.iter()
    }

    /// The deliveries, oldest first, to update header fields in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Waiting> {
        self.items.iter_mut()
    }

    /// Takes out every delivery `remove` says so of (message expiry, say),
    /// keeping the others in order. The caller releases what it gets.
    pub fn take_if(&mut self, mut remove: impl FnMut(&Waiting) -> bool) -> Vec<Waiting> {
        if !self.items.iter().any(&mut remove) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.items.len());
        for w in self.items.drain(..) {
            if remove(&w) {
                self.bytes -= w.size();
                taken.push(w);
            } else {
                kept.push_back(w);
            }
        }
        self.items = kept;
        taken
    }

    /// Releases every delivery at `site` (the session ends).
    pub fn release_all(&mut self, site: &'static str) {
        for w in self.items.drain(..) {
            w.msg.release(site);
        }
        self.bytes = 0;
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::codec::{Publish, QoS, Version};
    use crate::kernels::budget::MemoryBudget;
    use crate::ledger::{Ledger, Mode, MsgKind};
    use crate::sync::{Arc, StdArc};

    fn waiting(ledger: &Arc<Ledger>, budget: &MemoryBudget, n: usize) -> Waiting {
        let payload = bytes::Bytes::from(vec![0u8; n]);
        let meta = Publish::new(
            crate::codec::MqttString::new("t").unwrap(),
            bytes::Bytes::new(),
        );
        Waiting {
            msg: ledger.alloc(MsgKind::Publish, payload, "test: publish"),
            delivery: Delivery {
                meta: StdArc::new(meta),
                qos: QoS::AtLeastOnce,
                packet_id: 0,
                dup: false,
                retain: false,
                subscription_ids: Vec::new(),
                version: Version::V5,
                expires_at_ms: None,
                message_expiry: None,
                aliases: None,
            },
            charge: budget.charge(n + 1),
            share: None,
        }
    }

    #[test]
    fn counts_follow_every_way_out_and_the_budget_is_refunded() {
        let ledger = Ledger::new(Mode::Full);
        let budget = MemoryBudget::new(0);
        let mut q = SessionQueue::default();
        for n in [10, 20, 30, 40] {
            q.push_back(waiting(&ledger, &budget, n));
        }
        assert_eq!((q.len(), q.bytes(), budget.used()), (4, 104, 104));
        let first = q.pop_front().unwrap();
        first.msg.release("test: sent");
        drop(first.charge);
        assert_eq!((q.len(), q.bytes(), budget.used()), (3, 93, 93));
        let taken = q.take_if(|w| w.size() == 31);
        assert_eq!(taken.len(), 1);
        for w in taken {
            w.msg.release("test: expired");
        }
        assert_eq!((q.len(), q.bytes(), budget.used()), (2, 62, 62));
        q.release_all("test: session end");
        assert_eq!((q.len(), q.bytes(), budget.used()), (0, 0, 0));
        assert!(ledger.audit().is_clean());
    }
}
