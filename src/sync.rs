//! The one place that names concurrency primitives.
//!
//! Every piece of shared kernel and ledger state uses these aliases, so that
//! `cargo test --features loom` swaps the whole crate onto loom's model-checked
//! types at once. Nothing else in the crate may import `std::sync` or
//! `std::thread` for shared state: a primitive that bypasses this module is an
//! interleaving loom can no longer see.
//!
//! Under the `shuttle` feature (on by default) the primitives are those of
//! [`schedule`]: shuttle's inside a shuttle execution (the schedule engine,
//! `crate::schedules`), std's everywhere else, decided when each one is built.
//! `loom` takes precedence when both are on (`--all-features`).
//!
//! tokio-rustls and the tokio shell need `std::sync::Arc` regardless of the
//! feature; they import it as [`StdArc`] from here, so that the exception is
//! visible in one place.

pub use std::sync::Arc as StdArc;
/// A std mutex whatever the feature: for bookkeeping outside the kernels
/// that must never be a scheduling point (the schedule engine's own record
/// of what an execution found).
pub use std::sync::Mutex as StdMutex;

#[cfg(not(any(feature = "loom", feature = "shuttle")))]
mod imp {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub use std::thread;
    pub use std::thread_local;
}

#[cfg(feature = "loom")]
mod imp {
    pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub use loom::thread;
    pub use loom::thread_local;
}

#[cfg(all(feature = "shuttle", not(feature = "loom")))]
pub mod schedule;
#[cfg(all(feature = "shuttle", not(feature = "loom")))]
use schedule as imp;
#[cfg(all(feature = "shuttle", not(feature = "loom")))]
pub use schedule::LocalKey;

pub use imp::*;

/// Locks a mutex, recovering the data if a previous holder panicked.
///
/// A panic inside a kernel critical section is already a reported failure;
/// poisoning every later lock would turn one finding into a cascade of
/// unrelated ones and hide the ledger's own report.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
