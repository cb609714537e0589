//! Hostile peers: black-box tests of other people's MQTT clients and
//! brokers over TLS.
//!
//! - The hostile broker ([`campaign`], [`scenario`], [`server`]) misbehaves
//!   on purpose, one named [`Scenario`] at a time, against an external
//!   client started from a command template ([`runner`]), and classifies
//!   how the client ended: clean exit or error, crash, sanitizer report,
//!   hang.
//! - The probe ([`probe`]) attacks an external broker with malformed
//!   packets, dropped connections, cut QoS 2 flows, broken and half-open
//!   handshakes and oversize packets, each followed by a liveness check.
//!
//! The seed bug of the project (NanoMQ 1766) lived in a C client SDK whose
//! CI never ran its client over TLS against a broker that closes before the
//! SUBACK: [`Scenario::CloseBeforeSuback`] is that broker.

pub mod address;
pub mod campaign;
mod error;
pub mod finding;
pub mod io;
pub mod packets;
pub mod probe;
pub mod raw_client;
pub mod report;
pub mod runner;
pub mod sanitizer;
pub mod scenario;
pub mod server;
pub mod session;

pub use error::HostileError;
pub use scenario::Scenario;
