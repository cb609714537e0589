//! Shared subscriptions, `$share/{group}/{filter}` (MQTT 5 section 4.8.2):
//! each message matching a group's filter goes to one member of the group,
//! chosen round-robin among the members that are connected (any member when
//! none is).
//!
//! The groups hold no message: a delivery to a member is that member's
//! session's, with its own reference, as for any subscriber. What the
//! groups decide is who gets it, also when a member's session ends with
//! deliveries it never had acknowledged: those are handed to the next
//! member (see `Broker::end_session`).

use super::topic_tree::TopicTree;
use crate::codec::SubscriptionOptions;
use crate::codec::topic::SHARE_PREFIX;
use std::collections::HashMap;

/// One shared subscription: its share name and the filter after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    /// The share name.
    pub group: String,
    /// The topic filter the group subscribes to.
    pub filter: String,
}

impl ShareKey {
    /// The group of a `$share/{group}/{filter}` filter; `None` for an
    /// ordinary filter or a malformed shared one (empty or wildcard share
    /// name, no filter: the codec refuses those in MQTT 5, 3.1.1 clients
    /// get a failure reason for them).
    pub fn parse(filter: &str) -> Option<ShareKey> {
        let rest = filter.strip_prefix(SHARE_PREFIX)?;
        let (group, inner) = rest.split_once('/')?;
        if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
            return None;
        }
        Some(ShareKey {
            group: group.to_string(),
            filter: inner.to_string(),
        })
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's client id.
    pub client: String,
    /// Its subscription options (the QoS it was granted).
    pub opts: SubscriptionOptions,
    /// Its subscription identifier.
    pub sub_id: Option<u32>,
}

#[derive(Debug, Default)]
struct Group {
    members: Vec<Member>,
    next: usize,
}

impl Group {
    /// The next member in turn, preferring connected ones, skipping
    /// `except`.
    fn pick(&mut self, online: &impl Fn(&str) -> bool, except: Option<&str>) -> Option<Member> {
        let n = self.members.len();
        let eligible = |m: &Member| except != Some(m.client.as_str());
        let order = (0..n).map(|i| (self.next + i) % n);
        let chosen = order
            .clone()
            .find(|&i| eligible(&self.members[i]) && online(&self.members[i].client))
            .or_else(|| order.clone().find(|&i| eligible(&self.members[i])))?;
        self.next = (chosen + 1) % n;
        self.members.get(chosen).cloned()
    }
}

/// Every shared group of a broker.
#[derive(Debug, Default)]
pub struct SharedSubs {
    /// Filter to group names (the value is the filter again, so that a
    /// match names its group).
    tree: TopicTree<String>,
    groups: HashMap<ShareKey, Group>,
}

impl SharedSubs {
    /// No group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups with at least one member.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there is no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The members of `key`, in turn order.
    pub fn members(&self, key: &ShareKey) -> Vec<String> {
        self.groups
            .get(key)
            .map(|g| g.members.iter().map(|m| m.client.clone()).collect())
            .unwrap_or_default()
    }

    /// `client` joins (or, already a member, updates its options in) the
    /// group; true when it was a member already.
    pub fn join(
        &mut self,
        key: &ShareKey,
        client: &str,
        opts: SubscriptionOptions,
        sub_id: Option<u32>,
    ) -> bool {
        let g = self.groups.entry(key.clone()).or_default();
        if g.members.is_empty() {
            self.tree
                .insert(&key.filter, &key.group, key.filter.clone());
        }
        let member = Member {
            client: client.to_string(),
            opts,
            sub_id,
        };
        match g.members.iter_mut().find(|m| m.client == client) {
            Some(m) => {
                *m = member;
                true
            }
            None => {
                g.members.push(member);
                false
            }
        }
    }

    /// `client` leaves the group; true when it was a member. The last
    /// member out removes the group.
    pub fn leave(&mut self, key: &ShareKey, client: &str) -> bool {
        let Some(g) = self.groups.get_mut(key) else {
            return false;
        };
        let Some(i) = g.members.iter().position(|m| m.client == client) else {
            return false;
        };
        g.members.remove(i);
        if i < g.next {
            g.next -= 1;
        }
        if g.members.is_empty() {
            self.groups.remove(key);
            self.tree.remove(&key.filter, &key.group);
        } else {
            g.next %= g.members.len();
        }
        true
    }

    /// For every group whose filter matches `topic`, the member that gets
    /// this message (one per group).
    pub fn pick_for(
        &mut self,
        topic: &str,
        online: impl Fn(&str) -> bool,
    ) -> Vec<(ShareKey, Member)> {
        let mut keys = Vec::new();
        self.tree.for_each_match(topic, |group, filter| {
            keys.push(ShareKey {
                group: group.to_string(),
                filter: filter.clone(),
            });
        });
        keys.sort();
        keys.into_iter()
            .filter_map(|k| {
                let m = self.groups.get_mut(&k)?.pick(&online, None)?;
                Some((k, m))
            })
            .collect()
    }

    /// The member of `key` that takes over a delivery `from` could not
    /// finish (not `from` itself).
    pub fn pick_other(
        &mut self,
        key: &ShareKey,
        from: &str,
        online: impl Fn(&str) -> bool,
    ) -> Option<Member> {
        self.groups.get_mut(key)?.pick(&online, Some(from))
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn key(g: &str, f: &str) -> ShareKey {
        ShareKey {
            group: g.into(),
            filter: f.into(),
        }
    }

    #[test]
    fn parses_share_name_and_filter() {
        assert_eq!(ShareKey::parse("$share/g/a/+"), Some(key("g", "a/+")));
        assert_eq!(ShareKey::parse("a/b"), None);
        assert_eq!(ShareKey::parse("$share//a"), None);
        assert_eq!(ShareKey::parse("$share/g+/a"), None);
        assert_eq!(ShareKey::parse("$share/g"), None);
        assert_eq!(ShareKey::parse("$share/g/"), None);
    }

    #[test]
    fn round_robin_prefers_connected_members_and_skips_the_departed() {
        let mut s = SharedSubs::new();
        let k = key("g", "t/#");
        let o = SubscriptionOptions::default();
        s.join(&k, "a", o, None);
        s.join(&k, "b", o, None);
        s.join(&k, "c", o, None);
        let all = |_: &str| true;
        let who = |s: &mut SharedSubs, online: &dyn Fn(&str) -> bool| {
            s.pick_for("t/x", online)
                .into_iter()
                .map(|(_, m)| m.client)
                .collect::<Vec<_>>()
        };
        assert_eq!(who(&mut s, &all), ["a"]);
        assert_eq!(who(&mut s, &all), ["b"]);
        assert_eq!(who(&mut s, &|c| c != "c"), ["a"]);
        assert_eq!(who(&mut s, &all), ["b"]);
        assert_eq!(s.pick_for("u", all), vec![]);
        // Nobody else connected: the next one in turn that is not leaving.
        assert_eq!(
            s.pick_other(&k, "a", |c| c == "a").map(|m| m.client),
            Some("c".to_string())
        );
        assert!(s.leave(&k, "a") && s.leave(&k, "b") && s.leave(&k, "c"));
        assert!(s.is_empty());
        assert_eq!(s.pick_for("t/x", all), vec![]);
    }
}
