//! mqtls-harness: a memory-safety regression and fuzzing harness for MQTT over TLS.
//!
//! Layers, bottom up:
//! - [`sync`]: the std/loom switch every shared primitive goes through;
//! - [`ledger`]: counted message handles and operations, checked on every run;
//! - [`codec`]: MQTT 3.1.1 and 5.0 packets and the streaming frame decoder;
//! - [`tls`]: rustls configurations from PEM files or an in-memory test PKI;
//! - [`hostile`]: hostile brokers and probes against external MQTT peers;
//! - [`soak`]: mixed load with slow, stopped and flapping consumers, RSS over time;
//! - [`cli`]: the `mqtls` command line;
//! - [`fuzzing`]: the cargo-fuzz entry points (`fuzz/`), replayed by `cargo test`.
#![warn(missing_docs)]

pub mod broker;
pub mod cli;
pub mod client;
pub mod codec;
pub mod e2e;
pub mod faults;
pub mod fuzzing;
pub mod hostile;

pub mod kernels;
pub mod ledger;
pub mod lifecycle;
pub mod net;
pub mod report;
#[cfg(all(feature = "shuttle", not(feature = "loom")))]
pub mod schedules;
pub mod sim;
pub mod soak;
pub mod sync;
pub mod tls;
pub mod zoo;
