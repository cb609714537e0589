//! The hostile broker's catalogue: each scenario's name, what it does, and
//! its server-side script.
//!
//! A scenario misbehaves on the first connection only (the reconnect storm
//! on its first few); every later connection is served by a plain broker
//! that grants the subscription and publishes one message on its topic, so
//! that a client which survives and reconnects can finish cleanly instead
//! of being killed as a hang.

use super::finding::Finding;
use super::io::Shaping;
use super::packets;
use super::session::{Ended, Session};
use crate::codec::{QoS, ReasonCode};
use serde::Serialize;
use std::time::Duration;

/// The SUBSCRIBE of NanoNNG 1578/1505 (ZOO.md, `nanonng-1505`): its second
/// filter claims 100 bytes where 3 remain.
pub const ZOO_1505: [u8; 14] = [
    0x82, 0x0c, 0x00, 0x01, 0x00, 0x02, 0x74, 0x30, 0x00, 0x00, 0x64, 0x78, 0x78, 0x00,
];

/// One way of misbehaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
#[non_exhaustive]
pub enum Scenario {
    /// Close right after reading SUBSCRIBE, before the SUBACK (the seed).
    CloseBeforeSuback,
    /// Cut the SUBACK's TLS record in the middle, then close.
    CutMidRecord,
    /// TCP reset instead of close_notify after SUBSCRIBE.
    ResetAfterSubscribe,
    /// SUBACK after a delay longer than the client's subscribe timeout.
    LateSuback,
    /// SUBACK with a packet identifier the client never used.
    SubackUnknownId,
    /// The SUBACK twice.
    DuplicateSuback,
    /// CONNACK cut short.
    ConnackTruncated,
    /// CONNACK with an invalid remaining length.
    ConnackBadLength,
    /// SUBACK cut short.
    SubackTruncated,
    /// SUBACK with an invalid remaining length.
    SubackBadLength,
    /// The ZOO.md bytes sent in place of the SUBACK.
    Zoo1505Bytes,
    /// The ZOO.md bytes with a SUBACK header: reason codes no SUBACK has.
    SubackBadCodes,
    /// QoS 1 PUBLISH flood beyond the receive maximum.
    PublishFlood,
    /// Every byte in its own TCP segment and every MQTT byte in its own record.
    Trickle,
    /// Refuse the first connections, then accept.
    RefuseThenAccept,
}

impl From<Scenario> for &'static str {
    fn from(s: Scenario) -> Self {
        s.name()
    }
}

impl Scenario {
    /// Every scenario, in the order `--all` runs them.
    pub const ALL: [Scenario; 15] = [
        Scenario::CloseBeforeSuback,
        Scenario::CutMidRecord,
        Scenario::ResetAfterSubscribe,
        Scenario::LateSuback,
        Scenario::SubackUnknownId,
        Scenario::DuplicateSuback,
        Scenario::ConnackTruncated,
        Scenario::ConnackBadLength,
        Scenario::SubackTruncated,
        Scenario::SubackBadLength,
        Scenario::Zoo1505Bytes,
        Scenario::SubackBadCodes,
        Scenario::PublishFlood,
        Scenario::Trickle,
        Scenario::RefuseThenAccept,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::CloseBeforeSuback => "close-before-suback",
            Scenario::CutMidRecord => "cut-mid-record",
            Scenario::ResetAfterSubscribe => "reset-after-subscribe",
            Scenario::LateSuback => "late-suback",
            Scenario::SubackUnknownId => "suback-unknown-id",
            Scenario::DuplicateSuback => "duplicate-suback",
            Scenario::ConnackTruncated => "connack-truncated",
            Scenario::ConnackBadLength => "connack-bad-length",
            Scenario::SubackTruncated => "suback-truncated",
            Scenario::SubackBadLength => "suback-bad-length",
            Scenario::Zoo1505Bytes => "zoo-1505-bytes",
            Scenario::SubackBadCodes => "suback-bad-codes",
            Scenario::PublishFlood => "publish-flood",
            Scenario::Trickle => "trickle",
            Scenario::RefuseThenAccept => "refuse-then-accept",
        }
    }

    /// One line on what the broker does.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::CloseBeforeSuback => {
                "reads SUBSCRIBE, then closes (close_notify + FIN) before the SUBACK: the pending subscribe must finish with an error exactly once (NanoMQ 1766, the seed)"
            }
            Scenario::CutMidRecord => {
                "reads SUBSCRIBE, sends the first 8 bytes of the SUBACK's TLS record, then closes the TCP connection"
            }
            Scenario::ResetAfterSubscribe => {
                "reads SUBSCRIBE, then sends a TCP reset (SO_LINGER 0) instead of close_notify"
            }
            Scenario::LateSuback => {
                "holds the SUBACK for --suback-delay (past the client's subscribe timeout), then sends it and a PUBLISH"
            }
            Scenario::SubackUnknownId => {
                "answers SUBSCRIBE with a SUBACK for a packet id the client never used, then with the right one"
            }
            Scenario::DuplicateSuback => "sends the SUBACK twice, then a PUBLISH",
            Scenario::ConnackTruncated => {
                "sends a CONNACK cut short (`20 02 00`), then closes the TCP connection"
            }
            Scenario::ConnackBadLength => {
                "sends a CONNACK whose remaining length is a 5-byte varint (`20 ff ff ff ff 7f`)"
            }
            Scenario::SubackTruncated => {
                "answers SUBSCRIBE with a SUBACK cut short (`90 03` + packet id), then closes the TCP connection"
            }
            Scenario::SubackBadLength => {
                "answers SUBSCRIBE with a SUBACK whose remaining length is a 5-byte varint (`90 80 80 80 80 01`)"
            }
            Scenario::Zoo1505Bytes => {
                "answers SUBSCRIBE with the ZOO.md bytes `82 0c 00 01 00 02 74 30 00 00 64 78 78 00` (a SUBSCRIBE whose second filter claims 100 bytes)"
            }
            Scenario::SubackBadCodes => {
                "answers SUBSCRIBE with the ZOO.md bytes under a SUBACK header (`90 0c` + its packet id): reason codes 0x74, 0x30, 0x64, 0x78 that no SUBACK may carry"
            }
            Scenario::PublishFlood => {
                "grants the SUBACK, then sends --flood QoS 1 PUBLISHes (more than the client's receive maximum) without waiting for a PUBACK"
            }
            Scenario::Trickle => {
                "serves normally, but each MQTT byte goes in its own TLS record and each TLS byte in its own TCP write, 1 ms apart"
            }
            Scenario::RefuseThenAccept => {
                "refuses the first 3 connections with CONNACK `server unavailable`, then accepts (a reconnect storm)"
            }
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether connection `index` (0 first) of this scenario misbehaves.
    fn misbehaves_on(self, index: usize, settings: &Settings) -> bool {
        match self {
            Scenario::RefuseThenAccept => index < settings.refusals,
            _ => index == 0,
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The knobs of the scripts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long each read from the client may take before the script gives
    /// up on it (CONNECT, SUBSCRIBE).
    pub step: Duration,
    /// How long to watch the client's reaction after misbehaving.
    pub react: Duration,
    /// The SUBACK delay of `late-suback`.
    pub suback_delay: Duration,
    /// How many PUBLISHes `publish-flood` sends (at least the client's
    /// receive maximum + 10).
    pub flood: usize,
    /// How many connections `refuse-then-accept` refuses.
    pub refusals: usize,
    /// How long a connection is served plainly at most.
    pub serve_for: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            step: Duration::from_secs(5),
            react: Duration::from_secs(2),
            suback_delay: Duration::from_secs(5),
            flood: 1000,
            refusals: 3,
            serve_for: Duration::from_secs(10),
        }
    }
}

/// Upper bound on the flood, whatever the client's receive maximum.
const MAX_FLOOD: usize = 70_000;

/// What happened on one connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnRecord {
    /// 0 for the first connection.
    pub index: usize,
    /// True when this connection got the scenario's misbehaviour.
    pub misbehaved: bool,
    /// What the client did after the misbehaviour, when it could be watched.
    pub reaction: Option<String>,
    /// Everything that happened, in order.
    pub events: Vec<String>,
    /// The protocol rules the client broke on this connection (reported
    /// with the run's findings).
    #[serde(skip)]
    pub violations: Vec<Finding>,
}

impl ConnRecord {
    /// A connection that ended before its script started (e.g. in the TLS
    /// handshake).
    pub fn failed(index: usize, why: String) -> Self {
        ConnRecord {
            index,
            misbehaved: false,
            reaction: None,
            events: vec![why],
            violations: Vec::new(),
        }
    }

    fn ended(&mut self, ended: Ended) {
        self.events = ended.events;
        self.violations = ended.violations;
    }
}

/// Runs `scenario` on connection `index`, whose TLS handshake is done.
pub async fn run(
    scenario: Scenario,
    index: usize,
    mut s: Session,
    settings: &Settings,
) -> ConnRecord {
    let mut record = ConnRecord::failed(index, String::new());
    if let Err(e) = s.read_connect(settings.step).await {
        s.note(format!("client {e} before CONNECT"));
        record.ended(s.finish());
        return record;
    }
    if !scenario.misbehaves_on(index, settings) {
        if s.connack(ReasonCode::Success).await.is_ok() {
            s.serve_plain(settings.serve_for).await;
        }
        record.ended(s.close().await);
        return record;
    }
    let (ended, misbehaved, reaction) = misbehave(scenario, s, settings).await;
    record.ended(ended);
    record.misbehaved = misbehaved;
    record.reaction = reaction;
    record
}

/// The misbehaving part: returns the events, whether the misbehaviour
/// happened (the client may leave before it), and the client's reaction.
async fn misbehave(
    scenario: Scenario,
    mut s: Session,
    set: &Settings,
) -> (Ended, bool, Option<String>) {
    // Scenarios that strike before or at CONNACK.
    match scenario {
        Scenario::ConnackTruncated => {
            if let Err(e) = s.send_raw(&[0x20, 0x02, 0x00]).await {
                s.note(e);
                return (s.finish(), false, None);
            }
            let (reaction, _) = s.watch(set.react).await;
            return (s.drop_tcp(), true, Some(reaction));
        }
        Scenario::ConnackBadLength => {
            if let Err(e) = s.send_raw(&[0x20, 0xff, 0xff, 0xff, 0xff, 0x7f]).await {
                s.note(e);
                return (s.finish(), false, None);
            }
            let (reaction, stayed) = s.watch(set.react).await;
            if stayed {
                s.stayed_after_malformed("a CONNACK with a 5-byte remaining length", set.react);
            }
            return (s.close().await, true, Some(reaction));
        }
        Scenario::RefuseThenAccept => {
            if let Err(e) = s.connack(ReasonCode::ServerUnavailable).await {
                s.note(e);
                return (s.finish(), false, None);
            }
            let (reaction, _) = s.watch(set.react).await;
            return (s.close().await, true, Some(reaction));
        }
        Scenario::Trickle => return trickle(s, set).await,
        _ => {}
    }

    if let Err(e) = s.connack(ReasonCode::Success).await {
        s.note(e);
        return (s.finish(), false, None);
    }
    let sub = match s.read_subscribe(set.step).await {
        Ok(sub) => sub,
        Err(e) => {
            s.note(format!(
                "client {e} instead of subscribing; scenario not applied"
            ));
            return (s.finish(), false, None);
        }
    };
    let id = sub.packet_id;
    let [id_hi, id_lo] = id.to_be_bytes();
    let sent = match scenario {
        Scenario::CloseBeforeSuback => return (s.close().await, true, None),
        Scenario::ResetAfterSubscribe => return (s.reset(), true, None),
        Scenario::CutMidRecord => {
            // 8 bytes: the 5-byte record header and 3 bytes of a record
            // that is at least 22 bytes long (AEAD tag alone is 16).
            s.set_shaping(Shaping::CutAfter { bytes: 8 });
            let sent = s.send(&packets::suback_for(&sub, id)).await;
            s.note("the SUBACK record was cut after 8 bytes");
            return (s.drop_tcp(), sent.is_ok(), None);
        }
        Scenario::LateSuback => {
            s.note(format!("holding the SUBACK for {:?}", set.suback_delay));
            let (during, stayed) = s.watch(set.suback_delay).await;
            if !stayed {
                return (
                    s.finish(),
                    true,
                    Some(format!("during the delay: {during}")),
                );
            }
            s.grant(&sub, id).await
        }
        Scenario::SubackUnknownId => {
            let other = if id == u16::MAX { 1 } else { id + 1 };
            match s.send(&packets::suback_for(&sub, other)).await {
                Ok(()) => s.grant(&sub, id).await,
                Err(e) => Err(e),
            }
        }
        Scenario::DuplicateSuback => match s.send(&packets::suback_for(&sub, id)).await {
            Ok(()) => s.grant(&sub, id).await,
            Err(e) => Err(e),
        },
        Scenario::SubackTruncated => {
            let sent = s.send_raw(&[0x90, 0x03, id_hi, id_lo]).await;
            let (reaction, _) = s.watch(set.react).await;
            return (s.drop_tcp(), sent.is_ok(), Some(reaction));
        }
        Scenario::SubackBadLength => s.send_raw(&[0x90, 0x80, 0x80, 0x80, 0x80, 0x01]).await,
        Scenario::Zoo1505Bytes => s.send_raw(&ZOO_1505).await,
        Scenario::SubackBadCodes => {
            let mut bytes = ZOO_1505;
            bytes[0] = 0x90;
            bytes[2] = id_hi;
            bytes[3] = id_lo;
            s.send_raw(&bytes).await
        }
        Scenario::PublishFlood => flood(&mut s, &sub, set).await,
        Scenario::ConnackTruncated
        | Scenario::ConnackBadLength
        | Scenario::RefuseThenAccept
        | Scenario::Trickle => Ok(()),
    };
    if let Err(e) = sent {
        s.note(e);
        return (s.finish(), false, None);
    }
    let (reaction, stayed) = s.watch(set.react).await;
    if scenario == Scenario::PublishFlood {
        s.flood_delivered();
    }
    let malformed = match scenario {
        Scenario::SubackBadLength => Some("a SUBACK with a 5-byte remaining length"),
        Scenario::Zoo1505Bytes => {
            Some("a SUBSCRIBE (a packet only clients send) whose filter runs past its end")
        }
        Scenario::SubackBadCodes => Some("a SUBACK with reason codes no SUBACK may carry"),
        _ => None,
    };
    if let (true, Some(what)) = (stayed, malformed) {
        s.stayed_after_malformed(what, set.react);
    }
    // A client that survived and stayed is served plainly, so that it can
    // finish on its own; one still waiting for a message (it took a bad
    // SUBACK for a grant, or sat through a flood) gets one, so that STUCK
    // means stuck.
    if stayed {
        if !s.delivered_here() && s.deliver(&sub).await.is_ok() {
            s.note("the client stayed: published one message on its topic");
        }
        s.serve_plain(set.serve_for).await;
    }
    (s.close().await, true, Some(reaction))
}

async fn flood(
    s: &mut Session,
    sub: &crate::codec::Subscribe,
    set: &Settings,
) -> Result<(), String> {
    s.send(&packets::suback_for(sub, sub.packet_id)).await?;
    let count = set
        .flood
        .max(usize::from(s.receive_maximum().unwrap_or(0)) + 10)
        .min(MAX_FLOOD);
    let filter = sub
        .filters
        .first()
        .map(|f| f.filter.as_str().to_owned())
        .unwrap_or_default();
    let topic = packets::topic_matching(&filter);
    let mut wire = Vec::new();
    for _ in 0..count {
        // Packet ids 1..=65535, wrapping past 0 for floods above 65535.
        let id = s.next_packet_id();
        let p = packets::publish(&topic, QoS::AtLeastOnce, id).ok_or("cannot build PUBLISH")?;
        if let Some(bytes) = s.encode(&p) {
            wire.extend_from_slice(&bytes);
            s.record_sent(&p);
        }
    }
    s.send_raw_quiet(&wire).await?;
    s.note(format!(
        "sent {count} QoS 1 PUBLISHes without waiting for PUBACK"
    ));
    Ok(())
}

async fn trickle(mut s: Session, set: &Settings) -> (Ended, bool, Option<String>) {
    s.set_shaping(Shaping::Trickle {
        gap: Duration::from_millis(1),
    });
    s.note("trickling from here on");
    let connack = packets::connack(ReasonCode::Success);
    if let Err(e) = s.send_packets_bytewise(&[connack]).await {
        s.note(e);
        return (s.finish(), false, None);
    }
    s.note("sent CONNACK one byte per record");
    let sub = match s.read_subscribe(set.step).await {
        Ok(sub) => sub,
        Err(e) => {
            s.note(format!("client {e} instead of subscribing"));
            return (s.finish(), true, Some(format!("client {e}")));
        }
    };
    let topic = packets::topic_matching(
        sub.filters
            .first()
            .map(|f| f.filter.as_str())
            .unwrap_or_default(),
    );
    let wire: Vec<_> = [
        Some(packets::suback_for(&sub, sub.packet_id)),
        packets::publish(&topic, QoS::AtMostOnce, 0),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Err(e) = s.send_packets_bytewise(&wire).await {
        s.note(e);
        return (
            s.finish(),
            true,
            Some("client left during the trickle".to_owned()),
        );
    }
    s.note("sent SUBACK and PUBLISH one byte per record");
    let (reaction, stayed) = s.watch(set.react).await;
    if stayed {
        s.serve_plain(set.serve_for).await;
    }
    (s.close().await, true, Some(reaction))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
            assert!(!s.description().is_empty());
        }
        let mut names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Scenario::ALL.len());
        assert_eq!(Scenario::from_name("nope"), None);
    }

    #[test]
    fn the_zoo_bytes_are_the_ones_of_zoo_md() {
        let hex = crate::hostile::session::hex_spaced(&ZOO_1505);
        assert_eq!(hex, "82 0c 00 01 00 02 74 30 00 00 64 78 78 00");
    }
}
