//! The target's threads as ledger actors.
//!
//! A thread is named the first time it calls a wrapped function, from the
//! name it gave itself (`nni_thr_set_name`: `nng:task`, `nng:aio:expire`...;
//! the main thread carries the program's name). Pools share a name, so each
//! thread after the first of a name gets a number: `nng:task`, `nng:task#2`.

use crate::sync::{Mutex, lock};
use mqtls_harness::ledger;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// A thread of the target, as the shim tells them apart.
pub type ThreadId = u32;

static NEXT: AtomicU32 = AtomicU32::new(1);
static NAMES: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

thread_local! {
    static ME: Cell<ThreadId> = const { Cell::new(0) };
}

/// A thread whose thread-locals are already destroyed (exiting).
pub const EXITING: ThreadId = ThreadId::MAX;

/// This thread's id, naming it as an actor on its first call.
pub fn current() -> ThreadId {
    if ME.try_with(|_| ()).is_err() {
        return EXITING;
    }
    ME.with(|me| {
        let id = me.get();
        if id != 0 {
            return id;
        }
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        me.set(id);
        ledger::set_actor(&unique_name(&own_name()));
        id
    })
}

fn unique_name(base: &str) -> String {
    let mut names = lock(&NAMES);
    let seen = names.get_or_insert_with(HashMap::new);
    let n = seen.entry(base.to_string()).or_insert(0);
    *n += 1;
    if *n == 1 {
        base.to_string()
    } else {
        format!("{base}#{n}")
    }
}

/// The name the kernel keeps for this thread (at most 15 bytes).
fn own_name() -> String {
    let mut buf = [0u8; 17];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into buf.
    let rv = unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            buf.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rv != 0 {
        return "thread".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "thread".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_threads_get_numbers_after_the_first() {
        let a = unique_name("pool-under-test");
        let b = unique_name("pool-under-test");
        assert_eq!(a, "pool-under-test");
        assert_eq!(b, "pool-under-test#2");
    }

    #[test]
    fn a_thread_is_named_once_from_its_kernel_name() {
        let t = std::thread::Builder::new()
            .name("nng:task".into())
            .spawn(|| {
                let id = current();
                assert_eq!(id, current());
                ledger::current_actor().to_string()
            })
            .unwrap();
        let name = t.join().unwrap();
        assert!(name.starts_with("nng:task"), "{name}");
    }
}
