//! Where a stuck client waits: the threads of a debugger's `thread apply
//! all bt` (what `--on-stuck 'gdb -p {pid} -batch -ex "thread apply all
//! bt"'` prints), reduced to those blocked in the program's own code.
//!
//! A stuck client has many threads waiting, most of them idle workers
//! (a task queue, a resolver, a timer loop) that wait whether or not
//! anything is wrong. A thread is idle when, under its wait primitives,
//! the next frame is its thread's main loop; the others wait *in* the
//! program (`nng_aio_wait` under `nng_mqtt_subscribe` under `connect_cb`),
//! and their top frames name the hang, as the top frames of a use and a
//! free name a use after free.

use super::finding::{Frame, FrameFilter, Stack, StackRole};
use regex::Regex;

/// Frames of the wait itself: glibc internals (`__futex_...`), condition
/// variables, futexes, polls, sleeps, and the program's wrappers of them
/// (`nni_cv_wait`, `nng_aio_wait`).
const WAIT: &str =
    r"(^_|wait$|wait_|_until$|^epoll_|^poll$|^ppoll$|^select$|sleep$|^pause$|^futex|^read$|^recv)";

/// Frames of a thread's main loop: where an idle worker waits for work.
const INFRASTRUCTURE: &str =
    r"(thread$|_thr$|_thr_|worker$|_loop$|^start_thread$|^clone3?$|^thread_start$|^main$)";

/// The threads of `bt` (gdb's `thread apply all bt` output) that wait in
/// the program's own code, innermost frame first; idle workers left out.
pub fn waiting_threads(bt: &str) -> Vec<Stack> {
    let (Ok(wait), Ok(infra)) = (Regex::new(WAIT), Regex::new(INFRASTRUCTURE)) else {
        return Vec::new();
    };
    let mut threads: Vec<Stack> = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        if t.starts_with("Thread ") && t.ends_with(':') {
            threads.push(Stack {
                role: StackRole::Other,
                heading: t.trim_end_matches(':').to_owned(),
                frames: Vec::new(),
            });
        } else if let (Some(frame), Some(thread)) = (gdb_frame(t), threads.last_mut()) {
            thread.frames.push(frame);
        }
    }
    threads
        .into_iter()
        .filter(|t| {
            let mut above = t.frames.iter().skip_while(|f| wait.is_match(&f.function));
            let waited = t.frames.first().is_some_and(|f| wait.is_match(&f.function));
            waited && above.next().is_some_and(|f| !infra.is_match(&f.function))
        })
        .collect()
}

/// The waiter a signature is named after, and its names: of the waiting
/// threads, a worker before the main thread (which usually waits for the
/// worker), then the one with the longest chain of the program's own
/// frames above its wait (the most specific wait), and its first `depth`
/// significant frames above the wait. Which other threads happen to be
/// waiting at that moment (a reaper mid-teardown) varies from run to run;
/// the waiter does not.
pub fn waiter(threads: &[Stack], filter: &FrameFilter, depth: usize) -> Option<(usize, String)> {
    let (Ok(wait), Ok(infra)) = (Regex::new(WAIT), Regex::new(INFRASTRUCTURE)) else {
        return None;
    };
    let chain = |t: &Stack| -> Vec<Frame> {
        t.frames
            .iter()
            .skip_while(|f| wait.is_match(&f.function))
            .filter(|f| filter.is_significant(f) && !infra.is_match(&f.function))
            .cloned()
            .collect()
    };
    let is_main = |t: &Stack| t.heading.starts_with("Thread 1 ");
    let (index, best) = threads
        .iter()
        .enumerate()
        .max_by_key(|(_, t)| (!is_main(t), chain(t).len()))?;
    let above: Vec<Frame> = best
        .frames
        .iter()
        .skip_while(|f| wait.is_match(&f.function))
        .cloned()
        .collect();
    let names = filter.top(&above, depth).join(" > ");
    (!names.is_empty()).then_some((index, names))
}

/// `nng_mqtt_subscribe > connect_cb` for each waiting thread, for titles.
pub fn describe(threads: &[Stack], filter: &FrameFilter, depth: usize) -> Vec<String> {
    let Ok(wait) = Regex::new(WAIT) else {
        return Vec::new();
    };
    threads
        .iter()
        .map(|t| {
            let above: Vec<Frame> = t
                .frames
                .iter()
                .skip_while(|f| wait.is_match(&f.function))
                .cloned()
                .collect();
            filter.top(&above, depth).join(" > ")
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parses a gdb frame line: `#11 0x000055eb6ffe3062 in nng_mqtt_subscribe
/// (sock=..., count=1) at /src/mqtt_public.c:1031`, `#0  __futex_wait (...)
/// at ./nptl/futex-internal.c:57` or `#3 0x7f in ?? () from /lib/libc.so.6`.
fn gdb_frame(line: &str) -> Option<Frame> {
    let rest = line.strip_prefix('#')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 {
        return None;
    }
    let mut rest = rest.get(digits..)?.trim_start();
    if rest.starts_with("0x") {
        let (_, after) = rest.split_once(" in ")?;
        rest = after;
    }
    let name_end = rest.find([' ', '(']).unwrap_or(rest.len());
    let function = rest.get(..name_end)?.to_owned();
    if function.is_empty() {
        return None;
    }
    let location = rest.rsplit_once(" at ").map(|(_, l)| l.trim().to_owned());
    let module = match &location {
        Some(_) => None,
        None => rest.rsplit_once(" from ").map(|(_, m)| m.trim().to_owned()),
    };
    Some(Frame {
        function,
        location,
        module,
    })
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// Three threads of the recent nanomq_cli stuck after
    /// close-before-suback (gdb 13, arguments shortened).
    const BT: &str = r#"
Thread 13 (Thread 0x7fbdf0df46c0 (LWP 14109) "nng:aio:expire"):
#0  __futex_abstimed_wait_common64 (private=0, cancel=true) at ./nptl/futex-internal.c:57
#3  0x00007fcff9aa65d8 in __pthread_cond_wait_common (abstime=0x0) at ./nptl/pthread_cond_wait.c:503
#5  0x000055f5f7b29804 in nni_pthread_cond_wait (c=0x1, m=0x2) at /src/nng/src/platform/posix/posix_thread.c:121
#7  0x000055f5f7b15c80 in nni_cv_until (cv=0x3, until=18446744073709551615) at /src/nng/src/core/thread.c:60
#8  0x000055f5f7ad3d01 in nni_aio_expire_loop (arg=0x4) at /src/nng/src/core/aio.c:664
#9  0x000055f5f7b160ac in nni_thr_wrap (arg=0x5) at /src/nng/src/core/thread.c:94

Thread 9 (Thread 0x7fbdf2df86c0 (LWP 14105) "nng:task"):
#0  __futex_abstimed_wait_common64 (private=0, cancel=true) at ./nptl/futex-internal.c:57
#7  0x000055eb6ff68c5a in nni_cv_wait (cv=0x615000030578) at /src/nng/src/core/thread.c:51
#8  0x000055eb6ff6811f in nni_task_wait (task=0x615000030520) at /src/nng/src/core/taskq.c:205
#9  0x000055eb6ff235fa in nni_aio_wait (aio=0x615000030500) at /src/nng/src/core/aio.c:316
#10 0x000055eb6ff1f296 in nng_aio_wait (aio=0x615000030500) at /src/nng/src/nng.c:2105
#11 0x000055eb6ffe3062 in nng_mqtt_subscribe (sock=..., sbs=0x1, count=1, pl=0x0) at /src/nng/src/supplemental/mqtt/mqtt_public.c:1031
#12 0x000055f5f7a9d060 in connect_cb (p=..., ev=NNG_PIPE_EV_ADD_POST, arg=0x6) at /src/nanomq_cli/client.c:1681
#13 0x000055f5f7b0c5a5 in nni_pipe_run_cb (p=0x9, ev=NNG_PIPE_EV_ADD_POST) at /src/nng/src/core/socket.c:1819
#16 0x000055f5f7b12a81 in nni_taskq_thread (self=0x7) at /src/nng/src/core/taskq.c:47

Thread 8 (Thread 0x7fbdf35f96c0 (LWP 14104) "nng:task"):
#0  __futex_abstimed_wait_common64 (private=0, cancel=true) at ./nptl/futex-internal.c:57
#7  0x000055eb6ff68c5a in nni_cv_wait (cv=0x610000000080) at /src/nng/src/core/thread.c:51
#8  0x000055f5f7b12e15 in nni_taskq_thread (self=0x8) at /src/nng/src/core/taskq.c:47
#9  0x00007fcff9b278ec in ?? () from /lib/x86_64-linux-gnu/libc.so.6
"#;

    #[test]
    fn the_waiter_is_the_deepest_wait_whoever_else_waits() {
        // The main thread waits for the dialer as deep as the worker waits
        // for its SUBACK, and a reaper may or may not be mid-teardown: the
        // worker is the waiter either way.
        let main = "Thread 1 (Thread 0x1 (LWP 1) \"nanomq_cli\"):\n\
            #0  __futex_abstimed_wait_common64 (p=0) at ./nptl/futex-internal.c:57\n\
            #1  0x1 in nni_aio_wait (aio=0x1) at /n/aio.c:316\n\
            #2  0x2 in nni_dialer_start (d=0x1) at /n/dialer.c:443\n\
            #3  0x3 in nng_dialer_start (did=...) at /n/nng.c:776\n\
            #4  0x4 in create_client (s=0x1) at /c/client.c:1823\n\
            #5  0x5 in client (argc=11) at /c/client.c:1902\n\
            #6  0x6 in subscribe_start (argc=11) at /c/client.c:1946\n\
            #7  0x7 in main (argc=11) at /c/main.c:120\n";
        let reaper = "Thread 11 (Thread 0x2 (LWP 2) \"nng:reap2\"):\n\
            #0  __futex_abstimed_wait_common64 (p=0) at ./nptl/futex-internal.c:57\n\
            #1  0x1 in nni_cv_wait (cv=0x1) at /n/thread.c:51\n\
            #2  0x2 in pipe_destroy (arg=0x1) at /n/pipe.c:60\n\
            #3  0x3 in reap_worker (arg=0x1) at /n/reap.c:70\n";
        let f = FrameFilter::default();
        for bt in [format!("{reaper}{BT}{main}"), format!("{BT}{main}")] {
            let threads = waiting_threads(&bt);
            let (index, names) = waiter(&threads, &f, 2).unwrap();
            assert_eq!(names, "nng_mqtt_subscribe > connect_cb", "{bt}");
            assert!(threads[index].heading.starts_with("Thread 9 "));
        }
        let all = waiting_threads(&format!("{reaper}{BT}{main}"));
        assert_eq!(
            describe(&all, &f, 2),
            [
                "pipe_destroy > reap_worker",
                "nng_mqtt_subscribe > connect_cb",
                "nni_dialer_start > nng_dialer_start"
            ]
        );
    }

    #[test]
    fn idle_workers_are_left_out_and_the_waiter_named() {
        let threads = waiting_threads(BT);
        assert_eq!(threads.len(), 1, "{threads:#?}");
        assert!(threads[0].heading.starts_with("Thread 9 "));
        let (index, names) = waiter(&threads, &FrameFilter::default(), 2).unwrap();
        assert_eq!(
            (index, names.as_str()),
            (0, "nng_mqtt_subscribe > connect_cb")
        );
        let f = gdb_frame("#9  0x00007fcff9b278ec in ?? () from /lib/x86_64-linux-gnu/libc.so.6")
            .unwrap();
        assert_eq!(f.function, "??");
        assert_eq!(f.module.as_deref(), Some("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(waiting_threads("no debugger here").is_empty());
    }
}
