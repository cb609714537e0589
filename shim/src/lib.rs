//! mqtls-shim: the mqtls-harness ledger inside a C target.
//!
//! Linked into a NanoNNG program with `-Wl,--wrap=nni_msg_alloc,...` (the
//! list is [`wrapped`]), the shim sees every message allocation, clone and
//! free, every aio's message slot, and every operation's begin, schedule,
//! finish, wait and cancel, and mirrors them in the project's own
//! [`Ledger`](mqtls_harness::ledger::Ledger): the same checks, diagnoses,
//! JSON and timelines as the Rust side, made on the C code while it runs.
//! It adds what only the C view has: a message freed while an aio slot still
//! points at it (NanoMQ 1766 on an ordinary subscribe, where ASan sees
//! nothing), an aio used after it was freed, and a waiter stuck past its
//! operation's timeout (nanonng-1578).
//!
//! The report is written when the process exits, when it gets a stop signal
//! (SIGTERM or SIGINT, then it dies of that signal as it would have), and
//! when a sanitizer reports; see [`config`] for the settings and
//! `docs/shim.md` for building a target with it and what the wrappers cannot
//! see.

#![warn(missing_docs)]

pub mod config;
mod ffi;
pub mod report;
pub mod sites;
pub mod suppress;
mod sync;
mod threads;
pub mod tracker;

/// Every NanoNNG function the shim wraps (`shim/wrapped.txt`, which the
/// target build script reads too): link the target with `-Wl,--wrap=` each.
pub fn wrapped() -> impl Iterator<Item = &'static str> {
    include_str!("../wrapped.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    /// The list and the C wrappers agree: a name without its `__wrap_`
    /// would fail the target's link, a wrapper without its name would never
    /// be called.
    #[test]
    fn every_wrapped_name_has_its_wrapper_and_no_wrapper_is_unlisted() {
        let c = include_str!("../c/wraps.c");
        let names: Vec<&str> = super::wrapped().collect();
        assert!(names.len() >= 20, "{names:?}");
        for name in &names {
            assert!(
                c.contains(&format!("\n__wrap_{name}(")),
                "no __wrap_{name} in c/wraps.c"
            );
        }
        for line in c.lines() {
            if let Some(rest) = line.strip_prefix("__wrap_") {
                let name = rest.split('(').next().unwrap_or("");
                assert!(names.contains(&name), "__wrap_{name} is not in wrapped.txt");
            }
        }
    }
}
