//! SUBSCRIBE and UNSUBSCRIBE, shared group membership, and the retained
//! messages a new (ordinary) subscription receives.

use super::route::DeliverySpec;
use super::shared::ShareKey;
use super::{Broker, Conn, Flow, Proto};
use crate::codec::{
    AckProperties, Packet, QoS, ReasonCode, RetainHandling, Suback, Subscribe, Unsuback,
    Unsubscribe, Version,
};
use crate::faults::Fault;
use crate::ledger::MsgRef;
use crate::sync::{Arc, StdArc, lock};

impl Broker {
    pub(super) fn handle_subscribe(&self, conn: &Arc<Conn>, p: &mut Proto, sub: Subscribe) -> Flow {
        let version = p.version.unwrap_or(Version::V311);
        let Some(cid) = p.client_id.clone() else {
            return Flow::Continue;
        };
        let sub_id = sub.properties.subscription_identifier;
        let mut st = lock(&self.state);
        let st = &mut *st;
        let mut reasons = Vec::with_capacity(sub.filters.len());
        let now = p.now_ms;
        let mut retained: Vec<(MsgRef, StdArc<crate::codec::Publish>, QoS, Option<u64>)> =
            Vec::new();
        for s in &sub.filters {
            let filter = s.filter.as_str();
            let granted = s.options.qos.min(QoS::ExactlyOnce);
            let mut opts = s.options;
            opts.qos = granted;
            let granted_code = match granted {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQos1,
                QoS::ExactlyOnce => ReasonCode::GrantedQos2,
            };
            if filter.starts_with(crate::codec::topic::SHARE_PREFIX) {
                // `$share/{group}/{filter}`, in both versions (as mosquitto
                // does); a malformed one only reaches us from 3.1.1 (the
                // MQTT 5 codec refuses it).
                let Some(key) = ShareKey::parse(filter) else {
                    reasons.push(ReasonCode::UnspecifiedError);
                    continue;
                };
                match st.sessions.get_mut(&cid) {
                    Some(session) => {
                        session
                            .subscriptions
                            .insert(filter.to_string(), (opts, sub_id));
                    }
                    None => continue,
                }
                st.shared.join(&key, &cid, opts, sub_id);
                // No retained messages on a shared subscription (MQTT 5
                // section 4.8.2).
                reasons.push(granted_code);
                continue;
            }
            let existed = match st.sessions.get_mut(&cid) {
                Some(session) => session
                    .subscriptions
                    .insert(filter.to_string(), (opts, sub_id))
                    .is_some(),
                None => continue,
            };
            st.tree.insert(filter, &cid, (opts, sub_id));
            reasons.push(granted_code);
            let wanted = match opts.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
            if wanted {
                let faults = self.faults();
                st.retained.for_each_match(filter, now, |r| {
                    // Each delivery of a retained message takes its own
                    // reference; the store keeps its one.
                    let m = faults.reference(Fault::Nanomq485, &r.msg, "retain: deliver");
                    retained.push((m, r.meta.clone(), granted, r.expires_at_ms));
                });
            }
        }
        let ack = Suback {
            packet_id: sub.packet_id,
            reasons,
            properties: AckProperties::default(),
        };
        self.send(conn, &Packet::Suback(ack), version, "broker: SUBACK");
        for (m, meta, granted, expires_at_ms) in retained {
            let spec = DeliverySpec {
                qos: granted.min(meta.qos),
                retain: true,
                subscription_ids: sub_id.into_iter().collect(),
                expires_at_ms,
                now_ms: now,
                share: None,
            };
            self.deliver(st, &cid, m, meta, spec);
        }
        Flow::Continue
    }

    pub(super) fn handle_unsubscribe(
        &self,
        conn: &Arc<Conn>,
        p: &mut Proto,
        u: Unsubscribe,
    ) -> Flow {
        let version = p.version.unwrap_or(Version::V311);
        let Some(cid) = p.client_id.clone() else {
            return Flow::Continue;
        };
        let mut st = lock(&self.state);
        let st = &mut *st;
        let mut reasons = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            let filter = f.as_str();
            let existed = st
                .sessions
                .get_mut(&cid)
                .and_then(|s| s.subscriptions.remove(filter))
                .is_some();
            match ShareKey::parse(filter) {
                Some(key) => {
                    st.shared.leave(&key, &cid);
                }
                None => {
                    st.tree.remove(filter, &cid);
                }
            }
            reasons.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        let ack = Unsuback {
            packet_id: u.packet_id,
            reasons: if version == Version::V5 {
                reasons
            } else {
                Vec::new()
            },
            properties: AckProperties::default(),
        };
        self.send(conn, &Packet::Unsuback(ack), version, "broker: UNSUBACK");
        Flow::Continue
    }
}
