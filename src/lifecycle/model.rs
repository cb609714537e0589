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
//!
//! MQTT 5 on the virtual clock: a delayed will is published once its delay
//! passed or its session ended, whichever came first, and never once the
//! client was back in time (its CONNACK seen before either); a session with
//! a short expiry may end a moment after its connection; a message with an
//! expiry may be gone once that much time passed, and is never delivered
//! to a session that was away from before it was published until after it
//! surely expired. A shared group (`$share/{group}/{filter}`) is one
//! subscriber: a QoS 1/2 message acknowledged while all its members were
//! certain reaches some member, as long as one of those members is still
//! subscribed at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
    /// Shared groups matching the topic, with their members then.
    groups: Vec<(String, Vec<Member>)>,
}

/// A member of a shared group: slot, granted QoS, subscription token,
/// session generation.
type Member = (usize, u8, u64, u64);

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
    /// The MQTT 5 additions: the virtual clock, delayed wills, short
    /// sessions, expiring messages, shared groups.
    v5: V5Model,
}

/// What a link's CONNECT asked for beyond the 3.1.1 basics.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    /// The session ends this long after its connection (MQTT 5 Session
    /// Expiry Interval); `None`: it does not expire (or ends with it).
    pub expiry_ms: Option<u64>,
    /// The will waits this long (MQTT 5 Will Delay Interval).
    pub will_delay_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct PendingWill {
    slot: usize,
    payload: String,
    /// When its delay passes or its session ends, whichever is first.
    due_ms: u64,
}

#[derive(Debug, Clone)]
struct GroupObligation {
    filter: String,
    /// Members at publish time: (slot, subscription token, session gen).
    members: Vec<(usize, u64, u64)>,
    payload: String,
    /// QoS 0 subscriptions to the group so far (a QoS 0 member may take a
    /// hand-over and lose it with its connection).
    qos0_epoch: u64,
}

#[derive(Debug, Default)]
struct V5Model {
    now_ms: u64,
    links: HashMap<usize, SessionOptions>,
    /// Delayed wills whose connection ended, not yet due, no reconnect.
    pending_wills: Vec<PendingWill>,
    /// Delayed wills whose client sent a CONNECT before they were due: the
    /// broker may or may not read it in time.
    racing_wills: Vec<PendingWill>,
    /// Wills that must never be published: the client was back in time.
    cancelled_wills: HashSet<String>,
    /// Sessions that end at this time unless their client is back first.
    session_deadlines: HashMap<usize, u64>,
    /// Expiring payloads: (published at, expiry) in ms.
    expiring: HashMap<String, (u64, u64)>,
    /// The latest time the broker can have received each expiring
    /// payload (its acknowledgement arrived).
    acked_at: HashMap<String, u64>,
    /// Since when a slot has had no open connection.
    offline_since: HashMap<usize, u64>,
    /// A slot's current connection was opened (CONNECT sent) at this time,
    /// and its slot had been away since (`offline_since` then).
    returned: HashMap<usize, (u64, u64)>,
    groups: Vec<GroupObligation>,
    qos0_epoch: HashMap<String, u64>,
    /// QoS 2 payloads: the publisher's slot and its session generation
    /// when the PUBLISH was sent.
    qos2_from: HashMap<String, (usize, u64)>,
    /// QoS 2 exchanges a slot's session may still hold open (no PUBCOMP
    /// seen): payload to the client kernel that sent it. Kept across a
    /// session that may have ended: the broker may still have it.
    qos2_open: HashMap<usize, HashMap<String, u32>>,
    /// The request number of each slot's latest UNSUBSCRIBE per filter.
    unsubscribes: HashMap<(usize, String), u64>,
}

/// The filter of a `$share/{group}/{filter}` subscription.
fn shared_inner(filter: &str) -> Option<&str> {
    filter
        .strip_prefix("$share/")?
        .split_once('/')
        .map(|(_, f)| f)
}

/// Whether `filter` matches `topic` (MQTT wildcards, no `$` topics here; a
/// shared subscription matches what its filter matches).
pub fn matches(filter: &str, topic: &str) -> bool {
    let filter = shared_inner(filter).unwrap_or(filter);
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
        let now = self.v5.now_ms;
        if let Some(since) = self.v5.offline_since.remove(&slot) {
            self.v5.returned.insert(slot, (now, since));
        } else {
            self.v5.returned.remove(&slot);
        }
        // A will waiting for its delay races this CONNECT to the broker.
        let (racing, still): (Vec<PendingWill>, Vec<PendingWill>) = self
            .v5
            .pending_wills
            .drain(..)
            .partition(|w| w.slot == slot);
        self.v5.pending_wills = still;
        self.v5.racing_wills.extend(racing);
    }

    /// What `link`'s CONNECT asked for in MQTT 5 (call after
    /// [`Model::connect_sent`]).
    pub fn session_options(&mut self, link: usize, opts: SessionOptions) {
        self.v5.links.insert(link, opts);
    }

    /// The clock moved on by `ms`; the broker's timer ran.
    pub fn time_passes(&mut self, ms: u64) {
        self.v5.now_ms += ms;
        let now = self.v5.now_ms;
        let (due, waiting): (Vec<PendingWill>, Vec<PendingWill>) = self
            .v5
            .pending_wills
            .drain(..)
            .partition(|w| w.due_ms <= now);
        self.v5.pending_wills = waiting;
        for w in due {
            let topic = format!("w/c{}", w.slot);
            let targets = self.targets(&topic);
            self.oblige(
                &targets,
                &w.payload,
                1,
                "delayed will (delay passed or session ended)",
            );
        }
        // A racing will that came due may have been published: no promise.
        self.v5.racing_wills.retain(|w| w.due_ms > now);
        let ended: Vec<usize> = self
            .v5
            .session_deadlines
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| *s)
            .collect();
        for slot in ended {
            self.v5.session_deadlines.remove(&slot);
            self.reset(slot);
        }
    }

    /// Publishes to `payload` carry a Message Expiry Interval of
    /// `expiry_ms` (call after [`Model::publish_sent`]).
    pub fn publish_expires(&mut self, payload: &str, expiry_ms: u64) {
        self.v5
            .expiring
            .insert(payload.to_string(), (self.v5.now_ms, expiry_ms));
    }

    /// `slot` sent the QoS 2 PUBLISH of `payload` (call after
    /// [`Model::publish_sent`]). If its session ends before the exchange
    /// completes, the broker forgets the packet id and the resend is a new
    /// message: it may then be routed twice.
    ///
    /// `kernel` is the client kernel sending it: a new kernel resuming the
    /// session does not know the packet ids an older one left open, and its
    /// PUBLISH under such an id is, to the broker, a resend [MQTT-4.3.3]:
    /// acknowledged, not routed. No promise is made for it then.
    pub fn qos2_sent(&mut self, slot: usize, kernel: u32, payload: &str) {
        let gen_ = self.slots[slot].session_gen;
        self.v5.qos2_from.insert(payload.to_string(), (slot, gen_));
        self.v5
            .qos2_open
            .entry(slot)
            .or_default()
            .insert(payload.to_string(), kernel);
    }

    /// True when `payload` may have expired by now.
    fn may_have_expired(&self, payload: &str) -> bool {
        self.v5
            .expiring
            .get(payload)
            .is_some_and(|(at, exp)| self.v5.now_ms >= at + exp)
    }

    /// A delivered message carried `interval` as its Message Expiry
    /// Interval: it must be there for an expiring message, and not more
    /// than the publisher's.
    pub fn check_expiry_interval(
        &self,
        slot: usize,
        payload: &str,
        interval: Option<u32>,
    ) -> Result<(), String> {
        let Some((_, exp)) = self.v5.expiring.get(payload) else {
            return Ok(());
        };
        let max = u32::try_from(exp / 1000).unwrap_or(u32::MAX);
        match interval {
            Some(i) if (1..=max).contains(&i) => Ok(()),
            other => Err(format!(
                "c{slot} received {payload:?} with Message Expiry Interval {other:?}; it was published with {max} s"
            )),
        }
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
        // The broker read this CONNECT before any racing will came due: it
        // was cancelled [MQTT-3.1.3-9]. A session about to expire was
        // resumed (or, clean start, ended already).
        let (cancelled, others): (Vec<PendingWill>, Vec<PendingWill>) =
            self.v5.racing_wills.drain(..).partition(|w| w.slot == slot);
        self.v5.racing_wills = others;
        // (A reconnect carrying the same will may publish it itself: then
        // a delivery does not tell which one it was.)
        let own = self.links.get(&link).and_then(|l| l.will.clone());
        self.v5.cancelled_wills.extend(
            cancelled
                .into_iter()
                .map(|w| w.payload)
                .filter(|p| own.as_ref() != Some(p)),
        );
        self.v5.session_deadlines.remove(&slot);
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
        let opts = self.v5.links.get(&link).copied().unwrap_or_default();
        let now = self.v5.now_ms;
        if current && !self.links.values().any(|m| m.slot == slot && m.open) {
            self.v5.offline_since.insert(slot, now);
        }
        if let (true, true, Some(exp)) = (current, persistent, opts.expiry_ms) {
            self.v5.session_deadlines.insert(slot, now + exp);
        }
        match (will, current, connected) {
            (Some(w), true, true) if persistent && opts.will_delay_ms.is_some() => {
                // The will waits for its delay or the session's end.
                let delay = opts.will_delay_ms.unwrap_or_default();
                let due = now + opts.expiry_ms.map_or(delay, |e| e.min(delay));
                self.v5.pending_wills.push(PendingWill {
                    slot,
                    payload: w,
                    due_ms: due,
                });
            }
            (Some(w), true, true) => {
                // The broker publishes the will as the connection goes.
                let topic = format!("w/c{slot}");
                let targets = self.targets(&topic);
                self.oblige(&targets, &w, 1, "will on abrupt close");
            }
            _ => {}
        }
    }

    /// The broker restarted: no session and no retained message survives.
    pub fn broker_restart(&mut self) {
        for s in 0..self.slots.len() {
            self.reset(s);
        }
        // Waiting wills go with the broker (released, never published).
        self.v5.pending_wills.clear();
        self.v5.racing_wills.clear();
        self.v5.session_deadlines.clear();
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
                .filter(|(f, _)| shared_inner(f).is_none() && matches(f, topic))
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
        if shared_inner(filter).is_some() && qos == 0 {
            *self.v5.qos0_epoch.entry(filter.to_string()).or_default() += 1;
        }
        let expiring = &self.v5.expiring;
        let retained = self
            .retained
            .iter()
            // No retained message on a shared subscription (MQTT 5 4.8.2).
            .filter(|_| shared_inner(filter).is_none())
            .filter(|(t, _)| matches(filter, t))
            // One that may expire before the SUBSCRIBE is read is no
            // promise.
            .filter(|(_, r)| match r {
                Retained::Known { payload, .. } => !expiring.contains_key(payload),
                _ => true,
            })
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
        let n = s.requests.entry(filter.to_string()).or_default();
        *n += 1;
        let n = *n;
        self.v5.unsubscribes.insert((slot, filter.to_string()), n);
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
        let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        for (slot, s) in self.slots.iter().enumerate() {
            for (f, (q, tok)) in &s.subs {
                if shared_inner(f).is_some() && matches(f, topic) {
                    groups
                        .entry(f.clone())
                        .or_default()
                        .push((slot, *q, *tok, s.session_gen));
                }
            }
        }
        PubSnap {
            id,
            topic: topic.to_string(),
            qos,
            retain,
            payload: payload.to_string(),
            targets,
            groups: groups.into_iter().collect(),
        }
    }

    /// The PUBLISH's operation finished; `ok` when it was acknowledged
    /// (QoS 0: written).
    pub fn publish_done(&mut self, snap: PubSnap, ok: bool) {
        // QoS 0 has no acknowledgement: a completed write may still be
        // discarded by a broker closing the connection (takeover).
        let mut ok = ok && snap.qos > 0;
        if snap.qos == 2
            && let Some((slot, _)) = self.v5.qos2_from.get(&snap.payload).copied()
            && let Some(open) = self.v5.qos2_open.get_mut(&slot)
        {
            let mine = open.get(&snap.payload).copied();
            if ok {
                open.remove(&snap.payload);
            }
            if open.iter().any(|(_, k)| Some(*k) != mine) {
                ok = false;
            }
        }
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
            self.v5
                .acked_at
                .insert(snap.payload.clone(), self.v5.now_ms);
            for (filter, members) in &snap.groups {
                if members.iter().any(|m| m.1 == 0) {
                    continue;
                }
                self.v5.groups.push(GroupObligation {
                    filter: filter.clone(),
                    members: members.iter().map(|m| (m.0, m.2, m.3)).collect(),
                    payload: snap.payload.clone(),
                    qos0_epoch: self.v5.qos0_epoch.get(filter).copied().unwrap_or(0),
                });
            }
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
        if self.v5.cancelled_wills.contains(payload) {
            return Err(format!(
                "c{slot} received the will {payload:?}, though its client was back before the delay passed"
            ));
        }
        if let (Some((back_at, away_since)), Some((published_at, exp)), Some(acked)) = (
            self.v5.returned.get(&slot),
            self.v5.expiring.get(payload),
            self.v5.acked_at.get(payload),
        ) && *away_since <= *published_at
            && acked + exp <= *back_at
        {
            return Err(format!(
                "c{slot} received {payload:?}, which expired while its session was away [MQTT-3.3.2-5]"
            ));
        }
        *self
            .delivered
            .entry((slot, payload.to_string()))
            .or_default() += 1;
        let publisher_lost_session = self
            .v5
            .qos2_from
            .get(payload)
            .is_some_and(|(s, g)| self.slots[*s].session_gen != *g);
        // A shared subscription is a subscription of its own: a client in a
        // group gets a message once through its ordinary filters and once
        // more per group it was picked in.
        let allowed = 1 + self.slots[slot]
            .ever_filters
            .iter()
            .filter(|f| shared_inner(f).is_some() && matches(f, topic))
            .count();
        if !retain && (qos == 2 || pub_qos == 0) && !publisher_lost_session {
            let n = self
                .once
                .entry((slot, kernel, payload.to_string()))
                .or_default();
            *n += 1;
            if usize::try_from(*n).unwrap_or(usize::MAX) > allowed {
                return Err(format!(
                    "c{slot} received {payload:?} (QoS {qos}, published at QoS {pub_qos}) {n} times: must be at most once per subscription"
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
            if self.count(o.slot, &o.payload) <= o.base && !self.may_have_expired(&o.payload) {
                return Err(format!(
                    "c{} never received {:?} at QoS {} ({}), though its session survived",
                    o.slot, o.payload, o.qos, o.why
                ));
            }
        }
        for g in &self.v5.groups {
            let survivor = g.members.iter().any(|(slot, token, gen_)| {
                let s = &self.slots[*slot];
                s.session_gen == *gen_ && s.subs.get(&g.filter).is_some_and(|(_, t)| t == token)
            });
            let epoch = self.v5.qos0_epoch.get(&g.filter).copied().unwrap_or(0);
            let received = (0..self.slots.len()).any(|s| self.count(s, &g.payload) > 0);
            if survivor && epoch == g.qos0_epoch && !received && !self.may_have_expired(&g.payload)
            {
                return Err(format!(
                    "no member of {} received {:?}, though a member of the time is still subscribed",
                    g.filter, g.payload
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
        // A SUBSCRIBE to the filter sent after this UNSUBSCRIBE is read
        // after it: the UNSUBACK does not leave the filter unsubscribed.
        let latest = self.slots[slot].requests.get(filter).copied();
        let mine = self
            .v5
            .unsubscribes
            .get(&(slot, filter.to_string()))
            .copied();
        if ok && latest == mine {
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
        // An UNSUBACK followed by a SUBSCRIBE sent before it arrived proves
        // nothing either (the broker may read them in either order).
        m.unsubscribe_sent(0, "t/a");
        let snap = m.subscribe_sent(0, "t/a", 0);
        m.unsubscribe_done(0, "t/a", true);
        m.subscribe_done(snap, true);
        m.publish_sent(4, "t/a", 0, false, "resubscribed");
        assert_eq!(m.delivered(0, 1, "t/a", "resubscribed", 0, false), Ok(()));
        // An UNSUBACK that did not arrive proves nothing.
        m.unsubscribe_done(0, "t/a", false);
        m.publish_sent(3, "t/a", 0, false, "unsure");
        assert_eq!(m.delivered(0, 1, "t/a", "unsure", 0, false), Ok(()));
    }
}
