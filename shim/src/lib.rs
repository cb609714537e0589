//! mqtls-shim: the mqtls-harness ledger inside a C target.
//!
//! Linked into a NanoNNG program with `-Wl,--wrap=nni_msg_alloc,...` (the
//! list is [`WRAPPED`]), the shim sees every message allocation, clone and
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
mod threads;
pub mod tracker;

/// Every NanoNNG function the shim wraps: link the target with
/// `-Wl,--wrap=` each of these.
pub const WRAPPED: &[&str] = &[
    "nni_msg_alloc",
    "nni_msg_free",
    "nni_msg_clone",
    "nni_msg_dup",
    "nni_msg_unique",
    "nni_msg_pull_up",
    "nni_aio_init",
    "nni_aio_fini",
    "nni_aio_alloc",
    "nni_aio_free",
    "nni_aio_reap",
    "nni_aio_set_msg",
    "nni_aio_get_msg",
    "nni_aio_begin",
    "nni_aio_schedule",
    "nni_aio_finish",
    "nni_aio_finish_sync",
    "nni_aio_finish_error",
    "nni_aio_finish_msg",
    "nni_aio_completions_add",
    "nni_aio_wait",
    "nni_aio_abort",
    "nni_aio_close",
    "nni_aio_stop",
    "nni_aio_set_timeout",
    "nni_aio_set_expire",
];
