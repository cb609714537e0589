//! The retained store: one message per topic, holding its own reference.
//!
//! Ownership: the store keeps one reference per retained message; every
//! delivery to a new subscriber takes another (NanoMQ 485 delivered the
//! store's own pointer instead, so the first write freed the store's copy).

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
    pub fn put(&mut self, topic: &str, msg: MsgRef, meta: StdArc<Publish>) {
        if let Some(old) = self
            .by_topic
            .insert(topic.to_string(), Retained { msg, meta })
        {
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

    /// Calls `f` for every retained message whose topic matches `filter`.
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&Retained)) {
        for (topic, r) in &self.by_topic {
            if filter_matches(filter, topic) {
                f(r);
            }
        }
    }

    /// Releases everything (broker shutdown).
    pub fn clear_all(&mut self) {
        for (_, r) in self.by_topic.drain() {
            r.msg.release("retain: shutdown");
        }
    }
}
