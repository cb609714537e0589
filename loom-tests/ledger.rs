#![cfg(feature = "loom")]
//! Loom models of the ledger itself: the checker has to be right under every
//! interleaving before the kernels are judged by it.
//!
//! Each model creates its ledger inside the `loom::model` closure (loom
//! needs fresh state per iteration), spawns at most two threads (loom allows
//! five per execution, main included) and keeps no global state. Models of
//! a deliberate misuse name the real bug they stand for (shared/ZOO.md).
//! Run with
//! `cargo test --features loom --test loom_ledger -- --nocapture` to see how
//! many interleavings each model explored and how long it took.

use mqtls_harness::ledger::{self, Ledger, Mode, MsgKind, OpKind, Outcome, Stats, ViolationKind};
use mqtls_harness::sync::{Arc, Mutex, StdArc, lock, thread};
use std::time::Instant;

// Counters that outlive the model: loom's own atomics only exist inside an
// execution, so these are std atomics on purpose and carry no shared state
// of the model itself.
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

/// Runs `f` under loom and returns how many interleavings were explored.
fn explore(name: &str, f: impl Fn() + Sync + Send + 'static) -> usize {
    let iterations = StdArc::new(AtomicUsize::new(0));
    let counter = StdArc::clone(&iterations);
    let started = Instant::now();
    let mut builder = loom::model::Builder::new();
    // Two preemptions reach every bug of the zoo (each is one wrong order
    // of two steps) and keep the whole file well under a minute in debug
    // builds; LOOM_MAX_PREEMPTIONS overrides it for a deeper run.
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    let n = iterations.load(StdOrdering::Relaxed);
    println!(
        "loom model {name}: {n} interleavings in {:.2?}",
        started.elapsed()
    );
    assert!(n > 0, "loom explored nothing for {name}");
    n
}

/// A counter shared between the model closure and the test body, for facts
/// that hold in *some* interleaving ("loom found the bad order").
fn tally() -> (StdArc<AtomicUsize>, StdArc<AtomicUsize>) {
    let t = StdArc::new(AtomicUsize::new(0));
    (StdArc::clone(&t), t)
}

fn payload() -> bytes::Bytes {
    bytes::Bytes::from_static(b"\x30\x05\x00\x01tx")
}

fn kinds(l: &Ledger) -> Vec<ViolationKind> {
    let mut k: Vec<_> = l.violations().iter().map(|v| v.kind).collect();
    k.sort();
    k
}

/// The invariant every `Stats` snapshot must satisfy, whatever races it.
fn assert_consistent(s: &Stats) {
    assert_eq!(s.allocated, s.freed + s.live, "message counts torn: {s:?}");
    assert_eq!(
        s.ops_begun,
        s.ops_finished + s.ops_open,
        "operation counts torn: {s:?}"
    );
}

/// The fixed fan-out (one retain per subscriber, ZOO `fanout-missing-retain`
/// done right): three holders release concurrently, one after retaining and
/// releasing a further reference of its own. The message is freed exactly
/// once, and its cell is reused cleanly afterwards (a double free would put
/// the cell on the free list twice and hand it to two messages at once).
#[test]
fn concurrent_retain_release_frees_exactly_once() {
    explore("concurrent_retain_release_frees_exactly_once", || {
        let l = Ledger::new(Mode::Counting);
        let m = l.alloc(MsgKind::Publish, payload(), "broker::publish");
        let a = m.retain("fanout: subscriber a");
        let b = m.retain("fanout: subscriber b");
        let ta = thread::spawn(move || {
            let again = a.retain("writer a: requeue");
            a.release("writer a: write_done");
            again.release("writer a: requeue done");
        });
        let tb = thread::spawn(move || b.release("writer b: write_done"));
        m.release("broker::publish done");
        ta.join().unwrap();
        tb.join().unwrap();

        let s = l.stats();
        assert_eq!((s.allocated, s.freed, s.live), (1, 1, 0), "{s:?}");
        let x = l.alloc(MsgKind::Publish, payload(), "reuse x");
        let y = l.alloc(MsgKind::Publish, payload(), "reuse y");
        x.release("reuse x done");
        y.release("reuse y done");
        let audit = l.audit();
        assert!(audit.is_clean(), "{:?}", audit.violations);
        assert_eq!((audit.stats.allocated, audit.stats.freed), (3, 3));
    });
}

/// NanoNNG 83430191f: the SUBACK and the subscribe timeout both finish the
/// operation. Exactly one `finish` wins, every other attempt is one
/// `OpFinishedTwice`, and a registered waiter is called exactly once.
#[test]
fn concurrent_finish_finishes_once() {
    explore("concurrent_finish_finishes_once", || {
        let l = Ledger::new(Mode::Counting);
        let op = l.begin_op(OpKind::Subscribe, "client::subscribe");
        let (calls, calls_out) = tally();
        op.on_finish(move |_| {
            calls.fetch_add(1, StdOrdering::Relaxed);
        });
        let attempts = [
            (Outcome::Success, "reader: SUBACK"),
            (Outcome::TimedOut, "timer: subscribe timeout"),
        ];
        let threads: Vec<_> = attempts
            .into_iter()
            .map(|(outcome, site)| {
                let op = op.clone();
                thread::spawn(move || op.finish(outcome, site))
            })
            .collect();
        let mine = op.finish(Outcome::Closed, "closer: connection closed");
        let wins = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|w| *w)
            .count()
            + usize::from(mine);
        assert_eq!(wins, 1, "finish must succeed exactly once");
        assert_eq!(
            calls_out.swap(0, StdOrdering::Relaxed),
            1,
            "waiter called != once"
        );
        assert_eq!(kinds(&l), vec![ViolationKind::OpFinishedTwice; 2]);
        let s = l.stats();
        assert_eq!(
            (s.ops_begun, s.ops_finished, s.ops_open),
            (1, 1, 0),
            "{s:?}"
        );
    });
}

/// An audit taken while writers release their references (a report thread
/// looking at a live run): every snapshot is internally consistent, freed
/// never goes backwards, and the only findings are leaks of messages that
/// were still live when it looked. After the writers are done it is clean.
#[test]
fn audit_racing_releases_is_consistent() {
    explore("audit_racing_releases_is_consistent", || {
        let l = Ledger::new(Mode::Counting);
        let m1 = l.alloc(MsgKind::Publish, payload(), "queue 1");
        let m2 = l.alloc(MsgKind::Subscribe, payload(), "queue 2");
        let w2 = m2.retain("wire 2");
        let writer = thread::spawn(move || {
            m1.release("write_done 1");
            w2.release("write_done 2");
        });
        let l2 = Arc::clone(&l);
        let auditor = thread::spawn(move || {
            let audit = l2.audit();
            assert_consistent(&audit.stats);
            let leaks = audit.count(ViolationKind::Leak) as u64;
            assert_eq!(
                leaks as usize,
                audit.violations.len(),
                "{:?}",
                audit.violations
            );
            // The leak scan runs after the snapshot: it can only find fewer.
            assert!(
                leaks <= audit.stats.live,
                "{:?} vs {:?}",
                audit.violations,
                audit.stats
            );
            let later = l2.stats();
            assert_consistent(&later);
            assert!(later.freed >= audit.stats.freed, "freed went backwards");
        });
        m2.release("caller 2");
        writer.join().unwrap();
        auditor.join().unwrap();
        let audit = l.audit();
        assert!(audit.is_clean(), "{:?}", audit.violations);
        assert_eq!(
            (audit.stats.allocated, audit.stats.freed, audit.stats.live),
            (2, 2, 0)
        );
    });
}

/// Counts read while other threads allocate and begin or finish operations
/// stay consistent: a message being set up is not counted as freed, and an
/// operation being finished is counted exactly once.
#[test]
fn stats_racing_alloc_and_finish_are_consistent() {
    explore("stats_racing_alloc_and_finish_are_consistent", || {
        let l = Ledger::new(Mode::Counting);
        let l2 = Arc::clone(&l);
        let op = l.begin_op(OpKind::Publish, "client::publish");
        let worker = thread::spawn(move || {
            let m = l2.alloc(MsgKind::Publish, payload(), "client::publish");
            op.finish(Outcome::Success, "reader: PUBACK");
            m
        });
        let first = l.stats();
        assert_consistent(&first);
        let second = l.stats();
        assert_consistent(&second);
        assert!(
            second.freed >= first.freed,
            "freed went backwards: {first:?} then {second:?}"
        );
        assert_eq!(
            first.freed, 0,
            "a message being allocated counted as freed: {first:?}"
        );
        worker.join().unwrap().release("client::publish done");
        assert!(l.audit().is_clean());
    });
}

/// Every canonical misuse (`ledger::misuse::provoke`) is reported as its
/// kind, in both modes, on a loom thread (the model's main thread: loom
/// counts every thread an execution ever spawned against its limit of 5).
#[test]
fn every_provoked_misuse_is_reported() {
    explore("every_provoked_misuse_is_reported", || {
        ledger::set_actor("misuser");
        for mode in [Mode::Counting, Mode::Full] {
            for kind in ViolationKind::ALL {
                let l = Ledger::new(mode);
                ledger::misuse::provoke(&l, kind);
                let audit = l.audit();
                assert!(audit.count(kind) >= 1, "{kind} not reported in {mode:?}");
            }
        }
    });
}

/// NanoMQ 1766, the seed: the SUBSCRIBE is parked without its own reference;
/// the TLS writer frees the only reference while the caller frees "its"
/// message on the error path. In every order exactly one of the two frees
/// is the double release, and the message is freed once.
#[test]
fn nanomq_1766_double_release_is_reported_in_every_order() {
    explore(
        "nanomq_1766_double_release_is_reported_in_every_order",
        || {
            let l = Ledger::new(Mode::Full);
            let m = l.alloc(MsgKind::Subscribe, payload(), "client::subscribe");
            let wire = m.alias("park without a reference");
            let writer = thread::spawn(move || {
                ledger::set_actor("tls-writer");
                wire.release("write_done");
            });
            ledger::set_actor("caller");
            m.release("subscribe (error path)");
            writer.join().unwrap();
            let v = l.violations();
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].kind, ViolationKind::DoubleRelease);
            let d = v[0].diagnosis();
            assert!(d.contains("msg #1 SUBSCRIBE"), "{d}");
            assert!(d.contains("released again by"), "{d}");
            let s = l.stats();
            assert_eq!((s.freed, s.live), (1, 0));
        },
    );
}

/// NanoMQ 485: a delivery clones the retained store's message through a
/// pointer the store never counted, while the first delivery's write frees
/// the store's only reference. Loom must find the order where the clone
/// comes too late (UseAfterRelease); the lucky order is clean.
#[test]
fn nanomq_485_use_after_release_found_by_some_order() {
    let (found, found_out) = tally();
    let (clean, clean_out) = tally();
    explore(
        "nanomq_485_use_after_release_found_by_some_order",
        move || {
            let l = Ledger::new(Mode::Counting);
            let m = l.alloc(MsgKind::Publish, payload(), "retain::store");
            let delivery = m.alias("retain::deliver (no clone)");
            let second = thread::spawn(move || {
                let mine = delivery.retain("second delivery clone");
                mine.release("second delivery write_done");
            });
            m.release("first delivery write_done");
            second.join().unwrap();
            let k = kinds(&l);
            if k.is_empty() {
                clean.fetch_add(1, StdOrdering::Relaxed);
            } else {
                // The stale clone is then released too: the cascade is reported.
                assert_eq!(
                    k,
                    vec![ViolationKind::DoubleRelease, ViolationKind::UseAfterRelease]
                );
                found.fetch_add(1, StdOrdering::Relaxed);
            }
            assert_eq!(l.stats().live, 0);
        },
    );
    assert!(
        found_out.load(StdOrdering::Relaxed) > 0,
        "loom never found the late clone"
    );
    assert!(
        clean_out.load(StdOrdering::Relaxed) > 0,
        "the lucky order should be clean"
    );
}

/// NanoNNG 230: the send callback releases the message the TLS write still
/// reads through an uncounted pointer. Depending on the order the write
/// starts on a freed message (UseAfterRelease), the free lands under the
/// write (ReleaseWhileBorrowed), or the write finishes first (clean);
/// loom must reach the release-under-the-write order.
#[test]
fn nanonng_230_release_while_borrowed_found_by_some_order() {
    let (found, found_out) = tally();
    explore(
        "nanonng_230_release_while_borrowed_found_by_some_order",
        move || {
            let l = Ledger::new(Mode::Counting);
            let m = l.alloc(MsgKind::Publish, payload(), "broker::publish");
            let on_wire = m.alias("tls write slot (no reference)");
            let writer = thread::spawn(move || {
                if let Ok(w) = on_wire.borrow("tls::write start") {
                    let _ = w.data();
                }
            });
            m.release("send callback");
            writer.join().unwrap();
            let k = kinds(&l);
            match k.as_slice() {
                [] => {}
                [ViolationKind::UseAfterRelease] => {}
                [ViolationKind::ReleaseWhileBorrowed] => {
                    found.fetch_add(1, StdOrdering::Relaxed);
                }
                // Freed under the write, then the write reads freed memory.
                [
                    ViolationKind::UseAfterRelease,
                    ViolationKind::ReleaseWhileBorrowed,
                ] => {
                    found.fetch_add(1, StdOrdering::Relaxed);
                }
                other => panic!("unexpected findings {other:?}"),
            }
            assert_eq!(l.stats().live, 0);
        },
    );
    assert!(
        found_out.load(StdOrdering::Relaxed) > 0,
        "loom never freed under the write"
    );
}

/// The DUP bit set on a resend while a second subscriber still holds the
/// message: a data race in C whenever the other reference is still out.
/// Loom must reach both orders: mutated while shared (reported) and mutated
/// after the other holder let go (clean).
#[test]
fn mutate_while_shared_reported_when_other_holder_is_live() {
    let (found, found_out) = tally();
    let (clean, clean_out) = tally();
    explore(
        "mutate_while_shared_reported_when_other_holder_is_live",
        move || {
            let l = Ledger::new(Mode::Counting);
            let m = l.alloc(MsgKind::Publish, payload(), "broker::publish");
            let other = m.retain("fanout: second subscriber");
            let t = thread::spawn(move || other.release("second subscriber write_done"));
            let _ = m.mutate("resend: set DUP", |b| {
                *b = bytes::Bytes::from_static(b"dup")
            });
            t.join().unwrap();
            match kinds(&l).as_slice() {
                [] => clean.fetch_add(1, StdOrdering::Relaxed),
                [ViolationKind::MutateWhileShared] => found.fetch_add(1, StdOrdering::Relaxed),
                other => panic!("unexpected findings {other:?}"),
            };
            m.release("first subscriber write_done");
            assert_eq!(l.stats().live, 0);
        },
    );
    assert!(
        found_out.load(StdOrdering::Relaxed) > 0,
        "loom never mutated a shared message"
    );
    assert!(
        clean_out.load(StdOrdering::Relaxed) > 0,
        "loom never mutated a sole-owned one"
    );
}

/// nng 355: cancel finishes the operation but does not disarm it; the late
/// SUBACK touches and finishes it again. Whatever the order, exactly one
/// misuse is reported (touched after finish, or finished twice) and the
/// operation counts as finished once.
#[test]
fn nng_355_late_ack_after_cancel_is_reported_in_every_order() {
    explore(
        "nng_355_late_ack_after_cancel_is_reported_in_every_order",
        || {
            let l = Ledger::new(Mode::Full);
            let op = l.begin_op(OpKind::Subscribe, "client::subscribe");
            let reader_op = op.clone();
            let reader = thread::spawn(move || {
                ledger::set_actor("reader");
                if reader_op.touch("reader: SUBACK") {
                    reader_op.finish(Outcome::Success, "reader: SUBACK");
                }
            });
            ledger::set_actor("canceller");
            op.finish(Outcome::Canceled, "cancel");
            reader.join().unwrap();
            let v = l.violations();
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(matches!(
                v[0].kind,
                ViolationKind::OpTouchedAfterFinish | ViolationKind::OpFinishedTwice
            ));
            assert!(
                v[0].diagnosis().contains("op #1 SUBSCRIBE"),
                "{}",
                v[0].diagnosis()
            );
            let s = l.stats();
            assert_eq!((s.ops_finished, s.ops_open), (1, 0));
        },
    );
}

/// NanoNNG 1578: cancel detaches a pending receive but never finishes it,
/// while the closer only finishes what is still in the pending table. The
/// waiter is never called and the audit reports the operation.
#[test]
fn nanonng_1578_cancel_without_finish_is_reported() {
    explore("nanonng_1578_cancel_without_finish_is_reported", || {
        let l = Ledger::new(Mode::Counting);
        let op = l.begin_op(OpKind::Receive, "client::recv");
        let (called, called_out) = tally();
        op.on_finish(move |_| {
            called.fetch_add(1, StdOrdering::Relaxed);
        });
        let pending = Arc::new(Mutex::new(Some(op)));
        let p2 = Arc::clone(&pending);
        let canceller = thread::spawn(move || {
            if let Some(op) = lock(&p2).take() {
                op.touch("cancel (detach only)");
            }
        });
        if let Some(op) = lock(&pending).take() {
            op.finish(Outcome::Closed, "close: finish pending");
        }
        canceller.join().unwrap();
        let audit = l.audit();
        let calls = called_out.swap(0, StdOrdering::Relaxed);
        if calls == 0 {
            assert_eq!(
                audit.count(ViolationKind::OpNeverFinished),
                1,
                "{:?}",
                audit.violations
            );
        } else {
            assert!(audit.is_clean(), "{:?}", audit.violations);
        }
    });
}

/// A reference dropped on another thread instead of released (the queue
/// flush that forgets one message): the audit after the join reports one
/// leak of that message, with the count still held.
#[test]
fn dropped_reference_on_another_thread_is_a_leak() {
    explore("dropped_reference_on_another_thread_is_a_leak", || {
        let l = Ledger::new(Mode::Counting);
        let m = l.alloc(MsgKind::Publish, payload(), "client::publish");
        let queued = m.retain("outbox::push");
        let flusher = thread::spawn(move || drop(queued));
        m.release("client::publish done");
        flusher.join().unwrap();
        let audit = l.audit();
        assert_eq!(audit.count(ViolationKind::Leak), 1);
        assert_eq!(audit.violations.len(), 1);
        assert_eq!(audit.stats.live, 1);
    });
}
