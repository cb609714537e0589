//! The reference broker's kernel: sessions, the subscription tree, fan-out,
//! the retained store, wills and takeover, driven by bytes and transport
//! events (no I/O).

pub mod topic_tree;
