//! The reference model: what MQTT promises, in terms of what a caller can
//! observe (acknowledgements and deliveries), independent of how our
//! broker keeps its state.
//!
//! A promise ("obligation") is only made from facts the caller has seen:
//! a subscription counts once its SUBACK arrived and before the next
//! UNSUBSCRIBE or session end; a publish reaches a subscriber when its
//! acknowledgement arrived (or, QoS 0, its write completed) and the
//! subscription was confirmed before the publish was sent. A retained
//! message counts when no other retained publish to its topic overlapped
//! it. Whatever is uncertain (a request that timed out, was cancelled or
//! lost its connection) weakens the model, never strengthens it.
//!
//! Promises: QoS 1/2 deliveries to a session that outlives every drop
//! (persistent, no clean start since, no broker restart) arrive at least
//! once once the client is back; QoS 0 ones arrive if the subscriber's
//! connection never dropped. A QoS 2 (or QoS 0) message is never handed
//! to one client kernel twice, retained re-deliveries aside. A will is
//! published when its connection ends abruptly, never while it is up.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A link as the model knows it.
#[derive(Debug)]
struct LinkModel {
    slot: usize,
    persistent: bool,
    will: Option<String>,
    connected: bool,
    open: bool,
}

/// The broker-side session of one client id, as far as it is certain.
#[derive(Debug, Default)]
struct SlotModel {
    /// Bumped whenever the session may have ended.
    session_gen: u64,
    /// Confirmed subscriptions: filter to (QoS, token).
    subs: BTreeMap<String, (u8, u64)>,
    /// Requests sent per filter: a SUBACK confirms only if no later
    /// SUBSCRIBE or UNSUBSCRIBE for the filter was sent after its own.
    requests: BTreeMap<String, u64>,
    /// Every filter ever requested (deliveries must match one).
    ever_filters: BTreeSet<String>,
    /// The current connection.
    link: Option<usize>,
}

#[derive(Debug, Clone)]
enum Retained {
    Known {
        payload: String,
        qos: u8,
        token: u64,
    },
    None,
    Unknown,
}

#[derive(Debug)]
struct Obligation {
    slot: usize,
    payload: String,
    qos: u8,
    base: u32,
    session_gen: u64,
    /// QoS 0: the connection that must stay up.
    link: Option<usize>,
    why: &'static str,
}

/// One subscriber of a publish as seen when it was sent.
#[derive(Debug, Clone)]
struct Target {
    slot: usize,
    subs: Vec<(String, u8, u64)>,
    /// Deliveries of the payload seen before it was sent (`None`: take
    /// the count when the promise is made).
    base: Option<u32>,
    link: Option<usize>,
}

/// What a sent PUBLISH saw, for when its outcome is known.
#[derive(Debug, Clone)]
pub struct PubSnap {
    id: u64,
    topic: String,
    qos: u8,
    retain: bool,
    payload: String,
    targets: Vec<Target>,
}

/// What a sent SUBSCRIBE saw.
#[derive(Debug, Clone)]
pub struct SubSnap {
    slot: usize,
    filter: String,
    qos: u8,
    session_gen: u64,
    request: u64,
    retained: Vec<(String, String, u8, u64, u32)>,
    link: Option<usize>,
}

/// The reference model of one run.
#[derive(Debug, Default)]
pub struct Model {
    slots: Vec<SlotModel>,
    links: HashMap<usize, LinkModel>,
    retained: BTreeMap<String, Retained>,
    /// Retained publishes in flight per topic: (publish id, alone so far).
    retained_inflight: BTreeMap<String, Vec<(u64, bool)>>,
    next_token: u64,
    obligations: Vec<Obligation>,
    /// Payload to (topic, QoS) of everything published (wills included).
    published: HashMap<String, (String, u8)>,
    /// Will payload to the connections whose CONNECT carried it.
    wills: HashMap<String, Vec<usize>>,
    delivered: HashMap<(usize, String), u32>,
    once: HashMap<(usize, u32, String), u32>,
    /// Per slot, filters whose UNSUBACK arrived and that were not
    /// subscribed again since.
    unsubscribed: HashMap<usize, BTreeSet<String>>,
    /// Per payload, what each slot had unsubscribed from when it was sent.
    sent_after: HashMap<String, Vec<(usize, BTreeSet<String>)>>,
}

/// Whether `filter` matches `topic` (MQTT wildcards, no `$` topics here).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Model {
    /// A model with `slots` client ids.
    pub fn new(slots: usize) -> Self {
        Model {
            slots: (0..slots).map(|_| SlotModel::default()).collect(),
            ..Default::default()
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// The session of `slot` may have ended: nothing about it is certain.
    fn reset(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.session_gen += 1;
        s.subs.clear();
    }

    fn count(&self, slot: usize, payload: &str) -> u32 {
        self.delivered
            .get(&(slot, payload.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The slot's current connection if the broker surely serves the
    /// session on it.
    fn stable_link(&self, slot: usize) -> Option<usize> {
        let l = self.slots[slot].link?;
        // Another open connection of the same id may still take over.
        let rival = self
            .links
            .iter()
            .any(|(id, m)| *id != l && m.slot == slot && m.open);
        self.links
            .get(&l)
            .filter(|m| m.open && m.connected && !rival)
            .map(|_| l)
    }

    /// A CONNECT was queued on a new `link` for `slot`.
    pub fn connect_sent(
        &mut self,
        slot: usize,
        link: usize,
        persistent: bool,
        will: Option<String>,
    ) {
        if !persistent {
            self.reset(slot);
        }
        if let Some(w) = &will {
            self.published.insert(w.clone(), (format!("w/c{slot}"), 1));
            self.wills.entry(w.clone()).or_default().push(link);
        }
        self.links.insert(
            link,
            LinkModel {
                slot,
                persistent,
                will,
                connected: false,
                open: true,
            },
        );
        self.slots[slot].link = Some(link);
    }

    /// The CONNACK for `link` arrived.
    pub fn connack(&mut self, link: usize) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.connected = true;
        let (slot, persistent) = (l.slot, l.persistent);
        if !persistent {
            // A clean start discards the session when the broker reads it,
            // which may be after a newer connection of the same id was
            // served (takeover goes by arrival, not by who called first).
            self.reset(slot);
        }
    }

    /// The connection `link` ended (abruptly: no DISCONNECT is ever sent).
    pub fn link_closed(&mut self, link: usize) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.open = false;
        let (slot, persistent, connected) = (l.slot, l.persistent, l.connected);
        let will = l.will.take();
        if !persistent {
            self.reset(slot);
        }
        let current = self.slots[slot].link == Some(link);
        if let (Some(w), true, true) = (will, current, connected) {
            // The broker publishes the will as the connection goes.
            let topic = format!("w/c{slot}");
            let targets = self.targets(&topic);
            self.oblige(&targets, &w, 1, "will on abrupt close");
        }
    }

    /// The broker restarted: no session and no retained message survives.
    pub fn broker_restart(&mut self) {
        for s in 0..self.slots.len() {
            self.reset(s);
        }
        let topics: Vec<String> = self.retained.keys().cloned().collect();
        for t in topics {
            let busy = self
                .retained_inflight
                .get(&t)
                .is_some_and(|v| !v.is_empty());
            self.retained.insert(
                t,
                if busy {
                    Retained::Unknown
                } else {
                    Retained::None
                },
            );
        }
    }

    fn targets(&self, topic: &str) -> Vec<Target> {
        let mut out = Vec::new();
        for (slot, s) in self.slots.iter().enumerate() {
            let subs: Vec<(String, u8, u64)> = s
                .subs
                .iter()
                .filter(|(f, _)| matches(f, topic))
                .map(|(f, (q, t))| (f.clone(), *q, *t))
                .collect();
            if !subs.is_empty() {
                out.push(Target {
                    slot,
                    subs,
                    base: None,
                    link: self.stable_link(slot),
                });
            }
        }
        out
    }

    fn oblige(&mut self, targets: &[Target], payload: &str, pub_qos: u8, why: &'static str) {
        for t in targets {
            let s = &self.slots[t.slot];
            let qos = t
                .subs
                .iter()
                .filter(|(f, _, tok)| s.subs.get(f).is_some_and(|(_, cur)| cur == tok))
                .map(|(_, q, _)| *q)
                .max();
            let Some(sub_qos) = qos else { continue };
            let base = t.base.unwrap_or_else(|| self.count(t.slot, payload));
            self.obligations.push(Obligation {
                slot: t.slot,
                payload: payload.to_string(),
                qos: sub_qos.min(pub_qos),
                base,
                session_gen: s.session_gen,
                link: t.link,
                why,
            });
        }
    }

    /// A SUBSCRIBE was queued.
    pub fn subscribe_sent(&mut self, slot: usize, filter: &str, qos: u8) -> SubSnap {
        let s = &mut self.slots[slot];
        // Until the SUBACK the broker may have either QoS.
        s.subs.remove(filter);
        s.ever_filters.insert(filter.to_string());
        if let Some(u) = self.unsubscribed.get_mut(&slot) {
            u.remove(filter);
        }
        let request = {
            let n = s.requests.entry(filter.to_string()).or_default();
            *n += 1;
            *n
        };
        let retained = self
            .retained
            .iter()
            .filter(|(t, _)| matches(filter, t))
            .filter_map(|(t, r)| match r {
                Retained::Known {
                    payload,
                    qos,
                    token,
                } => Some((
                    t.clone(),
                    payload.clone(),
                    *qos,
                    *token,
                    self.count(slot, payload),
                )),
                _ => None,
            })
            .collect();
        SubSnap {
            slot,
            filter: filter.to_string(),
            qos,
            session_gen: self.slots[slot].session_gen,
            request,
            retained,
            link: self.stable_link(slot),
        }
    }

    /// The SUBSCRIBE's operation finished; `ok` when its SUBACK arrived.
    pub fn subscribe_done(&mut self, snap: SubSnap, ok: bool) {
        let s = &self.slots[snap.slot];
        let latest = s.requests.get(&snap.filter) == Some(&snap.request);
        if !ok || !latest || s.session_gen != snap.session_gen {
            return;
        }
        let token = self.token();
        let slot = snap.slot;
        self.slots[slot]
            .subs
            .insert(snap.filter.clone(), (snap.qos, token));
        for (topic, payload, rqos, rtoken, base) in snap.retained {
            let still = matches!(self.retained.get(&topic), Some(Retained::Known { token, .. }) if *token == rtoken);
            if still {
                self.obligations.push(Obligation {
                    slot,
                    payload,
                    qos: rqos.min(snap.qos),
                    base,
                    session_gen: snap.session_gen,
                    link: snap.link,
                    why: "retained message on subscribe",
                });
            }
        }
    }

    /// An UNSUBSCRIBE was queued: the subscription is no longer certain.
    pub fn unsubscribe_sent(&mut self, slot: usize, filter: &str) {
        let s = &mut self.slots[slot];
        s.subs.remove(filter);
        *s.requests.entry(filter.to_string()).or_default() += 1;
    }

    /// A PUBLISH was queued (or handed to the outbox for QoS 0).
    pub fn publish_sent(
        &mut self,
        id: u64,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: &str,
    ) -> PubSnap {
        self.published
            .insert(payload.to_string(), (topic.to_string(), qos));
        let gone = self
            .unsubscribed
            .iter()
            .map(|(slot, f)| (*slot, f.clone()))
            .collect();
        self.sent_after.insert(payload.to_string(), gone);
        let mut targets = self.targets(topic);
        for t in &mut targets {
            // Deliveries before the send cannot be this one's.
            t.base = Some(self.count(t.slot, payload));
        }
        if retain {
            self.retained.insert(topic.to_string(), Retained::Unknown);
            let v = self.retained_inflight.entry(topic.to_string()).or_default();
            let alone = v.is_empty();
            for e in v.iter_mut() {
                e.1 = false;
            }
            v.push((id, alone));
        }
        PubSnap {
            id,
            topic: topic.to_string(),
            qos,
            retain,
            payload: payload.to_string(),
            targets,
        }
    }

    /// The PUBLISH's operation finished; `ok` when it was acknowledged
    /// (QoS 0: written).
    pub fn publish_done(&mut self, snap: PubSnap, ok: bool) {
        // QoS 0 has no acknowledgement: a completed write may still be
        // discarded by a broker closing the connection (takeover).
        let ok = ok && snap.qos > 0;
        if snap.retain {
            let v = self
                .retained_inflight
                .entry(snap.topic.clone())
                .or_default();
            let alone = v.iter().find(|e| e.0 == snap.id).is_some_and(|e| e.1);
            v.retain(|e| e.0 != snap.id);
            if ok && alone {
                let token = self.token();
                self.retained.insert(
                    snap.topic.clone(),
                    Retained::Known {
                        payload: snap.payload.clone(),
                        qos: snap.qos,
                        token,
                    },
                );
            }
        }
        if ok {
            self.oblige(
                &snap.targets,
                &snap.payload,
                snap.qos,
                "publish acknowledged",
            );
        }
    }

    /// `slot`'s kernel number `kernel` received a message.
    #[allow(clippy::too_many_arguments)]
    pub fn delivered(
        &mut self,
        slot: usize,
        kernel: u32,
        topic: &str,
        payload: &str,
        qos: u8,
        retain: bool,
    ) -> Result<(), String> {
        let Some((pub_topic, pub_qos)) = self.published.get(payload).cloned() else {
            return Err(format!(
                "c{slot} received {payload:?} on {topic}, which nobody published"
            ));
        };
        if pub_topic != topic {
            return Err(format!(
                "c{slot} received {payload:?} on {topic}; it was published on {pub_topic}"
            ));
        }
        if qos > pub_qos {
            return Err(format!(
                "c{slot} received {payload:?} at QoS {qos}; it was published at QoS {pub_qos}"
            ));
        }
        if !self.slots[slot]
            .ever_filters
            .iter()
            .any(|f| matches(f, topic))
        {
            return Err(format!(
                "c{slot} received {payload:?} on {topic} without ever subscribing to it"
            ));
        }
        self.after_unsuback(slot, topic, payload)?;
        if let Some(links) = self.wills.get(payload) {
            let all_up = links.iter().all(|link| {
                let l = &self.links[link];
                l.open && self.slots[l.slot].link == Some(*link)
            });
            if all_up {
                return Err(format!(
                    "c{slot} received the will {payload:?} while its connection is up"
                ));
            }
        }
        *self
            .delivered
            .entry((slot, payload.to_string()))
            .or_default() += 1;
        if !retain && (qos == 2 || pub_qos == 0) {
            let n = self
                .once
                .entry((slot, kernel, payload.to_string()))
                .or_default();
            *n += 1;
            if *n > 1 {
                return Err(format!(
                    "c{slot} received {payload:?} (QoS {qos}, published at QoS {pub_qos}) {n} times: must be at most once"
                ));
            }
        }
        Ok(())
    }

    /// At quiescence (everything written, persistent clients back): every
    /// promise still standing was kept.
    pub fn check_promises(&self) -> Result<(), String> {
        for o in &self.obligations {
            if self.slots[o.slot].session_gen != o.session_gen {
                continue;
            }
            if o.qos == 0 && (o.link.is_none() || o.link != self.stable_link(o.slot)) {
                continue;
            }
            if self.count(o.slot, &o.payload) <= o.base {
                return Err(format!(
                    "c{} never received {:?} at QoS {} ({}), though its session survived",
                    o.slot, o.payload, o.qos, o.why
                ));
            }
        }
        Ok(())
    }
}

impl Model {
    /// The UNSUBSCRIBE of `slot` from `filter` finished; `ok` when its
    /// UNSUBACK arrived.
    pub fn unsubscribe_done(&mut self, slot: usize, filter: &str, ok: bool) {
        if ok {
            self.unsubscribed
                .entry(slot)
                .or_default()
                .insert(filter.to_string());
        }
    }

    /// No delivery after UNSUBACK [MQTT-3.10.4-2]: a message sent after
    /// `slot` saw the UNSUBACK of every filter of its that matches the
    /// topic (and subscribed to none of them again since) was routed after
    /// the broker removed those subscriptions. Messages the broker had
    /// buffered before, which it may still deliver, were all sent earlier.
    fn after_unsuback(&self, slot: usize, topic: &str, payload: &str) -> Result<(), String> {
        let Some(at_send) = self.sent_after.get(payload) else {
            return Ok(());
        };
        let Some((_, gone)) = at_send.iter().find(|(s, _)| *s == slot) else {
            return Ok(());
        };
        let now = self.unsubscribed.get(&slot);
        let mut matching = self.slots[slot]
            .ever_filters
            .iter()
            .filter(|f| matches(f, topic))
            .peekable();
        if matching.peek().is_none() {
            return Ok(());
        }
        let all_gone = matching.all(|f| gone.contains(f) && now.is_some_and(|n| n.contains(f)));
        if all_gone {
            return Err(format!(
                "c{slot} received {payload:?} on {topic}, published after the UNSUBACK of every filter of its that matches"
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod unsuback_tests {
    use super::*;

    fn subscribed(m: &mut Model, slot: usize, filter: &str) {
        let snap = m.subscribe_sent(slot, filter, 0);
        m.subscribe_done(snap, true);
    }

    #[test]
    fn a_message_sent_after_the_unsuback_must_not_arrive() {
        let mut m = Model::new(2);
        subscribed(&mut m, 0, "t/#");
        m.unsubscribe_sent(0, "t/#");
        m.unsubscribe_done(0, "t/#", true);
        m.publish_sent(1, "t/a", 0, false, "late");
        let r = m.delivered(0, 1, "t/a", "late", 0, false);
        assert!(r.is_err_and(|e| e.contains("after the UNSUBACK")));
    }

    #[test]
    fn earlier_messages_another_filter_or_a_new_subscription_may_arrive() {
        let mut m = Model::new(2);
        subscribed(&mut m, 0, "t/#");
        m.publish_sent(1, "t/a", 0, false, "early");
        m.unsubscribe_sent(0, "t/#");
        m.unsubscribe_done(0, "t/#", true);
        assert_eq!(m.delivered(0, 1, "t/a", "early", 0, false), Ok(()));
        subscribed(&mut m, 0, "t/a");
        m.publish_sent(2, "t/a", 0, false, "again");
        assert_eq!(m.delivered(0, 1, "t/a", "again", 0, false), Ok(()));
        // An UNSUBACK that did not arrive proves nothing.
        m.unsubscribe_done(0, "t/a", false);
        m.publish_sent(3, "t/a", 0, false, "unsure");
        assert_eq!(m.delivered(0, 1, "t/a", "unsure", 0, false), Ok(()));
    }
}
