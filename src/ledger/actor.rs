//! Who is acting: the thread or task name stamped on every ledger event.
//!
//! Kernels are synchronous, so the shell names the actor around each kernel
//! call (`with_actor("conn-3/writer", || ...)`) and the ledger reads it from a
//! thread-local instead of threading a name through every signature.

use crate::sync::StdArc;
use std::cell::RefCell;

/// The name of an actor as recorded in histories and reports.
pub type Actor = StdArc<str>;

crate::sync::thread_local! {
    // loom's thread_local! has no `const { }` form; the lazy initialiser is
    // the one both facades accept.
    #[allow(clippy::missing_const_for_thread_local)]
    static CURRENT: RefCell<Option<Actor>> = RefCell::new(None);
    // One shared name for threads nobody named, instead of a fresh
    // allocation per recorded step.
    #[allow(clippy::missing_const_for_thread_local)]
    static UNNAMED: Actor = Actor::from("unnamed");
}

/// Runs `f` with `name` as the current actor on this thread, restoring the
/// previous one afterwards (also on unwind, so a panicking test does not
/// mislabel the next one).
pub fn with_actor<R>(name: &str, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Actor>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT
        .try_with(|c| c.borrow_mut().replace(Actor::from(name)))
        .ok()
        .flatten();
    let _restore = Restore(prev);
    f()
}

/// Sets the current actor for the rest of this thread's life (or until the
/// next call). Meant for the first line of a thread body.
pub fn set_actor(name: &str) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(Actor::from(name)));
}

/// The current actor, or `"unnamed"` when none was set.
pub fn current() -> Actor {
    with_current(Actor::clone)
}

/// Runs `f` on the current actor without taking a reference to its name:
/// the per-step path of full mode.
///
/// A thread whose thread-locals are already destroyed (a C program's main
/// thread in its `atexit` handlers, any thread in its TLS destructors) is
/// recorded as `exiting` instead of panicking.
pub(crate) fn with_current<R>(f: impl FnOnce(&Actor) -> R) -> R {
    if CURRENT.try_with(|_| ()).is_err() || UNNAMED.try_with(|_| ()).is_err() {
        return f(&Actor::from("exiting"));
    }
    CURRENT.with(|c| match &*c.borrow() {
        Some(a) => f(a),
        None => UNNAMED.with(|u| f(u)),
    })
}
