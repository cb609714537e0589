//! What a peer under test must do on the wire: the normative statements of
//! MQTT the hostile peers check, and the checker of a client's packets as
//! the hostile broker sees them.
//!
//! A protocol finding is kept apart from memory findings: it says the peer
//! broke a rule of the specification (named by its number where the
//! specification numbers it), not that it corrupted memory.

use super::finding::{Finding, Rule};
use crate::codec::{Packet, QoS, ReasonCode, Version};

/// A normative statement, in the numbering of MQTT 3.1.1 and of 5.0 (the
/// section where the statement carries no number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// MQTT 3.1.1's identifier.
    pub v311: &'static str,
    /// MQTT 5.0's identifier.
    pub v5: &'static str,
    /// What it says.
    pub text: &'static str,
}

impl Statement {
    /// The rule in the numbering of `version`.
    pub fn rule(&self, version: Version) -> Rule {
        let id = match version {
            Version::V311 => self.v311,
            Version::V5 => self.v5,
        };
        Rule::new(id, self.text)
    }
}

/// The first packet from a client must be CONNECT.
pub const FIRST_PACKET_CONNECT: Statement = Statement {
    v311: "MQTT-3.1.0-1",
    v5: "MQTT-3.1.0-1",
    text: "After a Network Connection is established by a Client to a Server, the first packet sent from the Client to the Server MUST be a CONNECT packet.",
};

/// CONNECT once per connection.
pub const SECOND_CONNECT: Statement = Statement {
    v311: "MQTT-3.1.0-2",
    v5: "MQTT-3.1.0-2",
    text: "A Client can only send the CONNECT packet once over a Network Connection; the Server MUST process a second CONNECT packet as a protocol violation and disconnect the Client.",
};

/// A refused CONNACK ends the connection.
pub const AFTER_REFUSED_CONNACK: Statement = Statement {
    v311: "MQTT-3.2.2-5",
    v5: "MQTT-3.1.4-6",
    text: "A CONNACK with a non-zero return code ends the connection: the Server MUST then close the Network Connection [MQTT-3.2.2-5] and MUST NOT process any data the Client sent after the CONNECT [MQTT-3.1.4-5; 5.0: MQTT-3.1.4-6]. A Client that goes on sending is using a connection the protocol has ended.",
};

/// Acknowledgements carry the id of the PUBLISH they acknowledge.
pub const ACK_SAME_ID: Statement = Statement {
    v311: "MQTT-2.3.1-6",
    v5: "MQTT-2.2.1-5",
    text: "A PUBACK, PUBREC or PUBREL packet MUST contain the same Packet Identifier as the PUBLISH packet that was originally sent.",
};

/// The receiver of a malformed packet closes the connection.
pub const CLOSE_ON_VIOLATION: Statement = Statement {
    v311: "MQTT-4.8.0-1",
    v5: "MQTT 5.0 §4.13",
    text: "Unless stated otherwise, if either the Server or Client encounters a protocol violation (a malformed packet), it MUST close the Network Connection on which it received that packet.",
};

/// A packet our codec rejects, sent by the peer.
pub fn malformed_rule(spec: Option<&'static str>, error: &str) -> Rule {
    Rule::new(
        spec.unwrap_or("MQTT 3.1.1 §2 / 5.0 §2 (packet format)"),
        format!("the packet must be well formed; our codec says: {error}"),
    )
}

/// Tracks what the hostile broker sent a client and checks each packet the
/// client sends against the rules above.
#[derive(Debug, Default)]
pub struct ClientRules {
    version: Option<Version>,
    connected: bool,
    refused: Option<ReasonCode>,
    /// QoS 1 and 2 PUBLISH packet ids sent and not yet acknowledged (a
    /// count each: a flood past 65535 reuses ids).
    unacked: Vec<(u16, usize)>,
    acked: usize,
    violations: Vec<Finding>,
}

impl ClientRules {
    /// A checker for a fresh connection.
    pub fn new() -> Self {
        ClientRules::default()
    }

    fn version(&self) -> Version {
        self.version.unwrap_or(Version::V311)
    }

    /// Records a violation: `what` names it (and goes into its signature,
    /// so it holds no run-specific numbers), `evidence` says what happened.
    fn flag(&mut self, statement: &Statement, what: String, evidence: String) {
        let rule = statement.rule(self.version());
        self.violations
            .push(Finding::protocol(rule, what, evidence));
    }

    /// Records a packet the broker sent.
    pub fn sent(&mut self, packet: &Packet) {
        match packet {
            Packet::Connack(c) if c.reason != ReasonCode::Success => self.refused = Some(c.reason),
            Packet::Publish(p) if p.qos != QoS::AtMostOnce => {
                match self.unacked.iter_mut().find(|(id, _)| *id == p.packet_id) {
                    Some((_, n)) => *n += 1,
                    None => self.unacked.push((p.packet_id, 1)),
                }
            }
            _ => {}
        }
    }

    /// Checks a packet the client sent; `version` is the connection's.
    pub fn received(&mut self, packet: &Packet, version: Version) {
        self.version = Some(version);
        let name = packet.packet_type();
        if let Some(reason) = self.refused {
            if !matches!(packet, Packet::Disconnect(_)) {
                self.flag(
                    &AFTER_REFUSED_CONNACK,
                    format!("sent {name} after a CONNACK that refused the connection"),
                    format!("the client sent {name} after our CONNACK refused the connection ({reason:?})"),
                );
            }
            return;
        }
        match packet {
            Packet::Connect(_) if self.connected => self.flag(
                &SECOND_CONNECT,
                "sent a second CONNECT on the same connection".into(),
                "the client sent CONNECT again on a connection it had connected".into(),
            ),
            Packet::Connect(_) => self.connected = true,
            _ if !self.connected => self.flag(
                &FIRST_PACKET_CONNECT,
                format!("sent {name} as its first packet, before CONNECT"),
                format!("the client's first packet was {name}"),
            ),
            Packet::Puback(a) | Packet::Pubrec(a) => {
                match self.unacked.iter().position(|(id, _)| *id == a.packet_id) {
                    Some(i) => {
                        self.acked += 1;
                        if let Some((_, n)) = self.unacked.get_mut(i) {
                            *n -= 1;
                            if *n == 0 {
                                self.unacked.swap_remove(i);
                            }
                        }
                    }
                    None => self.flag(
                        &ACK_SAME_ID,
                        format!("sent {name} for a packet id no unacknowledged PUBLISH of ours carried"),
                        format!(
                            "the client sent {name} for packet id {}, which no QoS 1/2 PUBLISH of ours carried (or which it had already acknowledged)",
                            a.packet_id
                        ),
                    ),
                }
            }
            _ => {}
        }
    }

    /// How many of our QoS 1/2 PUBLISHes the client acknowledged.
    pub fn acked(&self) -> usize {
        self.acked
    }

    /// The client stayed connected for `waited` after the broker sent it a
    /// malformed packet (`what`).
    pub fn stayed_after_malformed(&mut self, what: &str, waited: std::time::Duration) {
        self.flag(
            &CLOSE_ON_VIOLATION,
            format!("kept the connection open after receiving {what}"),
            format!("the client was still connected {waited:?} after we sent it {what}"),
        );
    }

    /// The client sent a packet the codec rejects.
    pub fn malformed(&mut self, spec: Option<&'static str>, error: &str) {
        let rule = malformed_rule(spec, error);
        // The error's byte offset depends on the stream, not on the bug.
        let kind = error.split_once(": ").map_or(error, |(_, rest)| rest);
        self.violations.push(Finding::protocol(
            rule,
            format!("sent a malformed packet ({kind})"),
            format!("the client sent a packet our codec rejects: {error}"),
        ));
    }

    /// The violations seen so far, in order (taken: the checker keeps
    /// watching).
    pub fn take(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.violations)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::hostile::packets;

    fn ids(rules: &mut ClientRules) -> Vec<String> {
        rules
            .take()
            .into_iter()
            .map(|f| f.rule.map(|r| r.id).unwrap_or_default())
            .collect()
    }

    #[test]
    fn subscribe_after_a_refused_connack_is_flagged_with_its_rule() {
        let mut r = ClientRules::new();
        r.received(&packets::connect("c").unwrap(), Version::V311);
        r.sent(&packets::connack(ReasonCode::ServerUnavailable));
        r.received(
            &packets::subscribe(1, "t", QoS::AtMostOnce).unwrap(),
            Version::V311,
        );
        let f = r.take();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule.as_ref().unwrap().id, "MQTT-3.2.2-5");
        assert!(
            f[0].title.contains("sent SUBSCRIBE after a CONNACK"),
            "{}",
            f[0].title
        );
        assert!(f[0].report.contains("ServerUnavailable"), "{}", f[0].report);
        // The same in MQTT 5 names 5.0's statement.
        let mut r = ClientRules::new();
        r.received(&packets::connect("c").unwrap(), Version::V5);
        r.sent(&packets::connack(ReasonCode::ServerUnavailable));
        r.received(
            &packets::subscribe(1, "t", QoS::AtMostOnce).unwrap(),
            Version::V5,
        );
        assert_eq!(ids(&mut r), ["MQTT-3.1.4-6"]);
    }

    #[test]
    fn a_well_behaved_client_breaks_nothing() {
        let mut r = ClientRules::new();
        r.received(&packets::connect("c").unwrap(), Version::V311);
        r.sent(&packets::connack(ReasonCode::Success));
        r.received(
            &packets::subscribe(1, "t", QoS::AtLeastOnce).unwrap(),
            Version::V311,
        );
        r.sent(&packets::publish("t", QoS::AtLeastOnce, 9).unwrap());
        r.received(&Packet::Puback(packets::ack(9)), Version::V311);
        r.received(&Packet::Disconnect(Default::default()), Version::V311);
        assert!(ids(&mut r).is_empty());
    }

    #[test]
    fn acks_for_unknown_ids_second_connects_and_late_connects_are_flagged() {
        let mut r = ClientRules::new();
        r.received(&Packet::Pingreq, Version::V311);
        r.received(&packets::connect("c").unwrap(), Version::V311);
        r.received(&packets::connect("c").unwrap(), Version::V311);
        r.sent(&packets::publish("t", QoS::AtLeastOnce, 3).unwrap());
        r.received(&Packet::Puback(packets::ack(3)), Version::V311);
        r.received(&Packet::Puback(packets::ack(3)), Version::V311);
        assert_eq!(
            ids(&mut r),
            ["MQTT-3.1.0-1", "MQTT-3.1.0-2", "MQTT-2.3.1-6"]
        );
    }
}
