//! The facade under the `shuttle` feature: shuttle's primitives inside a
//! shuttle execution, std's everywhere else.
//!
//! Loom's types panic outside `loom::model`, which is why every std-only test
//! is gated off under `--features loom`. These types decide once, when they
//! are built, which world they belong to: built inside a schedule (the
//! schedule engine's scenarios) they are shuttle's, so every lock, atomic and
//! spawn is a point where shuttle may switch threads; built anywhere else
//! (the tokio shell, the other engines, every std test) they are std's. So
//! the feature can stay on for the whole workspace, `--all-features` and
//! doctests included, and `mqtls check` runs the schedule engine next to the
//! others from one build. The price is one branch per operation, and only in
//! builds with the feature.
//!
//! A primitive built in one world and used in the other is a harness bug, not
//! something a peer can cause; it panics with that diagnosis.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError};

pub use std::sync::Arc;
pub use std::sync::atomic::Ordering;

/// True while the calling code runs as a task of a shuttle execution.
pub fn in_schedule() -> bool {
    shuttle::current::try_get_current_task().is_some()
}

fn mixed_worlds(what: &str) -> ! {
    panic!(
        "harness bug: a {what} built outside a shuttle schedule was used with one built inside \
         (build every shared object of a scenario inside the schedule)"
    )
}

/// A mutex: shuttle's inside a schedule, std's outside.
pub enum Mutex<T> {
    /// Built outside any schedule.
    Std(std::sync::Mutex<T>),
    /// Built inside a shuttle execution.
    Scheduled(shuttle::sync::Mutex<T>),
}

/// The guard of a [`Mutex`].
pub enum MutexGuard<'a, T> {
    /// Of a std mutex.
    Std(std::sync::MutexGuard<'a, T>),
    /// Of a shuttle mutex.
    Scheduled(shuttle::sync::MutexGuard<'a, T>),
}

impl<T> Mutex<T> {
    /// A mutex of the world the caller runs in.
    pub fn new(value: T) -> Self {
        if in_schedule() {
            Mutex::Scheduled(shuttle::sync::Mutex::new(value))
        } else {
            Mutex::Std(std::sync::Mutex::new(value))
        }
    }

    /// Locks it (a scheduling point inside a schedule).
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        match self {
            Mutex::Std(m) => m
                .lock()
                .map(MutexGuard::Std)
                .map_err(|p| PoisonError::new(MutexGuard::Std(p.into_inner()))),
            Mutex::Scheduled(m) => m
                .lock()
                .map(MutexGuard::Scheduled)
                .map_err(|p| PoisonError::new(MutexGuard::Scheduled(p.into_inner()))),
        }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> LockResult<T> {
        match self {
            Mutex::Std(m) => m.into_inner(),
            Mutex::Scheduled(m) => m.into_inner(),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutex::Std(m) => m.fmt(f),
            Mutex::Scheduled(m) => m.fmt(f),
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            MutexGuard::Std(g) => g,
            MutexGuard::Scheduled(g) => g,
        }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            MutexGuard::Std(g) => &mut *g,
            MutexGuard::Scheduled(g) => &mut *g,
        }
    }
}

/// A condition variable: shuttle's inside a schedule, std's outside.
pub enum Condvar {
    /// Built outside any schedule.
    Std(std::sync::Condvar),
    /// Built inside a shuttle execution.
    Scheduled(shuttle::sync::Condvar),
}

impl Condvar {
    /// A condition variable of the world the caller runs in.
    pub fn new() -> Self {
        if in_schedule() {
            Condvar::Scheduled(shuttle::sync::Condvar::new())
        } else {
            Condvar::Std(std::sync::Condvar::new())
        }
    }

    /// Waits for a notification, releasing `guard` meanwhile.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        match (self, guard) {
            (Condvar::Std(c), MutexGuard::Std(g)) => c
                .wait(g)
                .map(MutexGuard::Std)
                .map_err(|p| PoisonError::new(MutexGuard::Std(p.into_inner()))),
            (Condvar::Scheduled(c), MutexGuard::Scheduled(g)) => c
                .wait(g)
                .map(MutexGuard::Scheduled)
                .map_err(|p| PoisonError::new(MutexGuard::Scheduled(p.into_inner()))),
            _ => mixed_worlds("condition variable"),
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        match self {
            Condvar::Std(c) => c.notify_one(),
            Condvar::Scheduled(c) => c.notify_one(),
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        match self {
            Condvar::Std(c) => c.notify_all(),
            Condvar::Scheduled(c) => c.notify_all(),
        }
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condvar { .. }")
    }
}

macro_rules! atomic {
    ($name:ident, $int:ty, $($extra:ident),*) => {
        /// An atomic: shuttle's inside a schedule (each access a scheduling
        /// point), std's outside.
        pub enum $name {
            /// Built outside any schedule.
            Std(std::sync::atomic::$name),
            /// Built inside a shuttle execution.
            Scheduled(shuttle::sync::atomic::$name),
        }

        impl $name {
            /// An atomic of the world the caller runs in.
            pub fn new(v: $int) -> Self {
                if in_schedule() {
                    $name::Scheduled(shuttle::sync::atomic::$name::new(v))
                } else {
                    $name::Std(std::sync::atomic::$name::new(v))
                }
            }

            /// Loads the value.
            pub fn load(&self, order: Ordering) -> $int {
                match self {
                    $name::Std(a) => a.load(order),
                    $name::Scheduled(a) => a.load(order),
                }
            }

            /// Stores `v`.
            pub fn store(&self, v: $int, order: Ordering) {
                match self {
                    $name::Std(a) => a.store(v, order),
                    $name::Scheduled(a) => a.store(v, order),
                }
            }

            /// Stores `v`, returning the previous value.
            pub fn swap(&self, v: $int, order: Ordering) -> $int {
                match self {
                    $name::Std(a) => a.swap(v, order),
                    $name::Scheduled(a) => a.swap(v, order),
                }
            }

            /// Stores `new` if the value is `current`.
            pub fn compare_exchange(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                match self {
                    $name::Std(a) => a.compare_exchange(current, new, success, failure),
                    $name::Scheduled(a) => a.compare_exchange(current, new, success, failure),
                }
            }

            /// Like `compare_exchange`, allowed to fail spuriously.
            pub fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                match self {
                    $name::Std(a) => a.compare_exchange_weak(current, new, success, failure),
                    $name::Scheduled(a) => a.compare_exchange_weak(current, new, success, failure),
                }
            }

            $(
                /// The std operation of the same name.
                pub fn $extra(&self, v: $int, order: Ordering) -> $int {
                    match self {
                        $name::Std(a) => a.$extra(v, order),
                        $name::Scheduled(a) => a.$extra(v, order),
                    }
                }
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new(Default::default())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Std(a) => a.fmt(f),
                    $name::Scheduled(a) => a.fmt(f),
                }
            }
        }
    };
}

atomic!(AtomicBool, bool, fetch_or, fetch_and);
atomic!(
    AtomicU32, u32, fetch_add, fetch_sub, fetch_or, fetch_and, fetch_max
);
atomic!(
    AtomicU64, u64, fetch_add, fetch_sub, fetch_or, fetch_and, fetch_max
);
atomic!(
    AtomicUsize,
    usize,
    fetch_add,
    fetch_sub,
    fetch_or,
    fetch_and,
    fetch_max
);

/// Threads: shuttle tasks inside a schedule, OS threads outside.
pub mod thread {
    use super::in_schedule;
    use std::time::Duration;

    /// A handle to join a spawned thread.
    pub enum JoinHandle<T> {
        /// An OS thread.
        Std(std::thread::JoinHandle<T>),
        /// A shuttle task.
        Scheduled(shuttle::thread::JoinHandle<T>),
    }

    impl<T> JoinHandle<T> {
        /// Waits for the thread; `Err` carries its panic.
        pub fn join(self) -> std::thread::Result<T> {
            match self {
                JoinHandle::Std(h) => h.join(),
                JoinHandle::Scheduled(h) => h.join(),
            }
        }
    }

    /// Spawns `f` in the world the caller runs in.
    pub fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if in_schedule() {
            JoinHandle::Scheduled(shuttle::thread::spawn(f))
        } else {
            JoinHandle::Std(std::thread::spawn(f))
        }
    }

    /// Lets another thread run (inside a schedule: a hint to the scheduler).
    pub fn yield_now() {
        if in_schedule() {
            shuttle::thread::yield_now()
        } else {
            std::thread::yield_now()
        }
    }

    /// Sleeps for `d` (inside a schedule time is not modelled: a yield).
    pub fn sleep(d: Duration) {
        if in_schedule() {
            shuttle::thread::sleep(d)
        } else {
            std::thread::sleep(d)
        }
    }
}

/// A thread-local of both worlds, made by [`thread_local!`](crate::sync::thread_local):
/// shuttle's per-task slot inside a schedule (shuttle's tasks share OS
/// threads, so a std thread-local would mix their values), std's outside.
pub struct LocalKey<T: 'static> {
    std: &'static std::thread::LocalKey<T>,
    scheduled: &'static shuttle::thread::LocalKey<T>,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(
        std: &'static std::thread::LocalKey<T>,
        scheduled: &'static shuttle::thread::LocalKey<T>,
    ) -> Self {
        LocalKey { std, scheduled }
    }

    /// Runs `f` on this thread's (or task's) value.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        if in_schedule() {
            self.scheduled.with(f)
        } else {
            self.std.with(f)
        }
    }

    /// [`LocalKey::with`], or `Err` when the value is already destroyed
    /// (a thread running its thread-local destructors, a C program's main
    /// thread in its `atexit` handlers: where the ledger's actor name is
    /// asked for by the C shim), instead of a panic.
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        if in_schedule() {
            self.scheduled.try_with(f).map_err(|_| AccessError)
        } else {
            self.std.try_with(f).map_err(|_| AccessError)
        }
    }
}

/// A thread-local's value was already destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessError;

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey { .. }")
    }
}

/// `thread_local!` for [`LocalKey`]: each static gets a std slot and a
/// shuttle slot.
#[doc(hidden)]
#[macro_export]
macro_rules! __sync_thread_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::__sync_thread_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::__sync_thread_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $vis static $name: $crate::sync::LocalKey<$t> = {
            ::std::thread_local!($(#[$attr])* static STD: $t = $init);
            ::shuttle::thread_local!($(#[$attr])* static SCHEDULED: $t = $init);
            $crate::sync::LocalKey::new(&STD, &SCHEDULED)
        };
    };
}

pub use crate::__sync_thread_local as thread_local;
