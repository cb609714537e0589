//! A bounded map of things recently gone (freed messages, freed aios), by
//! address, so that a late use of a stale pointer still finds its story.

use std::collections::{HashMap, VecDeque};

/// Keeps the last `capacity` entries; an address inserted again replaces
/// its entry.
pub(crate) struct Recent<V> {
    map: HashMap<usize, (u64, V)>,
    order: VecDeque<(usize, u64)>,
    capacity: usize,
    stamp: u64,
}

impl<V> Recent<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            stamp: 0,
        }
    }

    pub(crate) fn insert(&mut self, addr: usize, v: V) {
        self.stamp += 1;
        self.map.insert(addr, (self.stamp, v));
        self.order.push_back((addr, self.stamp));
        while self.map.len() > self.capacity {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(s, _)| *s == stamp) {
                self.map.remove(&old);
            }
        }
        // Stale order entries (of replaced or removed addresses) are
        // dropped as they reach the front; bound them too.
        while self.order.len() > 2 * self.capacity.max(1) {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(s, _)| *s == stamp) {
                self.order.push_back((old, stamp));
            }
        }
    }

    pub(crate) fn get(&self, addr: usize) -> Option<&V> {
        self.map.get(&addr).map(|(_, v)| v)
    }

    pub(crate) fn remove(&mut self, addr: usize) -> Option<V> {
        self.map.remove(&addr).map(|(_, v)| v)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_forgets_the_oldest() {
        let mut r = Recent::new(2);
        r.insert(1, "a");
        r.insert(2, "b");
        r.insert(1, "a2");
        r.insert(3, "c");
        assert_eq!(r.get(1), Some(&"a2"));
        assert_eq!(r.get(2), None);
        assert_eq!(r.get(3), Some(&"c"));
        assert_eq!(r.remove(3), Some("c"));
        assert_eq!(r.len(), 1);
        for i in 0..1000 {
            r.insert(i % 7, "x");
        }
        assert!(r.len() <= 2);
        assert!(r.order.len() <= 4);
    }
}
