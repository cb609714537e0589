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
pub const TOPICS: [&str; 3] = ["t/a", "t/b", "s"];

/// Filters subscriptions use (`w/#` catches the wills).
pub const FILTERS: [&str; 5] = ["t/#", "t/a", "+/b", "#", "w/#"];

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

fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![Just(Dir::Up), Just(Dir::Down)]
}

/// Any single action.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (
            client(),
            prop_oneof![Just(Version::V311), Just(Version::V5)],
            prop_oneof![Just(Session::Clean), Just(Session::Persistent)],
            any::<bool>(),
        )
            .prop_map(|(client, version, session, will)| Action::Connect {
                client,
                version,
                session,
                will
            }),
        1 => client().prop_map(|client| Action::Reconnect { client }),
        3 => (client(), proptest::sample::select(&FILTERS[..]), 0..3u8)
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
