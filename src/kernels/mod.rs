//! Lifecycle kernels shared by every engine (DESIGN.md section 3).
//!
//! Synchronous, thread-safe, no I/O: the tokio shell, the in-memory
//! transport, loom, the fuzzer and proptest all drive these same types, so a
//! fix or a fault in them is seen by every engine.

pub mod budget;
pub mod frame;
pub mod outbox;
pub mod pending;
pub mod topic_alias;
