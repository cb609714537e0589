//! PUBLISH in, deliveries out: the retained store, fan-out (one reference
//! per subscriber), the QoS 1/2 inflight window and its acknowledgements.

use super::limits::{DropReason, WhenFull};
use super::session::{Inflight, InflightStage, Session, Waiting};
use super::{Broker, Conn, Flow, Proto, State};
use crate::codec::{Packet, PubResponse, Publish, QoS, ReasonCode, Version};
use crate::faults::{Fault, FaultSet};
use crate::kernels::frame::{Delivery, OutFrame};
use crate::kernels::outbox::{Entry, Refused};
use crate::ledger::{MsgRef, MsgSlot};
use crate::sync::{Arc, StdArc, lock};
use bytes::Bytes;
use std::collections::BTreeMap;

/// One subscriber a message goes to, merged over its matching filters.
pub(super) struct Target {
    qos: QoS,
    retain_as_published: bool,
    subscription_ids: Vec<u32>,
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
            if p.awaiting_pubrel.contains(&pid) {
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
            if p.awaiting_pubrel.len() >= usize::from(self.cfg.receive_maximum) {
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
        {
            let mut st = lock(&self.state);
            st.stats.publishes_in += 1;
            if qos != QoS::AtMostOnce
                && version == Version::V5
                && self.cfg.queue.when_full == WhenFull::Refuse
                && let Err(reason) = self.refusal(&mut st, from.as_deref(), &meta, size)
            {
                st.stats.drops.refused_publishes += 1;
                drop(st);
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
            self.route(&mut st, from.as_deref(), msg, StdArc::new(meta));
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
                p.awaiting_pubrel.insert(pid);
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

    /// Routes one message (the caller's reference) to the retained store and
    /// every matching subscriber. `from` is the publisher, for No Local.
    pub(super) fn route(
        &self,
        st: &mut State,
        from: Option<&str>,
        msg: MsgRef,
        meta: StdArc<Publish>,
    ) {
        let topic = meta.topic.as_str().to_string();
        if meta.retain {
            if msg
                .data("retain: check payload")
                .is_ok_and(|d| d.is_empty())
            {
                st.retained.clear(&topic);
            } else {
                st.retained
                    .put(&topic, msg.retain("retain: store"), meta.clone());
            }
        }
        let targets = Self::targets(st, from, &topic);
        let n = targets.len();
        let mut own = Some(msg);
        for (i, (client, t)) in targets.into_iter().enumerate() {
            // One reference per subscriber: the publisher's own goes to the
            // last one, every other takes a new one.
            let r = if i + 1 == n {
                own.take()
            } else if i == 0 {
                own.as_ref().map(|m| {
                    self.faults()
                        .reference(Fault::FanoutMissingRetain, m, "fanout: reference")
                })
            } else {
                own.as_ref().map(|m| m.retain("fanout: reference"))
            };
            let Some(r) = r else { continue };
            let d = DeliverySpec {
                qos: t.qos.min(meta.qos),
                retain: meta.retain && t.retain_as_published,
                subscription_ids: t.subscription_ids,
            };
            self.deliver(st, &client, r, meta.clone(), d);
        }
        if let Some(m) = own {
            m.release("fanout: no subscriber");
        }
    }

    /// [`WhenFull::Refuse`]: why a publication cannot be taken by all its
    /// subscribers, if it cannot.
    fn refusal(
        &self,
        st: &mut State,
        from: Option<&str>,
        meta: &Publish,
        size: usize,
    ) -> Result<(), DropReason> {
        let targets: Vec<(String, QoS)> = Self::targets(st, from, meta.topic.as_str())
            .into_iter()
            .map(|(client, t)| (client, t.qos.min(meta.qos)))
            .collect();
        self.check_refuse(st, &targets, size)
    }

    /// The subscribers of `topic`, each once, merged over its matching
    /// filters; `from` is the publisher, for No Local.
    pub(super) fn targets(st: &State, from: Option<&str>, topic: &str) -> BTreeMap<String, Target> {
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        st.tree.for_each_match(topic, |client, (opts, sub_id)| {
            if opts.no_local && from == Some(client) {
                return;
            }
            let t = targets.entry(client.to_string()).or_insert(Target {
                qos: QoS::AtMostOnce,
                retain_as_published: false,
                subscription_ids: Vec::new(),
            });
            t.qos = t.qos.max(opts.qos);
            t.retain_as_published |= opts.retain_as_published;
            t.subscription_ids.extend(sub_id.iter().copied());
        });
        targets
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
        let delivery = Delivery {
            meta,
            qos: spec.qos,
            packet_id: 0,
            dup: false,
            retain: spec.retain,
            subscription_ids: spec.subscription_ids,
            version,
        };
        if spec.qos == QoS::AtMostOnce {
            let Some(c) = conn else {
                // admit() lets no QoS 0 through to a session without one.
                stats.drops.count(DropReason::OfflineQos0);
                msg.release(DropReason::OfflineQos0.site());
                return;
            };
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
        });
        Self::pump(self.faults(), session, conn.as_ref());
    }

    /// Moves waiting deliveries into the inflight window while it has room
    /// and the client is connected. Each parked delivery keeps its own
    /// reference; the wire gets the waiting one.
    pub(super) fn pump(faults: FaultSet, s: &mut Session, conn: Option<&Arc<Conn>>) {
        let Some(conn) = conn else { return };
        while !s.waiting.is_empty() {
            let Some(pid) = s.take_pid() else { return };
            let Some(w) = s.waiting.pop_front() else {
                return;
            };
            let own = faults.reference(Fault::Nanomq531, &w.msg, "broker: park delivery");
            let mut slot = MsgSlot::new();
            let _ = slot.set(own);
            let mut delivery = w.delivery;
            delivery.packet_id = pid;
            s.inflight.insert(
                pid,
                Inflight {
                    slot,
                    delivery: delivery.clone(),
                    stage: InflightStage::AwaitAck,
                    charge: Some(w.charge),
                },
            );
            // Refused only when the connection is closing: the parked
            // reference stays for the resend after reconnect.
            let _ = conn.outbox.enqueue_windowed(Entry::Msg {
                msg: w.msg,
                frame: OutFrame::Deliver(Box::new(delivery)),
            });
        }
    }

    fn with_session(&self, p: &Proto, f: impl FnOnce(&mut Session, Option<&Arc<Conn>>, FaultSet)) {
        let Some(cid) = &p.client_id else { return };
        let mut st = lock(&self.state);
        let st = &mut *st;
        if let Some(s) = st.sessions.get_mut(cid) {
            let conn = s.conn.and_then(|id| st.conns.get(&id)).cloned();
            f(s, conn.as_ref(), self.faults());
        }
    }

    pub(super) fn on_puback(&self, p: &Proto, pid: u16) -> Flow {
        self.with_session(p, |s, conn, faults| {
            if let Some(mut inf) = s.inflight.remove(&pid)
                && let Some(m) = inf.slot.take()
            {
                m.release("reader: PUBACK");
            }
            Self::pump(faults, s, conn);
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
        self.with_session(p, |s, c, faults| {
            let failed = (reason as u8) >= 0x80;
            if let Some(inf) = s.inflight.get_mut(&pid) {
                if let Some(m) = inf.slot.take() {
                    m.release("reader: PUBREC");
                }
                inf.charge = None;
                if failed {
                    s.inflight.remove(&pid);
                    Self::pump(faults, s, c);
                } else {
                    inf.stage = InflightStage::AwaitPubcomp;
                    send_pubrel = true;
                }
            }
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
        self.with_session(p, |s, conn, faults| {
            if let Some(mut inf) = s.inflight.remove(&pid)
                && let Some(m) = inf.slot.take()
            {
                m.release("reader: PUBCOMP");
            }
            Self::pump(faults, s, conn);
        });
        Flow::Continue
    }
}

/// The per-subscriber part of a delivery.
pub(super) struct DeliverySpec {
    pub(super) qos: QoS,
    pub(super) retain: bool,
    pub(super) subscription_ids: Vec<u32>,
}
