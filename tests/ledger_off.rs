#![cfg(not(feature = "loom"))]
//! `Mode::Off`, the overhead-measurement mode: handles and operations keep
//! working (data, mutation, callbacks, unique op ids) while nothing is
//! accounted, so misuse that counting mode reports passes unseen. The
//! second half is the point: a bench with the ledger off is a bench of a
//! run that checks nothing.

use bytes::Bytes;
use mqtls_harness::ledger::{Ledger, Mode, MsgKind, OpKind, Outcome};
use mqtls_harness::sync::{Arc, AtomicBool, Ordering};

#[test]
fn handles_keep_their_data_and_ops_still_finish() {
    let l = Ledger::new(Mode::Off);
    assert_eq!(l.mode(), Mode::Off);
    let m = l.alloc(MsgKind::Publish, Bytes::from_static(b"abc"), "test: alloc");
    let extra = m.retain("test: retain");
    m.mutate("test: mutate", |d| *d = Bytes::from_static(b"xyz"))
        .unwrap();
    {
        let b = extra.borrow("test: borrow").unwrap();
        assert_eq!(b.data().unwrap(), Bytes::from_static(b"xyz"));
    }
    m.release("test: release");
    // Nothing counts references: the other handle still reads the bytes.
    assert_eq!(
        extra.data("test: read").unwrap(),
        Bytes::from_static(b"xyz")
    );
    extra.release("test: release");

    let a = l.begin_op(OpKind::Publish, "test: op");
    let b = l.begin_op(OpKind::Publish, "test: op");
    assert_ne!(a.id(), b.id(), "the pending table finds ops by id");
    let called = Arc::new(AtomicBool::new(false));
    let c = called.clone();
    a.on_finish(move |o| c.store(*o == Outcome::Success, Ordering::SeqCst));
    assert!(a.finish(Outcome::Success, "test: finish"));
    assert!(called.load(Ordering::SeqCst));
    assert_eq!(a.outcome(), Some(Outcome::Success));
    assert!(b.finish(Outcome::Closed, "test: finish"));
    assert!(l.audit().is_clean());
}

#[test]
fn detects_nothing() {
    let l = Ledger::new(Mode::Off);
    let m = l.alloc(MsgKind::Subscribe, Bytes::from_static(b"s"), "test: alloc");
    m.alias("test: alias").release("test: release via alias");
    m.release("test: release again");
    let _leaked = l.alloc(MsgKind::Publish, Bytes::from_static(b"p"), "test: leak");
    let op = l.begin_op(OpKind::Subscribe, "test: op");
    op.finish(Outcome::Success, "test: finish");
    op.finish(Outcome::Closed, "test: finish twice");
    let _never = l.begin_op(OpKind::Subscribe, "test: never finished");
    let audit = l.audit();
    assert!(audit.is_clean(), "{:#?}", audit.violations);
    assert_eq!(audit.stats.allocated, 0);
    assert_eq!(audit.stats.ops_begun, 0);

    // The same misuse in counting mode is found: the difference is the mode.
    let c = Ledger::new(Mode::Counting);
    let m = c.alloc(MsgKind::Subscribe, Bytes::from_static(b"s"), "test: alloc");
    m.alias("test: alias").release("test: release via alias");
    m.release("test: release again");
    assert!(!c.audit().is_clean());
}
