//! PUBLISH in, deliveries out: the retained store, fan-out (one reference
//! per subscriber and per shared group), the shared-group hand-over, the
//! QoS 1/2 inflight window and its acknowledgements, and message expiry on
//! the way (a delivery nobody started to send is released when it expires;
//! the interval written is what is left of it).

use super::limits::{DropReason, WhenFull};
use super::session::{Inflight, InflightStage, Session, Waiting};
use super::shared::ShareKey;
use super::{Broker, Conn, Flow, Proto, State};
use crate::codec::{Packet, PubResponse, Publish, QoS, ReasonCode, SubscriptionOptions, Version};
use crate::faults::{Fault, FaultSet};
use crate::kernels::frame::{Delivery, OutFrame};
use crate::kernels::outbox::{Entry, Refused};
use crate::ledger::{MsgRef, MsgSlot};
use crate::sync::{Arc, StdArc, lock};
use bytes::Bytes;

/// One delivery of a message: a subscriber merged over its matching
/// ordinary filters, or a member chosen for a shared group.
struct Target {
    client: String,
    qos: QoS,
    retain_as_published: bool,
    subscription_ids: Vec<u32>,
    share: Option<Box<ShareKey>>,
}

impl Target {
    fn new(client: &str, opts: &SubscriptionOptions, sub_id: Option<u32>) -> Self {
        Target {
            client: client.to_string(),
            qos: opts.qos,
            retain_as_published: opts.retain_as_published,
            subscription_ids: sub_id.into_iter().collect(),
            share: None,
        }
    }

    /// This target with one more matching subscription of the same client.
    fn merged(&self, opts: &SubscriptionOptions, sub_id: Option<u32>) -> Self {
        let mut ids = self.subscription_ids.clone();
        ids.extend(sub_id);
        Target {
            client: self.client.clone(),
            qos: self.qos.max(opts.qos),
            retain_as_published: self.retain_as_published || opts.retain_as_published,
            subscription_ids: ids,
            share: None,
        }
    }
}

impl Broker {
    pub(super) fn handle_publish(
        &self,
        conn: &Arc<Conn>,
        p: &mut Proto,
        msg: MsgRef,
        publish: Publish,
    ) -> Flow {
        let version = p.version.unwrap_or(Version::V311);
        if publish.properties.topic_alias.is_some() {
            msg.release("reader: PUBLISH with topic alias");
            // We offer Topic Alias Maximum 0 [MQTT-3.3.2-9].
            return self.protocol_error(conn, p, ReasonCode::TopicAliasInvalid, "topic alias used");
        }
        let pid = publish.packet_id;
        if publish.qos == QoS::ExactlyOnce {
            let (seen, held) = self.with_session_mut(p, |s| {
                (s.awaiting_pubrel.contains(&pid), s.awaiting_pubrel.len())
            });
            if seen {
                // A resent QoS 2 PUBLISH: delivered already, exactly once.
                msg.release("reader: duplicate QoS 2 PUBLISH");
                self.send(
                    conn,
                    &Packet::Pubrec(PubResponse::new(pid)),
                    version,
                    "broker: PUBREC",
                );
                return Flow::Continue;
            }
            if held >= usize::from(self.cfg.receive_maximum) {
                msg.release("reader: PUBLISH over receive maximum");
                return self.protocol_error(
                    conn,
                    p,
                    ReasonCode::ReceiveMaximumExceeded,
                    "too many QoS 2 publishes awaiting PUBREL",
                );
            }
        }
        // The frame's message becomes the application message: only the
        // payload is shared with subscribers. We are its only owner here.
        let payload = publish.payload.clone();
        let size = publish.topic.as_str().len() + payload.len();
        if msg
            .mutate("reader: keep payload", |d| *d = payload)
            .is_err()
        {
            return Flow::Continue;
        }
        let mut meta = publish;
        meta.payload = Bytes::new();
        meta.dup = false;
        let qos = meta.qos;
        let from = p.client_id.clone();
        // A QoS 2 id awaits PUBREL in the session from here on: a resend is
        // acknowledged, never routed again, on whichever connection it
        // comes.
        let hold_pubrel = |st: &mut State| {
            if qos == QoS::ExactlyOnce
                && let Some(s) = from.as_ref().and_then(|c| st.sessions.get_mut(c))
            {
                s.awaiting_pubrel.insert(pid);
            }
        };
        if self.faults().has(Fault::Nanomq992557ab) {
            // NanoMQ 992557ab: the subscribers are looked up under the lock
            // (dbtree_find_clients) and served after it was dropped
            // (foreach_client), so an UNSUBSCRIBE in between still gets it.
            let plan = {
                let mut st = lock(&self.state);
                st.stats.publishes_in += 1;
                hold_pubrel(&mut st);
                self.plan_fan_out(&mut st, from.as_deref(), msg, StdArc::new(meta), p.now_ms)
            };
            for d in plan {
                self.deliver(&mut lock(&self.state), &d.client, d.msg, d.meta, d.spec);
            }
        } else {
            let mut st = lock(&self.state);
            let st = &mut *st;
            st.stats.publishes_in += 1;
            if qos != QoS::AtMostOnce
                && version == Version::V5
                && self.cfg.queue.when_full == WhenFull::Refuse
                && let Err(reason) = self.refusal(st, from.as_deref(), &meta, size)
            {
                st.stats.drops.refused_publishes += 1;
                tracing::debug!(client = ?from, %reason, "publication refused: quota exceeded");
                msg.release("refused: quota exceeded");
                let mut ack = PubResponse::new(pid);
                ack.reason = ReasonCode::QuotaExceeded;
                // A failed PUBREC ends the QoS 2 flow: no PUBREL follows.
                let packet = match qos {
                    QoS::ExactlyOnce => Packet::Pubrec(ack),
                    _ => Packet::Puback(ack),
                };
                self.send(conn, &packet, version, "broker: refusing ack");
                return Flow::Continue;
            }
            hold_pubrel(st);
            self.route(st, from.as_deref(), msg, StdArc::new(meta), p.now_ms);
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(
                conn,
                &Packet::Puback(PubResponse::new(pid)),
                version,
                "broker: PUBACK",
            ),
            QoS::ExactlyOnce => {
                self.send(
                    conn,
                    &Packet::Pubrec(PubResponse::new(pid)),
                    version,
                    "broker: PUBREC",
                );
            }
        }
        Flow::Continue
    }

    /// Routes one message (the caller's reference), received at `now_ms`,
    /// to the retained store, every matching subscriber and one member of
    /// every matching shared group. `from` is the publisher, for No Local.
    pub(super) fn route(
        &self,
        st: &mut State,
        from: Option<&str>,
        msg: MsgRef,
        meta: StdArc<Publish>,
        now_ms: u64,
    ) {
        // Planned and delivered under one hold of the lock: a subscription
        // removed after the plan must not be served.
        for d in self.plan_fan_out(st, from, msg, meta, now_ms) {
            self.deliver(st, &d.client, d.msg, d.meta, d.spec);
        }
    }

    /// The retained store takes its reference, and every matching
    /// subscriber gets one delivery with its own reference.
    fn plan_fan_out(
        &self,
        st: &mut State,
        from: Option<&str>,
        msg: MsgRef,
        meta: StdArc<Publish>,
        now_ms: u64,
    ) -> Vec<Planned> {
        let topic = meta.topic.as_str().to_string();
        // An interval of 0 never expires (as in mosquitto).
        let expires_at_ms = meta
            .properties
            .message_expiry_interval
            .filter(|s| *s > 0)
            .map(|s| now_ms + u64::from(s) * 1000);
        st.expiring |= expires_at_ms.is_some();
        if meta.retain {
            if msg
                .data("retain: check payload")
                .is_ok_and(|d| d.is_empty())
            {
                st.retained.clear(&topic);
            } else {
                st.retained.put(
                    &topic,
                    msg.retain("retain: store"),
                    meta.clone(),
                    expires_at_ms,
                );
            }
        }
        // One entry per matching subscription, as the tree finds them
        // (sorted, so that every run hands the references out alike).
        let mut matches: Vec<(String, SubscriptionOptions, Option<u32>)> = Vec::new();
        st.tree.for_each_match(&topic, |client, (opts, sub_id)| {
            if opts.no_local && from == Some(client) {
                return;
            }
            matches.push((client.to_string(), *opts, *sub_id));
        });
        matches.sort_by(|a, b| a.0.cmp(&b.0));
        let sessions = &st.sessions;
        let picks = st.shared.pick_for(&topic, |c| {
            sessions.get(c).is_some_and(|s| s.conn.is_some())
        });
        let mut clients = matches.iter().map(|m| &m.0).collect::<Vec<_>>();
        clients.dedup();
        let n = clients.len() + picks.len();
        let mut plan = Vec::with_capacity(n);
        // One reference per delivery: the publisher's own goes to the last
        // one, every other takes a new one.
        let mut own = Some(msg);
        let mut made = 0;
        let mut next_ref = |own: &mut Option<MsgRef>| {
            made += 1;
            if made == n {
                own.take()
            } else if made == 1 {
                own.as_ref().map(|m| {
                    self.faults()
                        .reference(Fault::FanoutMissingRetain, m, "fanout: reference")
                })
            } else {
                own.as_ref().map(|m| m.retain("fanout: reference"))
            }
        };
        let mut deliveries: Vec<(Target, MsgRef)> = Vec::with_capacity(n);
        for (client, opts, sub_id) in &matches {
            match deliveries.last_mut() {
                Some(entry) if entry.0.client == *client => {
                    // An overlapping subscription of the same client: its
                    // entry is built anew with its own reference and the
                    // entry it replaces gives its one back.
                    let merged = entry.0.merged(opts, *sub_id);
                    let mr = self.faults().reference(
                        Fault::Nanomq360,
                        &entry.1,
                        "fanout: merge overlapping subscriptions",
                    );
                    let (_, old) = std::mem::replace(entry, (merged, mr));
                    old.release("fanout: entry replaced by the merge");
                }
                _ => {
                    let Some(r) = next_ref(&mut own) else {
                        continue;
                    };
                    deliveries.push((Target::new(client, opts, *sub_id), r));
                }
            }
        }
        for (key, member) in picks {
            let Some(r) = next_ref(&mut own) else {
                continue;
            };
            let mut t = Target::new(&member.client, &member.opts, member.sub_id);
            t.share = Some(Box::new(key));
            deliveries.push((t, r));
        }
        for (t, r) in deliveries {
            let d = DeliverySpec {
                qos: t.qos.min(meta.qos),
                retain: meta.retain && t.retain_as_published,
                subscription_ids: t.subscription_ids,
                expires_at_ms,
                now_ms,
                share: t.share,
            };
            plan.push(Planned {
                client: t.client.clone(),
                msg: r,
                meta: meta.clone(),
                spec: d,
            });
        }
        if let Some(m) = own {
            m.release("fanout: no subscriber");
        }
        plan
    }

    /// Hands the deliveries `s` got through a shared group and never had
    /// acknowledged (waiting, or sent and awaiting PUBACK/PUBREC) to another
    /// member of that group: each new delivery takes its own reference, and
    /// `s`, whose session just ended (it is out of `st.sessions`), releases
    /// its own with everything else it holds. Without another member the
    /// message goes with the session. QoS 2 deliveries past PUBREC are the
    /// receiver's already: nothing is handed over for them.
    pub(super) fn hand_over(&self, st: &mut State, from: &str, s: &Session, now_ms: u64) {
        let parked = s
            .inflight
            .values()
            .filter_map(|i| match (&i.share, i.stage) {
                (Some(k), InflightStage::AwaitAck) => i.slot.peek().map(|m| (k, m, &i.delivery)),
                _ => None,
            });
        let waiting = s
            .waiting
            .iter()
            .filter_map(|w| w.share.as_ref().map(|k| (k, &w.msg, &w.delivery)));
        for (key, m, d) in parked.chain(waiting) {
            let sessions = &st.sessions;
            let online = |c: &str| sessions.get(c).is_some_and(|x| x.conn.is_some());
            let Some(member) = st.shared.pick_other(key, from, online) else {
                continue;
            };
            let r = self.faults().reference(
                Fault::SharedHandover,
                m,
                "shared: hand over to the next member",
            );
            let spec = DeliverySpec {
                qos: member.opts.qos.min(d.meta.qos),
                retain: d.meta.retain && member.opts.retain_as_published,
                subscription_ids: member.sub_id.into_iter().collect(),
                expires_at_ms: d.expires_at_ms,
                now_ms,
                share: Some(key.clone()),
            };
            self.deliver(st, &member.client, r, d.meta.clone(), spec);
        }
    }

    /// [`WhenFull::Refuse`]: why a publication cannot be taken by all its
    /// ordinary subscribers, if it cannot. (A shared group's member is
    /// chosen at delivery; one over its limit drops it as `DropNewest`.)
    fn refusal(
        &self,
        st: &mut State,
        from: Option<&str>,
        meta: &Publish,
        size: usize,
    ) -> Result<(), DropReason> {
        let mut targets: Vec<(String, QoS)> = Vec::new();
        st.tree
            .for_each_match(meta.topic.as_str(), |client, (opts, _)| {
                if opts.no_local && from == Some(client) {
                    return;
                }
                targets.push((client.to_string(), opts.qos.min(meta.qos)));
            });
        // One entry per client, at the highest QoS of its subscriptions.
        targets.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        targets.dedup_by(|a, b| a.0 == b.0);
        self.check_refuse(st, &targets, size)
    }

    /// Hands one reference to one subscriber's session, within the queue
    /// limits ([`super::limits`]): a delivery that does not fit is dropped
    /// (released once, counted, logged).
    pub(super) fn deliver(
        &self,
        st: &mut State,
        client: &str,
        msg: MsgRef,
        meta: StdArc<Publish>,
        spec: DeliverySpec,
    ) {
        let version = st.versions.get(client).copied().unwrap_or(Version::V311);
        let Some(session) = st.sessions.get(client) else {
            msg.release("deliver: no session");
            return;
        };
        let size = meta.topic.as_str().len() + msg.data("deliver: size").map_or(0, |d| d.len());
        if let Some(max) = session.max_packet_out
            && size + 16 > max as usize
        {
            return self.drop_delivery(st, client, msg, DropReason::ClientMaxPacket);
        }
        let mut delivery = Delivery {
            meta,
            qos: spec.qos,
            packet_id: 0,
            dup: false,
            retain: spec.retain,
            subscription_ids: spec.subscription_ids,
            version,
            expires_at_ms: spec.expires_at_ms,
            message_expiry: None,
            aliases: None,
        };
        if delivery.expired(spec.now_ms) {
            msg.release("deliver: message expired");
            st.stats.expired += 1;
            return;
        }
        if let Err(reason) = self.admit(st, client, spec.qos, size) {
            return self.drop_delivery(st, client, msg, reason);
        }
        let State {
            sessions,
            conns,
            stats,
            ..
        } = st;
        let Some(session) = sessions.get_mut(client) else {
            msg.release("deliver: no session");
            return;
        };
        let conn = session.conn.and_then(|id| conns.get(&id)).cloned();
        let charge = self.budget.charge(size);
        if spec.qos == QoS::AtMostOnce {
            let Some(c) = conn else {
                // admit() lets no QoS 0 through to a session without one.
                stats.drops.count(DropReason::OfflineQos0);
                msg.release(DropReason::OfflineQos0.site());
                return;
            };
            delivery.stamp_expiry(spec.now_ms);
            delivery.aliases = c.aliases();
            let entry = Entry::Msg {
                msg,
                frame: OutFrame::Deliver(Box::new(delivery)),
            };
            // A refused entry was released by the outbox.
            let refused = match c.outbox.enqueue_droppable(entry, charge) {
                Ok(()) => {
                    stats.deliveries += 1;
                    return;
                }
                Err(Refused::Full) => DropReason::SendQueueFull,
                Err(Refused::Closed) => DropReason::OfflineQos0,
            };
            stats.drops.count(refused);
            tracing::trace!(client, reason = %refused, "delivery dropped");
            return;
        }
        stats.deliveries += 1;
        session.waiting.push_back(Waiting {
            msg,
            delivery,
            charge,
            share: spec.share,
        });
        stats.expired += Self::pump(self.faults(), session, conn.as_ref(), spec.now_ms);
    }

    /// Moves waiting deliveries into the inflight window while it has room
    /// and the client is connected. Each parked delivery keeps its own
    /// reference; the wire gets the waiting one.
    pub(super) fn pump(
        faults: FaultSet,
        s: &mut Session,
        conn: Option<&Arc<Conn>>,
        now_ms: u64,
    ) -> u64 {
        let Some(conn) = conn else { return 0 };
        let mut expired = 0;
        while !s.waiting.is_empty() {
            let Some(pid) = s.take_pid() else { break };
            let Some(w) = s.waiting.pop_front() else {
                break;
            };
            if w.delivery.expired(now_ms) {
                // Nobody started to deliver it: it goes [MQTT-3.3.2-5].
                w.msg.release("pump: message expired while waiting");
                expired += 1;
                continue;
            }
            let own = faults.reference(Fault::Nanomq531, &w.msg, "broker: park delivery");
            let mut slot = MsgSlot::new();
            let _ = slot.set(own);
            let mut delivery = w.delivery;
            delivery.packet_id = pid;
            delivery.stamp_expiry(now_ms);
            s.inflight.insert(
                pid,
                Box::new(Inflight {
                    slot,
                    delivery: delivery.clone(),
                    stage: InflightStage::AwaitAck,
                    charge: Some(w.charge),
                    share: w.share,
                }),
            );
            // Only the copy on this connection's queue knows its aliases.
            delivery.aliases = conn.aliases();
            // Refused only when the connection is closing: the parked
            // reference stays for the resend after reconnect.
            let _ = conn.outbox.enqueue_windowed(Entry::Msg {
                msg: w.msg,
                frame: OutFrame::Deliver(Box::new(delivery)),
            });
        }
        expired
    }

    /// `f` on the session of `p`'s client (its default when there is none).
    pub(super) fn with_session_mut<T: Default>(
        &self,
        p: &Proto,
        f: impl FnOnce(&mut Session) -> T,
    ) -> T {
        let Some(cid) = &p.client_id else {
            return T::default();
        };
        lock(&self.state)
            .sessions
            .get_mut(cid)
            .map(f)
            .unwrap_or_default()
    }

    /// Runs `f` on the session served by `p`'s connection; `f` returns how
    /// many messages it found expired.
    fn with_session(
        &self,
        p: &Proto,
        f: impl FnOnce(&mut Session, Option<&Arc<Conn>>, FaultSet) -> u64,
    ) {
        let Some(cid) = &p.client_id else { return };
        let mut st = lock(&self.state);
        let st = &mut *st;
        if let Some(s) = st.sessions.get_mut(cid) {
            let conn = s.conn.and_then(|id| st.conns.get(&id)).cloned();
            st.stats.expired += f(s, conn.as_ref(), self.faults());
        }
    }

    pub(super) fn on_puback(&self, p: &Proto, pid: u16) -> Flow {
        let now = p.now_ms;
        self.with_session(p, |s, conn, faults| {
            if let Some(mut inf) = s.inflight.remove(&pid)
                && let Some(m) = inf.slot.take()
            {
                m.release("reader: PUBACK");
            }
            Self::pump(faults, s, conn, now)
        });
        Flow::Continue
    }

    pub(super) fn on_pubrec(
        &self,
        conn: &Arc<Conn>,
        p: &Proto,
        pid: u16,
        reason: ReasonCode,
        version: Version,
    ) -> Flow {
        let mut send_pubrel = false;
        let now = p.now_ms;
        self.with_session(p, |s, c, faults| {
            let failed = (reason as u8) >= 0x80;
            if let Some(inf) = s.inflight.get_mut(&pid) {
                if let Some(m) = inf.slot.take() {
                    m.release("reader: PUBREC");
                }
                inf.charge = None;
                if failed {
                    s.inflight.remove(&pid);
                    return Self::pump(faults, s, c, now);
                }
                inf.stage = InflightStage::AwaitPubcomp;
                send_pubrel = true;
            }
            0
        });
        if send_pubrel {
            self.send(
                conn,
                &Packet::Pubrel(PubResponse::new(pid)),
                version,
                "broker: PUBREL",
            );
        }
        Flow::Continue
    }

    pub(super) fn on_pubcomp(&self, p: &Proto, pid: u16) -> Flow {
        let now = p.now_ms;
        self.with_session(p, |s, conn, faults| {
            if let Some(mut inf) = s.inflight.remove(&pid)
                && let Some(m) = inf.slot.take()
            {
                m.release("reader: PUBCOMP");
            }
            Self::pump(faults, s, conn, now)
        });
        Flow::Continue
    }
}

/// One subscriber's delivery, planned by the fan-out.
struct Planned {
    client: String,
    msg: MsgRef,
    meta: StdArc<Publish>,
    spec: DeliverySpec,
}

/// The per-subscriber part of a delivery.
pub(super) struct DeliverySpec {
    pub(super) qos: QoS,
    pub(super) retain: bool,
    pub(super) subscription_ids: Vec<u32>,
    /// When the message expires (from when the broker received it).
    pub(super) expires_at_ms: Option<u64>,
    /// The broker's time now.
    pub(super) now_ms: u64,
    /// The shared group it goes through, if any.
    pub(super) share: Option<Box<ShareKey>>,
}
