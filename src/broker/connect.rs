//! CONNECT: sessions (clean start, persistence, expiry), takeover by the
//! same client id, wills, and the retransmission of a resumed session.

use super::session::{InflightStage, Session};
use super::{Broker, Conn, Flow, Proto, State, Will};
use crate::codec::{
    Connack, ConnackProperties, Connect, Disconnect, MqttString, Packet, PubResponse, Publish,
    ReasonCode, Version,
};
use crate::kernels::frame::{Delivery, OutFrame};
use crate::kernels::outbox::Entry;
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
                conn.closing.store(true, Ordering::Release);
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
        conn.keep_alive_ms
            .store(u64::from(c.keep_alive) * 1000, Ordering::Release);

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
            }
        });

        let mut st = lock(&self.state);
        // Takeover: the old connection is told (MQTT 5) and closed; its will
        // is published as for any connection that ends without DISCONNECT.
        let old = st
            .sessions
            .get(&client_id)
            .and_then(|s| s.conn)
            .filter(|id| *id != conn.id);
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
                old_conn.closing.store(true, Ordering::Release);
                // Wake its writer so it flushes and closes.
                old_conn.outbox.poke();
            }
            if let Some(w) = st.wills.remove(&old_id) {
                self.route(&mut st, None, w.msg, w.meta);
            }
        }
        if c.clean_start {
            Self::end_session(&mut st, &client_id);
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
        // Resumed session state. (A takeover leaves the ids with the old
        // connection's reader, which this connection cannot reach.)
        p.awaiting_pubrel = std::mem::take(&mut session.awaiting_pubrel);
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
            props.shared_subscription_available = Some(false);
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
        self.resume(&mut st, &client_id, conn, version);
        Flow::Continue
    }

    /// A resumed session: unacknowledged deliveries go out again (with DUP),
    /// PUBRELs are repeated, then whatever waited is pumped.
    fn resume(&self, st: &mut State, client_id: &str, conn: &Arc<Conn>, version: Version) {
        let Some(s) = st.sessions.get_mut(client_id) else {
            return;
        };
        for (pid, inf) in s.inflight.iter_mut() {
            inf.delivery.version = version;
            match inf.stage {
                InflightStage::AwaitAck => {
                    if let Some(m) = inf.slot.peek() {
                        let wire = m.retain("resume: resend");
                        let d = Delivery {
                            dup: true,
                            ..inf.delivery.clone()
                        };
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
        Self::pump(self.faults(), s, Some(conn));
    }
}
