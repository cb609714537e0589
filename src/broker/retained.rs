//! The retained store: one message per topic, holding its own reference.
//!
//! Ownership: the store keeps one reference per retained message; every
//! delivery to a new subscriber takes another (NanoMQ 485 delivered the
//! store's own pointer instead, so the first write freed the store's copy).
//! A retained message with a Message Expiry Interval is released by the
//! store when it expires (`expire`, from the broker's timer) and is not
//! delivered once expired [MQTT-3.3.2-5].

use super::topic_tree::filter_matches;
use crate::codec::Publish;
use crate::ledger::MsgRef;
use crate::sync::StdArc;
use std::collections::HashMap;

/// One retained message.
#[derive(Debug)]
pub struct Retained {
    /// The store's own reference to the payload.
    pub msg: MsgRef,
    /// Topic, QoS and properties as published (payload field empty).
    pub meta: StdArc<Publish>,
    /// When it expires (ms on the broker's clock), if it does.
    pub expires_at_ms: Option<u64>,
}

/// Topic name to retained message.
#[derive(Debug, Default)]
pub struct RetainedStore {
    by_topic: HashMap<String, Retained>,
}

impl RetainedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retained messages held.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }

    /// Stores `msg` (a reference the store now owns) for its topic,
    /// releasing the message it replaces.
    pub fn put(
        &mut self,
        topic: &str,
        msg: MsgRef,
        meta: StdArc<Publish>,
        expires_at_ms: Option<u64>,
    ) {
        let r = Retained {
            msg,
            meta,
            expires_at_ms,
        };
        if let Some(old) = self.by_topic.insert(topic.to_string(), r) {
            old.msg.release("retain: replaced");
        }
    }

    /// Removes the retained message of `topic` (a retained PUBLISH with an
    /// empty payload), releasing it.
    pub fn clear(&mut self, topic: &str) {
        if let Some(old) = self.by_topic.remove(topic) {
            old.msg.release("retain: cleared");
        }
    }

    /// Calls `f` for every retained message whose topic matches `filter`
    /// and that has not expired at `now_ms`.
    pub fn for_each_match(&self, filter: &str, now_ms: u64, mut f: impl FnMut(&Retained)) {
        for (topic, r) in &self.by_topic {
            let live = r.expires_at_ms.is_none_or(|t| t > now_ms);
            if live && filter_matches(filter, topic) {
                f(r);
            }
        }
    }

    /// Releases the retained messages that expired at `now_ms`; how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let gone: Vec<String> = self
            .by_topic
            .iter()
            .filter(|(_, r)| r.expires_at_ms.is_some_and(|t| t <= now_ms))
            .map(|(t, _)| t.clone())
            .collect();
        for t in &gone {
            if let Some(r) = self.by_topic.remove(t) {
                r.msg.release("retain: expired");
            }
        }
        gone.len()
    }

    /// Releases everything (broker shutdown).
    pub fn clear_all(&mut self) {
        for (_, r) in self.by_topic.drain() {
            r.msg.release("retain: shutdown");
        }
    }
}
