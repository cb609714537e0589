//! Outbound topic aliases (MQTT 5 section 3.3.2.3.4): one table per
//! connection, filled by the writer in wire order.
//!
//! Ownership: the table belongs to the connection it was made for. Every
//! delivery queued on that connection carries a handle to it, so it lives
//! exactly as long as the connection plus whatever is still queued on it;
//! a new connection of the same client always starts with an empty table
//! (NanoNNG b51159a68 moved its inbound table from a global keyed by client
//! id onto the connection for the same reason). Aliases are assigned when a
//! PUBLISH is encoded, not when it is queued: a queued delivery that is
//! dropped before it is written (expiry, close) must not leave the receiver
//! knowing an alias it never saw.

use crate::sync::{Arc, Mutex, lock};
use std::collections::HashMap;

/// How one PUBLISH names its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// The topic in full, no alias (the table is full or disabled).
    Topic,
    /// The topic in full plus a new alias the receiver now learns.
    Assign(u16),
    /// An empty topic and an alias the receiver already knows.
    Reuse(u16),
}

/// One connection's outbound aliases.
#[derive(Debug)]
pub struct OutboundAliases {
    /// The receiver's Topic Alias Maximum.
    max: u16,
    by_topic: HashMap<String, u16>,
}

impl OutboundAliases {
    /// A table for a receiver that accepts `max` aliases (0: none).
    pub fn new(max: u16) -> Self {
        OutboundAliases {
            max,
            by_topic: HashMap::new(),
        }
    }

    /// How the next PUBLISH to `topic` names it. A topic keeps the alias it
    /// got first; once `max` topics have one, further topics go in full
    /// (never a reassignment: a stale alias in flight would misroute).
    pub fn name(&mut self, topic: &str) -> AliasUse {
        if let Some(a) = self.by_topic.get(topic) {
            return AliasUse::Reuse(*a);
        }
        let next = self.by_topic.len() + 1;
        match u16::try_from(next) {
            Ok(a) if a <= self.max => {
                self.by_topic.insert(topic.to_string(), a);
                AliasUse::Assign(a)
            }
            _ => AliasUse::Topic,
        }
    }

    /// Aliases assigned so far.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// True when none was assigned.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

/// A shared handle to one connection's table (the connection and each
/// delivery queued on it hold one).
#[derive(Debug, Clone)]
pub struct AliasTable(Arc<Mutex<OutboundAliases>>);

impl AliasTable {
    /// A table for a receiver with Topic Alias Maximum `max`; `None` when
    /// it accepts none.
    pub fn for_receiver(max: Option<u16>) -> Option<AliasTable> {
        max.filter(|m| *m > 0)
            .map(|m| AliasTable(Arc::new(Mutex::new(OutboundAliases::new(m)))))
    }

    /// How the PUBLISH being written names `topic`.
    pub fn name(&self, topic: &str) -> AliasUse {
        lock(&self.0).name(topic)
    }

    /// Aliases assigned so far.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// True when none was assigned.
    pub fn is_empty(&self) -> bool {
        lock(&self.0).is_empty()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn first_use_assigns_then_reuses_and_a_full_table_sends_topics() {
        let mut t = OutboundAliases::new(2);
        assert_eq!(t.name("a"), AliasUse::Assign(1));
        assert_eq!(t.name("a"), AliasUse::Reuse(1));
        assert_eq!(t.name("b"), AliasUse::Assign(2));
        assert_eq!(t.name("c"), AliasUse::Topic);
        assert_eq!(t.name("b"), AliasUse::Reuse(2));
        assert_eq!(t.len(), 2);
        assert!(!t.is_empty());
    }

    #[test]
    fn a_receiver_without_aliases_gets_no_table() {
        assert!(AliasTable::for_receiver(None).is_none());
        assert!(AliasTable::for_receiver(Some(0)).is_none());
        let table = AliasTable::for_receiver(Some(3)).unwrap();
        assert!(table.is_empty());
        assert_eq!(table.name("a"), AliasUse::Assign(1));
        assert_eq!((table.len(), table.is_empty()), (1, false));
    }
}
