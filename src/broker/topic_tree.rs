//! The subscription tree: topic filters with `+` and `#` wildcards, matched
//! against topic names level by level.
//!
//! Matching rules (MQTT 3.1.1 section 4.7, 5.0 section 4.7): `+` matches
//! exactly one level, `#` matches the parent and any number of levels below,
//! and topics starting with `$` are not matched by a filter whose first
//! level is a wildcard [MQTT-4.7.2-1].

use std::collections::HashMap;

#[derive(Debug)]
struct Node<V> {
    children: HashMap<String, Node<V>>,
    /// Subscribers whose filter ends at this node.
    subs: HashMap<String, V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            subs: HashMap::new(),
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty()
    }
}

/// Topic filters to subscribers (by client id), each with a value (the
/// subscription options).
#[derive(Debug)]
pub struct TopicTree<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for TopicTree<V> {
    fn default() -> Self {
        TopicTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> TopicTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (filter, subscriber) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Subscribes `client` to `filter`; returns the options it replaced.
    /// The filter must already be valid (the codec checks wildcard placement).
    pub fn insert(&mut self, filter: &str, client: &str, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.to_string()).or_default();
        }
        let old = node.subs.insert(client.to_string(), value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Unsubscribes `client` from `filter`; returns its options if it was
    /// subscribed. Empty branches are pruned.
    pub fn remove(&mut self, filter: &str, client: &str) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = Self::remove_at(&mut self.root, &levels, client);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn remove_at(node: &mut Node<V>, levels: &[&str], client: &str) -> Option<V> {
        match levels.split_first() {
            None => node.subs.remove(client),
            Some((first, rest)) => {
                let child = node.children.get_mut(*first)?;
                let removed = Self::remove_at(child, rest, client);
                if child.is_empty() {
                    node.children.remove(*first);
                }
                removed
            }
        }
    }

    /// Calls `f(client, value)` for every subscription whose filter matches
    /// `topic`. A client subscribed through several matching filters is
    /// visited once per filter; the caller merges (MQTT allows either).
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&str, &V)) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        Self::match_at(&self.root, &levels, dollar, true, &mut f);
    }

    fn match_at(
        node: &Node<V>,
        levels: &[&str],
        dollar: bool,
        first: bool,
        f: &mut impl FnMut(&str, &V),
    ) {
        let wild_ok = !(dollar && first);
        if wild_ok && let Some(hash) = node.children.get("#") {
            for (c, v) in &hash.subs {
                f(c, v);
            }
        }
        let Some((level, rest)) = levels.split_first() else {
            for (c, v) in &node.subs {
                f(c, v);
            }
            return;
        };
        if let Some(child) = node.children.get(*level) {
            Self::match_at(child, rest, dollar, false, f);
        }
        if wild_ok && let Some(plus) = node.children.get("+") {
            Self::match_at(plus, rest, dollar, false, f);
        }
    }
}

/// True when `filter` matches `topic` (the same rules as the tree, for one
/// pair: the retained store uses it on subscribe).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for fl in filter.split('/') {
        match fl {
            "#" => return true,
            "+" => {
                if t.next().is_none() {
                    return false;
                }
            }
            lit => {
                if t.next() != Some(lit) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn matches(tree: &TopicTree<u8>, topic: &str) -> Vec<String> {
        let mut v = Vec::new();
        tree.for_each_match(topic, |c, _| v.push(c.to_string()));
        v.sort();
        v
    }

    #[test]
    fn wildcards_match_as_the_spec_says() {
        let mut t = TopicTree::new();
        t.insert("a/b", "exact", 0);
        t.insert("a/+", "plus", 0);
        t.insert("a/#", "hash", 0);
        t.insert("#", "all", 0);
        t.insert("+/+/c", "deep", 0);
        assert_eq!(matches(&t, "a/b"), ["all", "exact", "hash", "plus"]);
        assert_eq!(matches(&t, "a"), ["all", "hash"]);
        assert_eq!(matches(&t, "a/x/c"), ["all", "deep", "hash"]);
        assert_eq!(matches(&t, "$SYS/x"), Vec::<String>::new());
        t.insert("$SYS/#", "sys", 0);
        assert_eq!(matches(&t, "$SYS/x"), ["sys"]);
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = TopicTree::new();
        t.insert("a/b/c", "x", 1);
        t.insert("a/b/c", "y", 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove("a/b/c", "x"), Some(1));
        assert_eq!(t.remove("a/b/c", "x"), None);
        assert_eq!(t.remove("a/b/c", "y"), Some(2));
        assert!(t.is_empty());
        assert!(t.root.children.is_empty());
    }

    #[test]
    fn single_pair_matcher_agrees_with_the_tree() {
        let filters = [
            "a/b", "a/+", "a/#", "#", "+", "+/b", "$SYS/#", "+/+/#", "a/+/c",
        ];
        let topics = ["a", "a/b", "a/b/c", "b", "$SYS/x", "a/x/c", "/", "a/"];
        for f in filters {
            let mut t = TopicTree::new();
            t.insert(f, "c", ());
            for topic in topics {
                let mut hit = false;
                t.for_each_match(topic, |_, _| hit = true);
                assert_eq!(hit, filter_matches(f, topic), "{f} vs {topic}");
            }
        }
    }
}
