#![cfg(not(feature = "loom"))]
//! Random sequences of ledger operations, right and wrong, against a
//! reference model that only counts: every violation the model predicts (its
//! kind and its subject, in order) must be the one reported, the stats must
//! match the model's counts, and the audit's leaks and unfinished operations
//! must be exactly the model's.

use bytes::Bytes;
use mqtls_harness::ledger::{
    Borrow, Ledger, Mode, MsgKind, MsgRef, Op, OpKind, Outcome, Stats, ViolationKind,
};
use mqtls_harness::sync::Arc;
use proptest::prelude::*;

/// One step. Indices pick among what exists (modulo its length); a step
/// that needs something that does not exist is skipped.
#[derive(Debug, Clone)]
enum Step {
    Alloc,
    Retain(usize),
    Release(usize),
    Alias(usize),
    /// Copy a pointer and free through it at once (the faults' favourite).
    AliasRelease(usize),
    BorrowStart(usize),
    BorrowEnd(usize),
    Mutate(usize),
    Read(usize),
    DropWithoutRelease(usize),
    OpBegin,
    OpFinish(usize),
    OpTouch(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0usize..16;
    prop_oneof![
        3 => Just(Step::Alloc),
        3 => i.clone().prop_map(Step::Retain),
        4 => i.clone().prop_map(Step::Release),
        1 => i.clone().prop_map(Step::Alias),
        1 => i.clone().prop_map(Step::AliasRelease),
        2 => i.clone().prop_map(Step::BorrowStart),
        2 => i.clone().prop_map(Step::BorrowEnd),
        1 => i.clone().prop_map(Step::Mutate),
        1 => i.clone().prop_map(Step::Read),
        1 => i.clone().prop_map(Step::DropWithoutRelease),
        2 => Just(Step::OpBegin),
        2 => i.clone().prop_map(Step::OpFinish),
        1 => i.prop_map(Step::OpTouch),
    ]
}

/// What the model knows about one message: nothing but counts.
#[derive(Debug, Default)]
struct ModelMsg {
    count: u32,
    borrows: u32,
    freed: bool,
}

/// The reference model plus the real handles it stands for.
struct Run {
    ledger: Arc<Ledger>,
    msgs: Vec<ModelMsg>,
    /// Real handle and the model message (index) it names.
    handles: Vec<(MsgRef, usize)>,
    borrows: Vec<(Borrow, usize)>,
    ops: Vec<(Op, bool)>,
    expected: Vec<(ViolationKind, String)>,
}

impl Run {
    fn new(mode: Mode) -> Self {
        Run {
            ledger: Ledger::new(mode),
            msgs: Vec::new(),
            handles: Vec::new(),
            borrows: Vec::new(),
            ops: Vec::new(),
            expected: Vec::new(),
        }
    }

    fn expect_msg(&mut self, kind: ViolationKind, m: usize) {
        self.expected
            .push((kind, format!("msg #{} PUBLISH", m + 1)));
    }

    fn expect_op(&mut self, kind: ViolationKind, o: usize) {
        self.expected.push((kind, format!("op #{} PUBLISH", o + 1)));
    }

    fn pick<T>(v: &[T], i: usize) -> Option<usize> {
        (!v.is_empty()).then(|| i % v.len())
    }

    fn apply(&mut self, s: &Step) {
        match *s {
            Step::Alloc => {
                let h = self
                    .ledger
                    .alloc(MsgKind::Publish, Bytes::from_static(b"p"), "alloc");
                self.msgs.push(ModelMsg {
                    count: 1,
                    ..ModelMsg::default()
                });
                self.handles.push((h, self.msgs.len() - 1));
            }
            Step::Retain(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                let h = self.handles[i].0.retain("retain");
                if self.msgs[m].freed {
                    self.expect_msg(ViolationKind::UseAfterRelease, m);
                } else {
                    self.msgs[m].count += 1;
                }
                self.handles.push((h, m));
            }
            Step::Release(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let (h, m) = self.handles.swap_remove(i);
                h.release("release");
                self.model_release(m);
            }
            Step::Alias(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                let h = self.handles[i].0.alias("alias");
                self.handles.push((h, m));
            }
            Step::AliasRelease(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                self.handles[i].0.alias("alias").release("alias release");
                self.model_release(m);
            }
            Step::BorrowStart(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                match self.handles[i].0.borrow("write start") {
                    Ok(b) => {
                        assert!(!self.msgs[m].freed, "borrowed a freed message");
                        self.msgs[m].borrows += 1;
                        self.borrows.push((b, m));
                    }
                    Err(_) => {
                        assert!(self.msgs[m].freed, "refused a live message");
                        self.expect_msg(ViolationKind::UseAfterRelease, m);
                    }
                }
            }
            Step::BorrowEnd(i) => {
                let Some(i) = Self::pick(&self.borrows, i) else {
                    return;
                };
                let (b, m) = self.borrows.swap_remove(i);
                drop(b);
                // A write whose message was freed under it has nothing to end.
                if !self.msgs[m].freed {
                    self.msgs[m].borrows -= 1;
                }
            }
            Step::Mutate(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                let r = self.handles[i]
                    .0
                    .mutate("mutate", |b| *b = Bytes::from_static(b"q"));
                let mm = &self.msgs[m];
                if mm.freed {
                    assert!(r.is_err());
                    self.expect_msg(ViolationKind::UseAfterRelease, m);
                } else {
                    assert!(r.is_ok());
                    if mm.count > 1 || mm.borrows > 0 {
                        self.expect_msg(ViolationKind::MutateWhileShared, m);
                    }
                }
            }
            Step::Read(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                let m = self.handles[i].1;
                let r = self.handles[i].0.data("read");
                assert_eq!(r.is_err(), self.msgs[m].freed);
                if self.msgs[m].freed {
                    self.expect_msg(ViolationKind::UseAfterRelease, m);
                }
            }
            Step::DropWithoutRelease(i) => {
                let Some(i) = Self::pick(&self.handles, i) else {
                    return;
                };
                // The reference (if it was one) stays counted: a leak.
                drop(self.handles.swap_remove(i));
            }
            Step::OpBegin => {
                let op = self.ledger.begin_op(OpKind::Publish, "begin");
                self.ops.push((op, false));
            }
            Step::OpFinish(i) => {
                let Some(i) = Self::pick(&self.ops, i) else {
                    return;
                };
                let won = self.ops[i].0.finish(Outcome::Success, "finish");
                assert_eq!(won, !self.ops[i].1);
                if self.ops[i].1 {
                    self.expect_op(ViolationKind::OpFinishedTwice, i);
                }
                self.ops[i].1 = true;
            }
            Step::OpTouch(i) => {
                let Some(i) = Self::pick(&self.ops, i) else {
                    return;
                };
                let ok = self.ops[i].0.touch("touch");
                assert_eq!(ok, !self.ops[i].1);
                if self.ops[i].1 {
                    self.expect_op(ViolationKind::OpTouchedAfterFinish, i);
                }
            }
        }
    }

    fn model_release(&mut self, m: usize) {
        let mm = &mut self.msgs[m];
        if mm.freed {
            self.expect_msg(ViolationKind::DoubleRelease, m);
            return;
        }
        mm.count -= 1;
        if mm.count == 0 {
            mm.freed = true;
            let borrowed = mm.borrows > 0;
            mm.borrows = 0;
            if borrowed {
                self.expect_msg(ViolationKind::ReleaseWhileBorrowed, m);
            }
        }
    }

    fn model_stats(&self) -> Stats {
        let freed = self.msgs.iter().filter(|m| m.freed).count() as u64;
        let finished = self.ops.iter().filter(|o| o.1).count() as u64;
        Stats {
            allocated: self.msgs.len() as u64,
            freed,
            live: self.msgs.len() as u64 - freed,
            ops_begun: self.ops.len() as u64,
            ops_finished: finished,
            ops_open: self.ops.len() as u64 - finished,
            violations: self.expected.len() as u64,
        }
    }

    fn reported(&self) -> Vec<(ViolationKind, String)> {
        self.ledger
            .violations()
            .iter()
            .map(|v| (v.kind, v.subject.to_string()))
            .collect()
    }
}

fn check(mode: Mode, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut run = Run::new(mode);
    for (n, s) in steps.iter().enumerate() {
        run.apply(s);
        prop_assert_eq!(
            run.reported(),
            run.expected.clone(),
            "after step {} {:?}",
            n,
            s
        );
        prop_assert_eq!(
            run.ledger.stats(),
            run.model_stats(),
            "after step {} {:?}",
            n,
            s
        );
    }
    // Quiescence: writes end, handles are dropped (leaking what they held).
    run.borrows.clear();
    run.handles.clear();
    let audit = run.ledger.audit();
    let mut expected = run.expected.clone();
    for (m, mm) in run.msgs.iter().enumerate() {
        if !mm.freed {
            expected.push((ViolationKind::Leak, format!("msg #{} PUBLISH", m + 1)));
        }
    }
    for (o, (_, finished)) in run.ops.iter().enumerate() {
        if !finished {
            expected.push((
                ViolationKind::OpNeverFinished,
                format!("op #{} PUBLISH", o + 1),
            ));
        }
    }
    let got: Vec<_> = audit
        .violations
        .iter()
        .map(|v| (v.kind, v.subject.to_string()))
        .collect();
    prop_assert_eq!(got, expected);
    prop_assert_eq!(audit.stats, run.model_stats());
    if mode == Mode::Full {
        for v in &audit.violations {
            prop_assert!(!v.history.is_empty(), "no history for {}", v.diagnosis());
            prop_assert!(v.history.windows(2).all(|w| w[0].seq < w[1].seq));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn counting_mode_matches_the_model(steps in prop::collection::vec(step(), 0..60)) {
        check(Mode::Counting, &steps)?;
    }

    #[test]
    fn full_mode_matches_the_model(steps in prop::collection::vec(step(), 0..60)) {
        check(Mode::Full, &steps)?;
    }
}

/// A run that only follows the protocol audits clean, whatever the order.
#[test]
fn correct_use_audits_clean() {
    let steps = [
        Step::Alloc,
        Step::Retain(0),
        Step::BorrowStart(1),
        Step::BorrowEnd(0),
        Step::OpBegin,
        Step::Release(1),
        Step::Release(0),
        Step::OpFinish(0),
    ];
    let mut run = Run::new(Mode::Full);
    for s in &steps {
        run.apply(s);
    }
    assert!(run.expected.is_empty());
    assert!(run.ledger.audit().is_clean());
}
