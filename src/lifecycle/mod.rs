//! Lifecycle sequences against a reference model: the actions, the model
//! of what MQTT promises, the system-under-test driver and the runner that
//! checks one against the other.
//!
//! The property tests (`tests/prop_lifecycle.rs`, and over real TLS
//! `tests/prop_lifecycle_tls.rs`) and the detection
//! matrix's `sequences` engine both run these, with proptest generating and
//! shrinking the sequences.

pub mod action;
pub mod driver;
pub mod model;
pub mod run;
pub mod search;
pub mod tls_driver;
