//! Errors of the network shell (server, client library, sub/pub).

use crate::client::ClientError;
use crate::codec::ReasonCode;
use crate::ledger::Outcome;
use crate::tls::TlsError;
use std::time::Duration;
use thiserror::Error;

/// Why a network operation of the broker shell or the client library failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    /// The listening socket could not be opened.
    #[error(
        "cannot listen on {addr}: {source} (is another broker running there? pick another port with -p/--port, or 0 for any free one)"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TCP connection to the broker could not be opened.
    #[error(
        "cannot connect to {addr}: {source} (is the broker running and listening there? check -h and -p)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built, or the handshake failed.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A step did not finish within its time bound.
    #[error(
        "{what} did not finish within {limit:?}: the peer is slow or unresponsive (a TLS port spoken to without -s, or a plain port with -s, looks like this too)"
    )]
    Timeout {
        /// The step, for example `the TLS handshake`.
        what: &'static str,
        /// The bound.
        limit: Duration,
    },
    /// The broker refused the connection in its CONNACK.
    #[error(
        "the broker refused the connection: {0:?} (check the client id, the protocol version -V, and the credentials the broker expects)"
    )]
    Refused(ReasonCode),
    /// The broker refused a subscription.
    #[error(
        "the broker refused the subscription to `{filter}` ({code:#04x}): check the topic filter and that the broker allows it"
    )]
    SubscriptionRefused {
        /// The filter.
        filter: String,
        /// The SUBACK return code.
        code: u8,
    },
    /// A plain MQTT client reached a port that speaks TLS: the broker
    /// answered its CONNECT with a TLS record.
    #[error(
        "{addr} speaks TLS: it answered the plain MQTT CONNECT with {answer}. Connect with TLS (add -s --cafile CA.pem, the CA that signed the broker's certificate), or use the broker's plain port (1883 by default)"
    )]
    PlainToTlsPort {
        /// The address connected to.
        addr: String,
        /// What came back, for example `a TLS alert`.
        answer: String,
    },
    /// A TLS client reached a port that does not seem to speak TLS: the
    /// handshake ended without a TLS answer.
    #[error(
        "{addr} does not seem to speak TLS: the TLS handshake ended without a TLS answer ({what}). Drop -s and --cafile to speak plain MQTT there, or connect to the broker's TLS port (8883 by default)"
    )]
    TlsToPlainPort {
        /// The address connected to.
        addr: String,
        /// What the handshake got instead, for example `connection reset
        /// by the broker`.
        what: String,
    },
    /// A plain connection closed before the broker's CONNACK.
    #[error(
        "the connection to {addr} closed before the broker's CONNACK ({why}): if that port speaks TLS (a TLS broker drops plain clients like this), add -s --cafile CA.pem; otherwise the broker's log says why it refused"
    )]
    ClosedBeforeConnack {
        /// The address connected to.
        addr: String,
        /// How it closed.
        why: String,
    },
    /// The connection ended under the operation.
    #[error("the connection to the broker closed: {0}")]
    Closed(String),
    /// The operation ended without success.
    #[error("the {what} did not succeed: {outcome}")]
    Failed {
        /// The operation, for example `subscribe`.
        what: &'static str,
        /// How it ended.
        outcome: Outcome,
    },
    /// The client kernel refused the request.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// A socket read or write failed.
    #[error("network I/O failed: {0}")]
    Io(#[from] std::io::Error),
}
