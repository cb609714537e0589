//! Hostile peers: black-box tests of other people's MQTT clients and
//! brokers over TLS.
//!
//! - The hostile broker ([`campaign`], [`scenario`], [`server`]) misbehaves
//!   on purpose, one named [`Scenario`] at a time, against an external
//!   client started from a command template ([`runner`]), then serves it
//!   plainly, and judges it against a correct client ([`outcome`]):
//!   RECOVERED or GAVE UP pass; STUCK, CRASHED, sanitizer reports and leaks
//!   ([`sanitizer`], [`leak_check`]) and broken protocol rules
//!   ([`protocol`]) are findings; a stuck client is named by where its
//!   threads wait ([`stuck`]).
//! - The probe ([`probe`]) attacks an external broker with malformed
//!   packets, dropped connections, cut QoS 2 flows, broken and half-open
//!   handshakes and oversize packets, each followed by a liveness check;
//!   deviations from the specification are protocol findings, and the
//!   broker's own sanitizer reports are read when the probe starts it.
//! - A target linked with the shim (`docs/shim.md`) writes the ledger's
//!   view of its own message and aio lifecycles; [`shim`] turns that report
//!   into findings of the run, next to the sanitizer's.
//! - Every [`finding`] has a stable signature: a [`verdict`] counts each
//!   once, with its rates over scenarios and repeats, and [`compare`] says
//!   what a change fixed and what it introduced.
//!
//! The seed bug of the project (NanoMQ 1766) lived in a C client SDK whose
//! CI never ran its client over TLS against a broker that closes before the
//! SUBACK: [`Scenario::CloseBeforeSuback`] is that broker.

pub mod address;
pub mod broker_process;
pub mod campaign;
pub mod compare;
mod error;
pub mod finding;
pub mod io;
pub mod leak_check;
pub mod outcome;
pub mod packets;
pub mod probe;
pub mod protocol;
pub mod raw_client;
pub mod report;
pub mod runner;
pub mod sanitizer;
pub mod scenario;
pub mod server;
pub mod session;
pub mod shim;
pub mod stuck;
pub mod verdict;

pub use error::{HostileError, temp_dir};
pub use scenario::Scenario;
