//! CONNECT: sessions (clean start, persistence, expiry), takeover by the
//! same client id, wills (and the cancellation of a delayed one), the
//! keep-alive cap, what CONNACK advertises, the connection's topic alias
//! table, and the retransmission of a resumed session.

use super::session::{InflightStage, Session};
use super::{Broker, Conn, Flow, Proto, State, Will};
use crate::codec::{
    Connack, ConnackProperties, Connect, Disconnect, MqttString, Packet, PubResponse, Publish,
    ReasonCode, Version,
};
use crate::kernels::frame::{Delivery, OutFrame};
use crate::kernels::outbox::Entry;
use crate::kernels::topic_alias::AliasTable;
use crate::ledger::MsgKind;
use crate::sync::{Arc, Ordering, StdArc, lock};

impl Broker {
    pub(super) fn handle_connect(&self, conn: &Arc<Conn>, p: &mut Proto, c: Connect) -> Flow {
        let version = p.decoder.version().unwrap_or(Version::V311);
        p.version = Some(version);
        let mut client_id = c.client_id.as_str().to_string();
        let mut assigned = None;
        if client_id.is_empty() {
            if version == Version::V311 && !c.clean_start {
                // [MQTT-3.1.3-8]: CONNACK return code 2, then close.
                let ack = Connack {
                    session_present: false,
                    reason: ReasonCode::ClientIdentifierNotValid,
                    properties: Default::default(),
                };
                self.send(
                    conn,
                    &Packet::Connack(ack),
                    version,
                    "broker: CONNACK (refused)",
                );
                conn.close_for(ReasonCode::ClientIdentifierNotValid);
                return Flow::Close(super::CloseReason::new(
                    ReasonCode::ClientIdentifierNotValid,
                    "empty client id with a persistent session",
                ));
            }
            client_id = format!("mqtls-{}", conn.id);
            assigned = Some(client_id.clone());
        }
        let expiry_secs = match version {
            Version::V311 if c.clean_start => 0,
            Version::V311 => u32::MAX,
            Version::V5 => c.properties.session_expiry_interval.unwrap_or(0),
        };
        let window = c
            .properties
            .receive_maximum
            .unwrap_or(u16::MAX)
            .min(self.cfg.max_inflight);
        // The keep-alive cap: MQTT 5 clients are told the value to use
        // (Server Keep Alive); 3.1.1 clients cannot be, and are refused.
        let mut server_keep_alive = None;
        let mut keep_alive = c.keep_alive;
        if let Some(max) = self.cfg.max_keep_alive
            && (keep_alive == 0 || keep_alive > max)
        {
            if version == Version::V311 {
                let ack = Connack {
                    session_present: false,
                    reason: ReasonCode::ClientIdentifierNotValid,
                    properties: Default::default(),
                };
                self.send(
                    conn,
                    &Packet::Connack(ack),
                    version,
                    "broker: CONNACK (refused)",
                );
                conn.close_for(ReasonCode::ClientIdentifierNotValid);
                return Flow::Close(super::CloseReason::new(
                    ReasonCode::ClientIdentifierNotValid,
                    format!(
                        "3.1.1 client asked for keep-alive {keep_alive} s, over the broker's maximum of {max} s"
                    ),
                ));
            }
            keep_alive = max;
            server_keep_alive = Some(max);
        }
        conn.keep_alive_ms
            .store(u64::from(keep_alive) * 1000, Ordering::Release);
        if version == Version::V5 {
            *lock(&conn.aliases) = AliasTable::for_receiver(c.properties.topic_alias_maximum);
        }

        let will = c.will.as_ref().map(|w| {
            let msg = self
                .ledger
                .alloc(MsgKind::Will, w.payload.clone(), "CONNECT: will");
            let mut meta = Publish::new(w.topic.clone(), bytes::Bytes::new());
            meta.qos = w.qos;
            meta.retain = w.retain;
            meta.properties.payload_format_indicator = w.properties.payload_format_indicator;
            meta.properties.message_expiry_interval = w.properties.message_expiry_interval;
            meta.properties.content_type = w.properties.content_type.clone();
            meta.properties.response_topic = w.properties.response_topic.clone();
            meta.properties.correlation_data = w.properties.correlation_data.clone();
            meta.properties.user_properties = w.properties.user_properties.clone();
            Will {
                msg,
                meta: StdArc::new(meta),
                delay_secs: w.properties.will_delay_interval.unwrap_or(0),
            }
        });

        let now = p.now_ms;
        let mut st = lock(&self.state);
        let st = &mut *st;
        // What is already past at `now` happens first, whether or not the
        // timer ran yet: a session that expired ends (a will still waiting
        // goes out with it), a will whose delay passed is published. Else a
        // reconnect racing the timer would resume a dead session and cancel
        // a will that was due [MQTT-3.1.2-8].
        self.catch_up(st, &client_id, now);
        // A connection for this client id before the will's delay passed:
        // the will is not published [MQTT-3.1.3-9].
        if let Some(m) = st.delayed_wills.cancel(&client_id) {
            m.release("CONNECT: delayed will cancelled");
        }
        // Takeover: the old connection is told (MQTT 5) and closed. Its will
        // is published as for any connection that ends without DISCONNECT,
        // unless it has a delay: then the new connection came in time and it
        // is published only if the session ends here (clean start, or the
        // old session ended with its connection), as mosquitto does.
        let old = st
            .sessions
            .get(&client_id)
            .and_then(|s| s.conn)
            .filter(|id| *id != conn.id);
        // The old connection's session ends with it when its expiry is 0
        // (3.1.1 clean session): the new connection does not inherit it,
        // clean start or not (as mosquitto does).
        let ends = c.clean_start
            || (old.is_some()
                && st
                    .sessions
                    .get(&client_id)
                    .is_some_and(|s| s.expiry_secs == 0));
        if let Some(old_id) = old {
            if let Some(s) = st.sessions.get_mut(&client_id) {
                s.conn = None;
            }
            if let Some(old_conn) = st.conns.get(&old_id).cloned() {
                if st.versions.get(&client_id) == Some(&Version::V5) {
                    let d = Disconnect {
                        reason: ReasonCode::SessionTakenOver,
                        ..Default::default()
                    };
                    self.send(
                        &old_conn,
                        &Packet::Disconnect(d),
                        Version::V5,
                        "takeover: DISCONNECT",
                    );
                }
                old_conn.close_for(ReasonCode::SessionTakenOver);
                // Wake its writer so it flushes and closes.
                old_conn.outbox.poke();
            }
            if let Some(w) = st.wills.remove(&old_id) {
                if w.delay_secs == 0 || ends {
                    self.route(st, None, w.msg, w.meta, now);
                } else {
                    w.msg.release("takeover: delayed will discarded");
                }
            }
        }
        if ends {
            self.end_session(st, &client_id, now);
        }
        let session_present = st.sessions.contains_key(&client_id);
        let session = st
            .sessions
            .entry(client_id.clone())
            .or_insert_with(|| Session::new(expiry_secs, window));
        session.conn = Some(conn.id);
        session.expires_at_ms = None;
        session.expiry_secs = expiry_secs;
        session.window = window.max(1);
        session.max_packet_out = c.properties.maximum_packet_size;
        st.versions.insert(client_id.clone(), version);
        if let Some(w) = will
            && let Some(old) = st.wills.insert(conn.id, w)
        {
            old.msg.release("CONNECT: replaced will");
        }

        let mut props = ConnackProperties::default();
        if version == Version::V5 {
            props.receive_maximum = Some(self.cfg.receive_maximum);
            props.maximum_packet_size = u32::try_from(self.cfg.max_packet_size).ok();
            props.retain_available = Some(true);
            props.wildcard_subscription_available = Some(true);
            props.subscription_identifiers_available = Some(true);
            props.shared_subscription_available = Some(true);
            props.server_keep_alive = server_keep_alive;
            if let Some(id) = &assigned {
                props.assigned_client_identifier = MqttString::new(id.clone()).ok();
            }
        }
        let ack = Connack {
            session_present,
            reason: ReasonCode::Success,
            properties: props.into(),
        };
        self.send(conn, &Packet::Connack(ack), version, "broker: CONNACK");
        p.client_id = Some(client_id.clone());
        self.resume(st, &client_id, conn, version, now);
        Flow::Continue
    }

    /// Does for `client_id` what the timer would have done by `now_ms`: ends
    /// its session if it expired, publishes its will if the delay passed.
    fn catch_up(&self, st: &mut State, client_id: &str, now_ms: u64) {
        let expired = st
            .sessions
            .get(client_id)
            .is_some_and(|s| s.conn.is_none() && s.expires_at_ms.is_some_and(|t| t <= now_ms));
        if expired {
            self.end_session(st, client_id, now_ms);
        }
        if let Some(w) = st.delayed_wills.take_due(client_id, now_ms) {
            self.route(st, None, w.msg, w.meta, now_ms);
        }
    }

    /// A resumed session: unacknowledged deliveries go out again (with DUP
    /// and what is left of their expiry; one that expired meanwhile is
    /// released instead, as mosquitto does), PUBRELs are repeated, then
    /// whatever waited is pumped.
    fn resume(
        &self,
        st: &mut State,
        client_id: &str,
        conn: &Arc<Conn>,
        version: Version,
        now_ms: u64,
    ) {
        let Some(s) = st.sessions.get_mut(client_id) else {
            return;
        };
        let stale: Vec<u16> = s
            .inflight
            .iter()
            .filter(|(_, i)| i.stage == InflightStage::AwaitAck && i.delivery.expired(now_ms))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &stale {
            if let Some(mut inf) = s.inflight.remove(pid)
                && let Some(m) = inf.slot.take()
            {
                m.release("resume: message expired before its resend");
            }
        }
        st.stats.expired += stale.len() as u64;
        let aliases = conn.aliases();
        for (pid, inf) in s.inflight.iter_mut() {
            inf.delivery.version = version;
            match inf.stage {
                InflightStage::AwaitAck => {
                    if let Some(m) = inf.slot.peek() {
                        let wire = m.retain("resume: resend");
                        let mut d = Delivery {
                            dup: true,
                            aliases: aliases.clone(),
                            ..inf.delivery.clone()
                        };
                        d.stamp_expiry(now_ms);
                        let _ = conn.outbox.enqueue_windowed(Entry::Msg {
                            msg: wire,
                            frame: OutFrame::Deliver(Box::new(d)),
                        });
                    }
                }
                InflightStage::AwaitPubcomp => {
                    self.send(
                        conn,
                        &Packet::Pubrel(PubResponse::new(*pid)),
                        version,
                        "resume: PUBREL",
                    );
                }
            }
        }
        for w in s.waiting.iter_mut() {
            w.delivery.version = version;
        }
        st.stats.expired += Self::pump(self.faults(), s, Some(conn), now_ms);
    }
}
