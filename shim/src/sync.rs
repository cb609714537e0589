//! The shim's own locks.
//!
//! The harness takes every primitive from `mqtls_harness::sync`, so that loom
//! and shuttle can swap them for model-checked ones. The shim is never model
//! checked: it runs inside a C program, where the facade's scheduled types
//! would only cost every wrapped call a check. Its own state uses std's
//! primitives, from here; the ledger it drives keeps the facade's.

pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the data if a holder panicked (a panic in a hook
/// is swallowed at the C boundary; the next hook must still work).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
