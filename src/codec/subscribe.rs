//! SUBSCRIBE: packet identifier, MQTT 5 properties, and one or more topic
//! filters each with its subscription options.

use super::properties::{
    PropertyBlock, PropertyId as P, UserProperty, once, put, read_block, read_subscription_id,
    read_user, write_block,
};
use super::read::Reader;
use super::string::{MqttString, wildcard_lanes};
use super::topic::{SHARE_PREFIX, check_topic_filter, is_shared};
use super::write::Sink;
use super::{CodecError, PacketType, QoS, Version, spec};
use serde::Serialize;

const PT: PacketType = PacketType::Subscribe;

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscribe {
    /// Packet Identifier, non-zero.
    pub packet_id: u16,
    /// The subscriptions, at least one.
    pub filters: Vec<Subscription>,
    /// MQTT 5 properties (must be empty for 3.1.1).
    pub properties: SubscribeProperties,
}

/// One topic filter and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// The topic filter (wildcards allowed where the rules allow them).
    pub filter: MqttString,
    /// The subscription options.
    pub options: SubscriptionOptions,
}

/// Subscription options (3.1.1 has only the QoS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (MQTT 5; not on shared subscriptions).
    pub no_local: bool,
    /// Retain As Published (MQTT 5).
    pub retain_as_published: bool,
    /// Retain Handling (MQTT 5).
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent for a new subscription (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe time.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist.
    SendIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// SUBSCRIBE properties (MQTT 5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SubscribeProperties {
    /// Subscription Identifier (0x0B), 1 to 268 435 455.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_identifier: Option<u32>,
    /// User Properties (0x26).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<UserProperty>,
}

/// Checks a topic filter field at `offset` (0 when encoding).
pub(crate) fn filter_at(f: &MqttString, offset: usize, version: Version) -> Result<(), CodecError> {
    check_topic_filter(f, version).map_err(|problem| CodecError::InvalidTopicFilter {
        offset,
        problem,
        spec: problem.spec(version, true),
    })
}

/// True if `f` is certainly a valid topic filter in `v` without the full
/// check: no shared subscription, and `+` and `#` (if any) placed by the
/// rules (MQTT-4.7.1-2/-3 in 3.1.1, MQTT-4.7.1-1/-2 in 5.0). `false` means
/// "run the full check", which reports what is wrong.
#[inline]
pub(crate) fn is_plain_filter(f: &MqttString, v: Version) -> bool {
    let b: &[u8] = f.as_bytes();
    if b.is_empty() || (v == Version::V5 && b.starts_with(SHARE_PREFIX.as_bytes())) {
        return false;
    }
    // Each wildcard must fill its level, `#` the last one. Filters are
    // short and most have a wildcard or two: find them a word at a time
    // and look at their neighbours only.
    let fills_level = |i: usize| {
        (i == 0 || b.get(i - 1) == Some(&b'/'))
            && match b.get(i) {
                Some(b'#') => i + 1 == b.len(),
                _ => b.get(i + 1).is_none_or(|&next| next == b'/'),
            }
    };
    let word_ok = |base: usize, w: [u8; 8]| {
        let mut lanes = wildcard_lanes(u64::from_le_bytes(w));
        while lanes != 0 {
            if !fills_level(base + (lanes.trailing_zeros() / 8) as usize) {
                return false;
            }
            lanes &= lanes - 1;
        }
        true
    };
    let (words, tail) = b.as_chunks::<8>();
    if !words.iter().enumerate().all(|(k, w)| word_ok(8 * k, *w)) {
        return false;
    }
    match b.last_chunk::<8>() {
        _ if tail.is_empty() => true,
        // Overlapping the words before: a wildcard seen twice is simply
        // checked twice.
        Some(last) => word_ok(b.len() - 8, *last),
        None => {
            let mut w = [b'a'; 8];
            for (to, from) in w.iter_mut().zip(tail) {
                *to = *from;
            }
            word_ok(0, w)
        }
    }
}

/// Reads a non-zero packet identifier of SUBSCRIBE or UNSUBSCRIBE.
pub(crate) fn request_packet_id(r: &mut Reader<'_>, pt: PacketType) -> Result<u16, CodecError> {
    let at = r.pos();
    match r.u16("packet identifier")? {
        0 => Err(CodecError::ZeroPacketId {
            offset: at,
            packet_type: pt,
            spec: Some(spec(r.version, "MQTT-2.3.1-1", "MQTT-2.2.1-3")),
        }),
        id => Ok(id),
    }
}

impl SubscriptionOptions {
    fn decode(b: u8, offset: usize, v: Version) -> Result<Self, CodecError> {
        let reserved = match v {
            Version::V311 => 0xfc,
            Version::V5 => 0xc0,
        };
        if b & reserved != 0 {
            return Err(CodecError::ReservedBitSet {
                offset,
                what: "subscription options",
                spec: Some(spec(v, "MQTT-3.8.3-4", "MQTT-3.8.3-5")),
            });
        }
        let qos = QoS::from_u8(b & 0x03).ok_or(CodecError::InvalidQos {
            offset,
            what: "requested QoS",
            spec: (v == Version::V311).then_some("MQTT-3.8.3-4"),
        })?;
        let retain_handling = match (b >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(CodecError::InvalidRetainHandling { offset }),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }

    fn encode(&self, v: Version) -> Result<u8, CodecError> {
        if v == Version::V311
            && (self.no_local
                || self.retain_as_published
                || self.retain_handling != RetainHandling::SendAtSubscribe)
        {
            return Err(CodecError::NotInVersion {
                offset: 0,
                packet_type: PT,
                what: "subscription options other than QoS",
                version: v,
            });
        }
        Ok((self.qos as u8)
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4))
    }
}

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let v = r.version;
        let packet_id = request_packet_id(r, PT)?;
        let properties = match v {
            Version::V5 => SubscribeProperties::read(r)?,
            Version::V311 => SubscribeProperties::default(),
        };
        if r.is_empty() {
            return Err(CodecError::EmptyPayload {
                offset: r.pos(),
                packet_type: PT,
                spec: Some(spec(v, "MQTT-3.8.3-3", "MQTT-3.8.3-2")),
            });
        }
        // The capacity the first push would give, without the growth path.
        let mut filters = Vec::with_capacity(4);
        while !r.is_empty() {
            let at = r.pos() + 2;
            let filter = r.string("topic filter")?;
            if !is_plain_filter(&filter, v) {
                filter_at(&filter, at, v)?;
            }
            let opt_at = r.pos();
            let options = SubscriptionOptions::decode(r.u8("subscription options")?, opt_at, v)?;
            if options.no_local && v == Version::V5 && is_shared(&filter) {
                return Err(CodecError::NoLocalOnSharedSubscription { offset: opt_at });
            }
            filters.push(Subscription { filter, options });
        }
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn encode<S: Sink>(&self, v: Version, s: &mut S) -> Result<(), CodecError> {
        let invalid = |what, why| CodecError::InvalidField {
            offset: 0,
            packet_type: PT,
            what,
            why,
        };
        if self.packet_id == 0 {
            return Err(invalid("packet_id", "must be non-zero"));
        }
        if self.filters.is_empty() {
            return Err(invalid("filters", "must hold at least one subscription"));
        }
        s.u16(self.packet_id);
        match v {
            Version::V5 => write_block(s, &self.properties, PT)?,
            Version::V311 if self.properties != SubscribeProperties::default() => {
                return Err(CodecError::NotInVersion {
                    offset: 0,
                    packet_type: PT,
                    what: "properties",
                    version: v,
                });
            }
            Version::V311 => {}
        }
        for sub in &self.filters {
            filter_at(&sub.filter, 0, v)?;
            if sub.options.no_local && v == Version::V5 && is_shared(&sub.filter) {
                return Err(invalid(
                    "no_local",
                    "must be false on a shared subscription (MQTT-3.8.3-4)",
                ));
            }
            s.string(&sub.filter);
            s.u8(sub.options.encode(v)?);
        }
        Ok(())
    }
}

impl SubscribeProperties {
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut p = SubscribeProperties::default();
        read_block(r, PT, |id, r, off| {
            match id {
                P::SubscriptionIdentifier => once(
                    &mut p.subscription_identifier,
                    read_subscription_id(r)?,
                    id,
                    off,
                )?,
                P::UserProperty => p.user_properties.push(read_user(r)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(p)
    }
}

impl PropertyBlock for SubscribeProperties {
    fn emit<S: Sink>(&self, s: &mut S, pt: PacketType) -> Result<(), CodecError> {
        if let Some(id) = self.subscription_identifier {
            put::subscription_id(s, id, pt)?;
        }
        put::users(s, &self.user_properties);
        Ok(())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// The fast filter check against the full one on every string of up to
    /// seven bytes over `a / + #`, alone and after a prefix (so at every
    /// place in the 8-byte words it reads, lengths 0 to 17): it may say
    /// "not known" only for shared subscriptions, and never "valid" for an
    /// invalid filter.
    #[test]
    fn plain_filter_check_agrees_with_the_full_check() {
        let alphabet = [b'a', b'/', b'+', b'#'];
        for v in [Version::V311, Version::V5] {
            for len in 0..=7u32 {
                for n in 0..4usize.pow(len) {
                    let body: String = (0..len)
                        .map(|i| char::from(alphabet[n / 4usize.pow(i) % 4]))
                        .collect();
                    for f in [
                        body.clone(),
                        format!("$share/g/{body}"),
                        format!("level/one/{body}"),
                    ] {
                        let s = MqttString::new(f.as_str()).unwrap();
                        let full = check_topic_filter(&f, v).is_ok();
                        let fast = is_plain_filter(&s, v);
                        let shared = v == Version::V5 && f.starts_with(SHARE_PREFIX);
                        assert!(!fast || full, "{v} {f:?}");
                        assert!(shared || fast == full, "{v} {f:?}");
                    }
                }
            }
        }
    }
}
