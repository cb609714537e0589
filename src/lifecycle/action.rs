//! The steps a lifecycle sequence is made of, and how proptest generates
//! them.
//!
//! Actions are generated without preconditions: one that does not apply
//! in the current state (a write on a link with nothing queued, a
//! reconnect of a client that is connected) is a no-op for the model and
//! the system alike, so shrinking may drop any step and still replay.

use crate::codec::Version;
pub use crate::sim::Dir;
use proptest::prelude::*;

/// Client slots a sequence uses (client ids `c0`, `c1`, `c2`).
pub const CLIENTS: u8 = 3;

/// Topics publishes go to.
pub const TOPICS: [&str; 4] = ["t/a", "t/b", "s", EXPIRING_TOPIC];

/// MQTT 5 publishes to this topic carry a Message Expiry Interval of
/// [`EXPIRY_SECS`].
pub const EXPIRING_TOPIC: &str = "e";

/// The Message Expiry Interval of publishes to [`EXPIRING_TOPIC`].
pub const EXPIRY_SECS: u32 = 2;

/// Filters subscriptions use (`w/#` catches the wills; `$share/g/t/#` is a
/// shared group).
pub const FILTERS: [&str; 7] = ["t/#", "t/a", "+/b", "#", "w/#", "e", SHARED_FILTER];

/// The shared group of the sequences: drawn more often than the other
/// filters, since it takes two members to make a group.
pub const SHARED_FILTER: &str = "$share/g/t/#";

/// The Will Delay Interval of a delayed will (MQTT 5).
pub const WILL_DELAY_SECS: u32 = 2;

/// The Session Expiry Interval of an [`Session::Expiring`] session: shorter
/// than [`WILL_DELAY_SECS`], so its delayed will goes at session end
/// (mosquitto CVE-2019-11778's case).
pub const SHORT_SESSION_SECS: u32 = 1;

/// How long a request waits for its acknowledgement in these runs.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;

/// Whether a connection starts a fresh session or resumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// 3.1.1 clean session, MQTT 5 clean start with expiry 0: the session
    /// ends with the connection.
    Clean,
    /// 3.1.1 clean session 0, MQTT 5 clean start 0 with an expiry of an
    /// hour: the session outlives the connection.
    Persistent,
    /// MQTT 5 clean start 0 with an expiry of [`SHORT_SESSION_SECS`]: the
    /// session ends soon after its connection unless the client is back
    /// (3.1.1: as `Persistent`).
    Expiring,
}

/// One step of a sequence. `client` is a slot index; a client's writes and
/// drops act on its current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new client kernel connects as `c{client}`; if that id is
    /// connected already this is a session takeover.
    Connect {
        /// Slot.
        client: u8,
        /// Protocol version.
        version: Version,
        /// Clean or persistent session.
        session: Session,
        /// Whether CONNECT carries a will (topic `w/c{client}`, QoS 1).
        will: bool,
        /// Whether the will waits [`WILL_DELAY_SECS`] (MQTT 5).
        will_delay: bool,
    },
    /// The client's kernel opens a new connection after it lost its last
    /// one (kept QoS 1/2 publishes are sent again).
    Reconnect {
        /// Slot.
        client: u8,
    },
    /// SUBSCRIBE to one filter.
    Subscribe {
        /// Slot.
        client: u8,
        /// Topic filter.
        filter: &'static str,
        /// Requested QoS.
        qos: u8,
    },
    /// UNSUBSCRIBE from one filter.
    Unsubscribe {
        /// Slot.
        client: u8,
        /// Topic filter.
        filter: &'static str,
    },
    /// PUBLISH a message with a payload unique to the run.
    Publish {
        /// Slot.
        client: u8,
        /// Topic.
        topic: &'static str,
        /// QoS.
        qos: u8,
        /// Retain flag.
        retain: bool,
    },
    /// The next write on the client's connection starts and stays in
    /// flight.
    WriteStarts {
        /// Slot.
        client: u8,
        /// Client to broker or back.
        dir: Dir,
    },
    /// The write in flight (or the next one) completes: its bytes arrive.
    WriteCompletes {
        /// Slot.
        client: u8,
        /// Client to broker or back.
        dir: Dir,
    },
    /// The write in flight (or the next one) fails; the connection drops.
    WriteFails {
        /// Slot.
        client: u8,
        /// Client to broker or back.
        dir: Dir,
    },
    /// The client's connection drops abruptly (a write in flight fails).
    ConnectionDrops {
        /// Slot.
        client: u8,
    },
    /// The next write in `dir` starts, the connection drops under it, and
    /// only then does that write complete (`completes`) or fail: the close
    /// runs before the write's end instead of after.
    DropsMidWrite {
        /// Slot.
        client: u8,
        /// Client to broker or back.
        dir: Dir,
        /// The late write completes (true) or fails.
        completes: bool,
    },
    /// The clock moves on; requests older than the timeout time out.
    TimePasses {
        /// Milliseconds.
        ms: u64,
    },
    /// The caller cancels one of the client's waiting requests.
    Cancel {
        /// Slot.
        client: u8,
        /// Which waiting request (modulo their number).
        nth: u8,
    },
    /// Every queued byte is written until nothing moves.
    Settle,
    /// The broker goes down (every connection drops, its sessions and
    /// retained messages are gone) and a fresh one comes up.
    BrokerRestart,
}

fn client() -> impl Strategy<Value = u8> {
    0..CLIENTS
}

fn filter() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => proptest::sample::select(&FILTERS[..]),
        1 => Just(SHARED_FILTER),
    ]
}

fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![Just(Dir::Up), Just(Dir::Down)]
}

/// Any single action.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (
            client(),
            prop_oneof![Just(Version::V311), Just(Version::V5)],
            prop_oneof![
                2 => Just(Session::Clean),
                2 => Just(Session::Persistent),
                1 => Just(Session::Expiring)
            ],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(client, version, session, will, will_delay)| Action::Connect {
                client,
                version,
                session,
                will,
                will_delay,
            }),
        1 => client().prop_map(|client| Action::Reconnect { client }),
        3 => (client(), filter(), 0..3u8)
            .prop_map(|(client, filter, qos)| Action::Subscribe { client, filter, qos }),
        1 => (client(), proptest::sample::select(&FILTERS[..]))
            .prop_map(|(client, filter)| Action::Unsubscribe { client, filter }),
        4 => (client(), proptest::sample::select(&TOPICS[..]), 0..3u8, any::<bool>())
            .prop_map(|(client, topic, qos, retain)| Action::Publish {
                client,
                topic,
                qos,
                retain
            }),
        2 => (client(), dir()).prop_map(|(client, dir)| Action::WriteStarts { client, dir }),
        6 => (client(), dir()).prop_map(|(client, dir)| Action::WriteCompletes { client, dir }),
        1 => (client(), dir()).prop_map(|(client, dir)| Action::WriteFails { client, dir }),
        1 => client().prop_map(|client| Action::ConnectionDrops { client }),
        1 => (client(), dir(), any::<bool>()).prop_map(|(client, dir, completes)| {
            Action::DropsMidWrite { client, dir, completes }
        }),
        1 => prop_oneof![Just(1_000u64), Just(REQUEST_TIMEOUT_MS)]
            .prop_map(|ms| Action::TimePasses { ms }),
        1 => (client(), 0..4u8).prop_map(|(client, nth)| Action::Cancel { client, nth }),
        3 => Just(Action::Settle),
        1 => Just(Action::BrokerRestart),
    ]
}

/// A sequence of up to `max_len` actions.
pub fn sequence(max_len: usize) -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(action(), 1..=max_len)
}
