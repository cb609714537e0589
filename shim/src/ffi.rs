//! The functions `c/wraps.c` calls: one per wrapped NanoNNG function (or
//! two, around the real call), plus set-up and the report.
//!
//! The tracker is process-wide: a C target has no handle to pass, and the
//! shim is never run under loom. Every hook returns at once when the shim
//! is switched off, and never lets a panic cross into C.

use crate::config::Config;
use crate::report::Report;
use crate::sites::{self, Stack};
use crate::sync::{Mutex, lock};
use crate::tracker::{KindReader, Tracker};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

/// Reads a live message's MQTT packet type (in `c/wraps.c`).
type KindFn = extern "C" fn(*mut c_void) -> u8;

static CONFIG: OnceLock<Config> = OnceLock::new();
static TRACKER: OnceLock<Option<Tracker>> = OnceLock::new();
static KIND: OnceLock<KindFn> = OnceLock::new();
/// One report at a time (a signal can arrive during the exit's).
static REPORTING: Mutex<()> = Mutex::new(());

fn config() -> &'static Config {
    CONFIG.get_or_init(Config::from_env)
}

fn tracker() -> Option<&'static Tracker> {
    TRACKER
        .get_or_init(|| {
            let cfg = config();
            cfg.enabled.then(|| {
                let kind: KindReader = Box::new(|key| match KIND.get() {
                    Some(f) => f(pointer(key)),
                    None => 0,
                });
                Tracker::new(cfg.mode, Some(kind))
            })
        })
        .as_ref()
}

/// Runs a hook on the tracker, if the shim is on; a panic in the shim is
/// swallowed (the target must not die of its observer).
fn hook(f: impl FnOnce(&'static Tracker)) {
    if let Some(t) = tracker() {
        let _ = catch_unwind(AssertUnwindSafe(|| f(t)));
    }
}

fn hook_or<R>(default: R, f: impl FnOnce(&'static Tracker) -> R) -> R {
    match tracker() {
        Some(t) => catch_unwind(AssertUnwindSafe(|| f(t))).unwrap_or(default),
        None => default,
    }
}

/// The stack `c/wraps.c` captured, or an empty one.
fn stack<'a>(s: *const Stack) -> &'a Stack {
    static EMPTY: Stack = Stack {
        pc: [0; sites::DEPTH],
    };
    // SAFETY: the C side passes a pointer to a stack on its own frame, valid
    // for the duration of the call, or NULL.
    unsafe { s.as_ref() }.unwrap_or(&EMPTY)
}

/// What the tracker keeps of a target pointer: the address masked, so that
/// LeakSanitizer, which takes any word that points into a heap block for a
/// reference to it, never sees the shim's tables as holding the target's
/// messages and aios (a leaked aio would pass for reachable). NULL stays 0.
const HIDE: usize = 0x5a5a_5a5a_5a5a_5a5a;

fn addr<T>(p: *const T) -> usize {
    match p as usize {
        0 => 0,
        a => a ^ HIDE,
    }
}

/// The pointer behind a tracker key.
fn pointer(key: usize) -> *mut c_void {
    match key {
        0 => std::ptr::null_mut(),
        k => (k ^ HIDE) as *mut c_void,
    }
}

/// Set-up, from the target's constructor: how to read a message's kind.
#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_init(kind: Option<KindFn>) {
    if let Some(k) = kind {
        let _ = KIND.set(k);
    }
    let _ = tracker();
}

/// 1 when the shim watches (`MQTLS_SHIM` is not `off`).
#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_enabled() -> c_int {
    c_int::from(config().enabled)
}

/// The signals that make the report be written, into `out` (at most
/// `max`); returns how many.
#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_stop_signals(out: *mut c_int, max: c_int) -> c_int {
    let sigs = &config().stop_signals;
    let n = sigs.len().min(usize::try_from(max).unwrap_or(0));
    for (i, s) in sigs.iter().take(n).enumerate() {
        // SAFETY: the C side passes an array of `max` ints.
        unsafe { *out.add(i) = *s };
    }
    c_int::try_from(n).unwrap_or(0)
}

/// Writes the report now (`trigger`: why).
#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_report(trigger: *const c_char) {
    let trigger = if trigger.is_null() {
        "report".to_string()
    } else {
        // SAFETY: the C side passes a NUL-terminated string.
        unsafe { CStr::from_ptr(trigger) }
            .to_string_lossy()
            .into_owned()
    };
    hook(|t| {
        let _one = lock(&REPORTING);
        let report = Report::build(t, &trigger, &sites::resolve_here, config());
        crate::report::write(config(), &report);
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_alloc(m: *mut c_void, s: *const Stack) {
    hook(|t| t.msg_alloc(addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_free(m: *mut c_void, s: *const Stack) {
    hook(|t| t.msg_free(addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_free_done() {
    hook(|t| t.msg_free_done());
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_clone(m: *mut c_void, s: *const Stack) {
    hook(|t| t.msg_clone(addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_dup(dup: *mut c_void, src: *const c_void, s: *const Stack) {
    hook(|t| t.msg_dup(addr(dup), addr(src), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_replace_begin(
    m: *mut c_void,
    frees: c_int,
    s: *const Stack,
) -> u64 {
    hook_or(0, |t| t.msg_replace_begin(addr(m), frees != 0, stack(s)))
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_msg_replace_end(
    m: *mut c_void,
    token: u64,
    out: *mut c_void,
    s: *const Stack,
) {
    hook(|t| t.msg_replace_end(addr(m), token, addr(out), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_init(a: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_init(addr(a), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_free_begin(a: *mut c_void, s: *const Stack) -> u64 {
    hook_or(0, |t| t.aio_free_begin(addr(a), stack(s)))
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_free_end(a: *mut c_void, token: u64) {
    hook(|t| t.aio_free_end(addr(a), token));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_reap(a: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_reap(addr(a), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_set_msg(a: *mut c_void, m: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_set_msg(addr(a), addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_get_msg(a: *mut c_void, m: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_get_msg(addr(a), addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_begin(a: *mut c_void, rv: c_int, s: *const Stack) {
    hook(|t| t.aio_begin(addr(a), rv, stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_schedule(a: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_schedule(addr(a), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_scheduled(a: *mut c_void, rv: c_int, has_cancel: c_int) {
    hook(|t| t.aio_scheduled(addr(a), rv, has_cancel != 0));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_finish(
    a: *mut c_void,
    rv: c_int,
    m: *mut c_void,
    s: *const Stack,
) {
    hook(|t| t.aio_finish(addr(a), rv, addr(m), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_wait(a: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_wait(addr(a), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_waited(a: *mut c_void) {
    hook(|t| t.aio_waited(addr(a)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_cancel(a: *mut c_void, s: *const Stack) {
    hook(|t| t.aio_cancel(addr(a), stack(s)));
}

#[unsafe(no_mangle)]
pub extern "C" fn mqtls_shim_aio_timeout(a: *mut c_void, relative_ms: i64, absolute_ms: i64) {
    hook(|t| t.aio_timeout(addr(a), relative_ms, absolute_ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked address is no pointer into the heap (its top bits make it
    /// non-canonical on x86-64), the mask is undone exactly, and NULL
    /// stays NULL.
    #[test]
    fn target_pointers_are_kept_masked_and_come_back_whole() {
        let block = Box::new([0u8; 64]);
        let p = block.as_ptr();
        let key = addr(p);
        assert_ne!(key, p as usize);
        assert!(
            key >> 47 != 0 && key >> 47 != (1 << 17) - 1,
            "{key:#x} looks canonical"
        );
        assert_eq!(pointer(key) as usize, p as usize);
        assert_eq!(addr(std::ptr::null::<u8>()), 0);
        assert!(pointer(0).is_null());
    }
}
