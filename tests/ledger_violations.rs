#![cfg(not(feature = "loom"))]
//! Every violation kind, made to happen on purpose: the report must name the
//! kind, the handle (`msg #1 SUBSCRIBE`), and the sites and actors involved,
//! in the diagnosis and in the JSON. Plus stale handles after cell reuse,
//! counting mode, `MsgSlot`, and waiting on operations.

use bytes::Bytes;
use mqtls_harness::ledger::{
    self, Action, Ledger, LedgerError, Mode, MsgKind, MsgSlot, OpKind, Outcome, Violation,
    ViolationKind,
};
use mqtls_harness::sync::{Arc, Mutex, lock, thread};
use std::time::Duration;

fn payload() -> Bytes {
    Bytes::from_static(b"\x82\x0c\x00\x01\x00\x02t0\x00")
}

/// The single violation of `kind` the ledger holds after an audit.
fn only(l: &Ledger, kind: ViolationKind) -> Violation {
    let audit = l.audit();
    let found: Vec<_> = audit.violations.iter().filter(|v| v.kind == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind}: {:#?}",
        audit.violations
    );
    assert_eq!(
        audit.violations.len(),
        1,
        "unexpected extra findings: {:#?}",
        audit.violations
    );
    found[0].clone()
}

/// Asserts the diagnosis carries `needles`, and the JSON every actor and
/// site the needles name (the `backticked` parts), as `actor` or `site`
/// fields of the recorded events.
fn assert_reported(v: &Violation, needles: &[&str]) {
    let diagnosis = v.diagnosis();
    let json = serde_json::to_string(v).unwrap();
    let kind = v.kind.to_string();
    assert!(diagnosis.contains(v.kind.meaning()), "{diagnosis}");
    assert!(diagnosis.starts_with(&v.subject.to_string()), "{diagnosis}");
    assert!(v.to_string().starts_with(&kind), "{v}");
    assert!(json.contains(&format!("\"kind\":\"{kind}\"")), "{json}");
    for n in needles {
        assert!(diagnosis.contains(n), "diagnosis lacks {n:?}: {diagnosis}");
        for name in n.split('`').skip(1).step_by(2) {
            let as_site = format!("\"site\":\"{name}\"");
            let as_actor = format!("\"actor\":\"{name}\"");
            assert!(
                json.contains(&as_site) || json.contains(&as_actor),
                "JSON lacks {name:?}: {json}"
            );
        }
    }
}

/// The subject as JSON, checked field by field (the diagnosis spells it
/// `msg #1 SUBSCRIBE`; the JSON keeps the parts).
fn assert_subject_json(v: &Violation, ty: &str, id_field: &str, id: u64, kind: &str) {
    let j = serde_json::to_value(v).unwrap();
    assert_eq!(j["subject"]["type"], ty, "{j}");
    assert_eq!(j["subject"][id_field], id, "{j}");
    assert_eq!(j["subject"]["kind"], kind, "{j}");
    assert!(
        j["history"].as_array().is_some_and(|h| !h.is_empty()),
        "{j}"
    );
}

#[test]
fn double_release_names_allocator_freer_and_second_releaser() {
    let l = Ledger::new(Mode::Full);
    let m = ledger::with_actor("caller", || {
        let m = l.alloc(MsgKind::Subscribe, payload(), "client::subscribe");
        let wire = m.alias("park without a reference");
        (m, wire)
    });
    let (m, wire) = m;
    ledger::with_actor("tls-writer", || wire.release("write_done"));
    ledger::with_actor("caller", || m.release("subscribe (error path)"));
    let v = only(&l, ViolationKind::DoubleRelease);
    assert_reported(
        &v,
        &[
            "msg #1 SUBSCRIBE",
            "allocated by `client::subscribe` on `caller`",
            "copied without a reference by `caller` at `park without a reference`",
            "freed by `tls-writer` at `write_done`",
            "released again by `caller` at `subscribe (error path)`",
        ],
    );
    assert_subject_json(&v, "msg", "serial", 1, "SUBSCRIBE");
    assert_eq!(v.at.site, "subscribe (error path)");
    assert!(
        v.timeline().contains("release (count 0): freed"),
        "{}",
        v.timeline()
    );
    // History is in order and ends with the offending step.
    assert!(v.history.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(v.history.last(), Some(&v.at));
}

#[test]
fn use_after_release_names_the_late_clone() {
    let l = Ledger::new(Mode::Full);
    ledger::with_actor("broker", || {
        let m = l.alloc(MsgKind::Publish, payload(), "retain::store");
        let delivery = m.alias("retain::deliver (no clone)");
        m.release("first delivery write_done");
        let stale = delivery.retain("second delivery clone");
        assert!(!stale.is_live());
        // Dropping the stale clone is not a second finding: nothing is held.
        drop(stale);
    });
    let v = only(&l, ViolationKind::UseAfterRelease);
    assert_reported(
        &v,
        &[
            "msg #1 PUBLISH",
            "allocated by `retain::store` on `broker`",
            "freed by `broker` at `first delivery write_done`",
            "used again by `broker` at `second delivery clone`",
        ],
    );
    assert_subject_json(&v, "msg", "serial", 1, "PUBLISH");
}

#[test]
fn reads_and_writes_through_a_stale_handle_are_refused() {
    let l = Ledger::new(Mode::Full);
    let m = l.alloc(MsgKind::Publish, payload(), "alloc");
    let stale = m.alias("copy");
    m.release("free");
    let err = stale.data("read late").unwrap_err();
    assert_eq!(
        err,
        LedgerError::StaleMessage {
            serial: 1,
            kind: MsgKind::Publish
        }
    );
    assert!(err.to_string().contains("msg #1 PUBLISH was already freed"));
    assert!(stale.mutate("write late", |b| b.clear()).is_err());
    assert!(stale.borrow("send late").is_err());
    let sites: Vec<_> = l.violations().iter().map(|v| (v.kind, v.at.site)).collect();
    assert_eq!(
        sites,
        vec![
            (ViolationKind::UseAfterRelease, "read late"),
            (ViolationKind::UseAfterRelease, "write late"),
            (ViolationKind::UseAfterRelease, "send late"),
        ]
    );
}

#[test]
fn leak_names_the_allocator_and_the_dropping_actor() {
    let l = Ledger::new(Mode::Full);
    ledger::with_actor("broker", || {
        let m = l.alloc(MsgKind::Publish, payload(), "broker::publish");
        let queued = m.retain("outbox::push");
        m.release("broker::publish done");
        ledger::with_actor("closer", || drop(queued));
    });
    let v = only(&l, ViolationKind::Leak);
    assert_reported(
        &v,
        &[
            "msg #1 PUBLISH",
            "allocated by `broker::publish` on `broker`",
            "still outstanding at audit",
        ],
    );
    assert!(
        v.detail.contains("1 reference(s) never released"),
        "{}",
        v.detail
    );
    let dropped = v
        .history
        .iter()
        .find(|e| e.action == Action::DroppedWithoutRelease)
        .expect("the drop is in the history");
    assert_eq!(&*dropped.actor, "closer");
    assert!(v.timeline().contains("handle dropped without release"));
    assert_subject_json(&v, "msg", "serial", 1, "PUBLISH");
}

#[test]
fn release_while_borrowed_names_the_write_and_the_release() {
    let l = Ledger::new(Mode::Full);
    let m = ledger::with_actor("broker", || {
        l.alloc(MsgKind::Publish, payload(), "broker::publish")
    });
    let write = ledger::with_actor("tls-writer", || m.borrow("tls::write start")).unwrap();
    ledger::with_actor("send-cb", || m.release("send callback"));
    // The write then reads memory freed under it: reported separately.
    assert!(write.data().is_err());
    drop(write);
    let audit = l.audit();
    let v = audit
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::ReleaseWhileBorrowed)
        .expect("reported")
        .clone();
    assert_eq!(audit.count(ViolationKind::ReleaseWhileBorrowed), 1);
    assert_eq!(audit.count(ViolationKind::UseAfterRelease), 1);
    assert_eq!(audit.violations.len(), 2);
    assert_reported(
        &v,
        &[
            "msg #1 PUBLISH",
            "allocated by `broker::publish` on `broker`",
            "borrowed for a write by `tls-writer` at `tls::write start`",
            "last reference released by `send-cb` at `send callback`",
        ],
    );
    assert!(
        v.detail.contains("1 write(s) still in flight"),
        "{}",
        v.detail
    );
    assert_subject_json(&v, "msg", "serial", 1, "PUBLISH");
}

#[test]
fn a_finished_write_does_not_count_as_borrowed() {
    let l = Ledger::new(Mode::Full);
    let m = l.alloc(MsgKind::Publish, payload(), "alloc");
    {
        let w = m.borrow("write").unwrap();
        assert_eq!(w.data().unwrap(), payload());
        assert_eq!(w.msg().serial(), 1);
    }
    m.release("write_done");
    assert!(l.audit().is_clean());
}

#[test]
fn mutate_while_shared_names_the_mutator() {
    let l = Ledger::new(Mode::Full);
    let m = ledger::with_actor("broker", || {
        l.alloc(MsgKind::Publish, payload(), "broker::publish")
    });
    let other = m.retain("fanout: second subscriber");
    ledger::with_actor("resender", || {
        m.mutate("resend: set DUP", |b| *b = Bytes::from_static(b"dup"))
            .unwrap()
    });
    // The change is still applied, as the C code would have done.
    assert_eq!(other.data("read").unwrap(), Bytes::from_static(b"dup"));
    other.release("second write_done");
    m.release("first write_done");
    let v = only(&l, ViolationKind::MutateWhileShared);
    assert_reported(
        &v,
        &[
            "msg #1 PUBLISH",
            "allocated by `broker::publish` on `broker`",
            "mutated by `resender` at `resend: set DUP`",
        ],
    );
    assert!(v.detail.contains("2 reference(s)"), "{}", v.detail);
}

#[test]
fn sole_owner_may_mutate() {
    let l = Ledger::new(Mode::Full);
    let m = l.alloc(MsgKind::Publish, payload(), "alloc");
    m.mutate("set DUP", |b| *b = Bytes::from_static(b"x"))
        .unwrap();
    assert_eq!(m.data("read").unwrap(), Bytes::from_static(b"x"));
    m.release("free");
    assert!(l.audit().is_clean());
}

#[test]
fn op_finished_twice_names_both_finishers() {
    let l = Ledger::new(Mode::Full);
    let op = ledger::with_actor("caller", || {
        l.begin_op(OpKind::Subscribe, "client::subscribe")
    });
    assert!(ledger::with_actor("reader", || op.finish(Outcome::Success, "reader: SUBACK")));
    assert!(!ledger::with_actor("timer", || op.finish(Outcome::TimedOut, "timer: timeout")));
    assert_eq!(op.outcome(), Some(Outcome::Success));
    let v = only(&l, ViolationKind::OpFinishedTwice);
    assert_reported(
        &v,
        &[
            "op #1 SUBSCRIBE",
            "begun by `client::subscribe` on `caller`",
            "finished (success) by `reader` at `reader: SUBACK`",
            "finished again by `timer` at `timer: timeout`",
        ],
    );
    assert!(
        v.detail.contains("first finished success, now timed out"),
        "{}",
        v.detail
    );
    assert_subject_json(&v, "op", "id", 1, "SUBSCRIBE");
}

#[test]
fn op_never_finished_names_its_beginner() {
    let l = Ledger::new(Mode::Full);
    let op = ledger::with_actor("caller", || l.begin_op(OpKind::Receive, "client::recv"));
    ledger::with_actor("canceller", || assert!(op.touch("cancel (detach only)")));
    let v = only(&l, ViolationKind::OpNeverFinished);
    assert_reported(
        &v,
        &[
            "op #1 RECEIVE",
            "begun by `client::recv` on `caller`",
            "still outstanding at audit",
        ],
    );
    assert!(v.timeline().contains("touched"), "{}", v.timeline());
    assert_subject_json(&v, "op", "id", 1, "RECEIVE");
}

/// The C shim's check for NanoMQ 1766 on an ordinary subscribe: a watch
/// (the user aio's slot, no reference) sees the message freed by the write
/// completion and reports it with the message's whole story.
#[test]
fn freed_while_in_slot_names_allocator_aliaser_and_freer() {
    let l = Ledger::new(Mode::Full);
    let (m, slot) = ledger::with_actor("caller", || {
        let m = l.alloc(MsgKind::Subscribe, payload(), "nng_mqtt_subscribe");
        let slot = m.watch();
        (m, slot)
    });
    let wire = ledger::with_actor("caller", || m.alias("mqtt_send_msg"));
    assert!(slot.is_live());
    ledger::with_actor("nng:task#2", || {
        wire.release("mqtts_tcptran_pipe_send_cb");
        assert!(!slot.is_live());
        slot.report(
            ViolationKind::FreedWhileInSlot,
            "mqtts_tcptran_pipe_send_cb",
            "the user aio's slot still points at it".into(),
        );
    });
    // The caller's handle names a freed message: dropping it is no leak.
    drop(m);
    let v = only(&l, ViolationKind::FreedWhileInSlot);
    assert_reported(
        &v,
        &[
            "msg #1 SUBSCRIBE",
            "allocated by `nng_mqtt_subscribe` on `caller`",
            "copied without a reference by `caller` at `mqtt_send_msg`",
            "freed by `nng:task#2` at `mqtts_tcptran_pipe_send_cb`",
            "left in a slot by `nng:task#2` at `mqtts_tcptran_pipe_send_cb`",
            "[the user aio's slot still points at it]",
        ],
    );
    assert_subject_json(&v, "msg", "serial", 1, "SUBSCRIBE");
    assert_eq!(slot.serial(), 1);
    assert_eq!(l.stats().live, 0);
}

/// A watch outlives its message's cell being reused: it keeps naming the old
/// message, never the new one.
#[test]
fn a_watch_does_not_follow_its_cell_into_the_next_message() {
    let l = Ledger::new(Mode::Full);
    let first = l.alloc(MsgKind::Subscribe, payload(), "first");
    let w = first.watch();
    first.release("free first");
    let second = l.alloc(MsgKind::Publish, payload(), "second");
    assert!(!w.is_live());
    assert!(second.watch().is_live());
    w.report(ViolationKind::UseAfterRelease, "late reader", "read".into());
    second.release("free second");
    let v = only(&l, ViolationKind::UseAfterRelease);
    assert_eq!(v.subject.to_string(), "msg #1 SUBSCRIBE");
    assert!(
        v.diagnosis().contains("allocated by `first`"),
        "{}",
        v.diagnosis()
    );
    assert!(!v.diagnosis().contains("second"), "{}", v.diagnosis());
}

/// Waits and cancel requests are steps of an operation's history (where a
/// waiter of a never-finished operation hangs), never misuses, also after
/// the finish.
#[test]
fn waits_and_cancels_are_recorded_without_being_misuses() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Subscribe, "nng_mqtt_subscribe");
    ledger::with_actor("connect_cb", || op.note_wait("nng_aio_wait"));
    ledger::with_actor("closer", || op.note_cancel("nni_aio_close"));
    let v = only(&l, ViolationKind::OpNeverFinished);
    let t = v.timeline();
    assert!(
        t.contains("connect_cb") && t.contains("waiter blocks until it finishes"),
        "{t}"
    );
    assert!(t.contains("cancel requested"), "{t}");
    op.finish(Outcome::Closed, "close");
    op.note_wait("late wait");
    op.note_cancel("late cancel");
    assert!(l.audit().is_clean(), "{:#?}", l.audit().violations);
}

/// A check made outside the ledger (the C shim: an aio used after it was
/// freed) is reported on the operation with its history.
#[test]
fn an_outside_check_reports_on_an_operation_with_its_history() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Subscribe, "mqtt_ctx_send");
    op.finish(Outcome::Closed, "mqtt_close_unack_aio_cb");
    ledger::with_actor("caller", || {
        op.report(
            ViolationKind::OpTouchedAfterFinish,
            "nng_aio_get_msg",
            "the aio was freed".into(),
        )
    });
    let v = only(&l, ViolationKind::OpTouchedAfterFinish);
    assert_reported(
        &v,
        &[
            "op #1 SUBSCRIBE",
            "begun by `mqtt_ctx_send`",
            "finished (closed) by",
            "touched again by `caller` at `nng_aio_get_msg`",
            "[the aio was freed]",
        ],
    );
}

#[test]
fn op_touched_after_finish_names_the_late_toucher() {
    let l = Ledger::new(Mode::Full);
    let op = ledger::with_actor("caller", || {
        l.begin_op(OpKind::Subscribe, "client::subscribe")
    });
    ledger::with_actor("canceller", || op.finish(Outcome::Canceled, "cancel"));
    assert!(!ledger::with_actor("reader", || op.touch("reader: late SUBACK")));
    let v = only(&l, ViolationKind::OpTouchedAfterFinish);
    assert_reported(
        &v,
        &[
            "op #1 SUBSCRIBE",
            "begun by `client::subscribe` on `caller`",
            "finished (canceled) by `canceller` at `cancel`",
            "touched again by `reader` at `reader: late SUBACK`",
        ],
    );
}

#[test]
fn attaching_to_a_finished_op_is_a_touch_after_finish() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Publish, "publish");
    op.finish(Outcome::Closed, "close");
    let m = l.alloc(MsgKind::Puback, payload(), "reader");
    assert!(op.set_result(m, "reader: late PUBACK").is_none());
    op.take_result().unwrap().release("caller");
    let v = only(&l, ViolationKind::OpTouchedAfterFinish);
    assert_eq!(v.at.site, "reader: late PUBACK");
}

/// A freed message's cell is reused for the next allocation; the old handle
/// must still be caught, and must not disturb the new message.
#[test]
fn stale_handle_after_cell_reuse_is_caught_and_new_message_is_untouched() {
    for mode in [Mode::Counting, Mode::Full] {
        let l = Ledger::new(mode);
        let old = l.alloc(MsgKind::Subscribe, Bytes::from_static(b"old"), "alloc old");
        let stale = old.alias("keep a pointer");
        old.release("free old");
        let new = l.alloc(MsgKind::Publish, Bytes::from_static(b"new"), "alloc new");
        // The same cell, one generation on (fresh cells start at 0).
        assert!(format!("{new:?}").contains("gen 1"), "{new:?}");
        assert!(!stale.is_live());
        assert_eq!(stale.count(), None);

        assert!(stale.data("stale read").is_err());
        assert!(stale.mutate("stale write", |b| b.clear()).is_err());
        assert!(stale.borrow("stale send").is_err());
        let clone = stale.retain("stale clone");
        assert_eq!(
            new.count(),
            Some(1),
            "a stale retain reached the new message"
        );
        clone.release("stale clone release");
        stale.release("stale release");

        assert_eq!(
            new.count(),
            Some(1),
            "a stale release reached the new message"
        );
        assert_eq!(new.data("read new").unwrap(), Bytes::from_static(b"new"));
        new.release("free new");

        let audit = l.audit();
        assert!(
            audit
                .violations
                .iter()
                .all(|v| v.subject.to_string() == "msg #1 SUBSCRIBE"),
            "a finding landed on the new message: {:#?}",
            audit.violations
        );
        assert_eq!(audit.count(ViolationKind::UseAfterRelease), 4, "{mode:?}");
        assert_eq!(audit.count(ViolationKind::DoubleRelease), 2, "{mode:?}");
        assert_eq!(audit.violations.len(), 6);
        assert_eq!((audit.stats.allocated, audit.stats.freed), (2, 2));
        if mode == Mode::Full {
            // The stale handle's story is the old message's, from the archive.
            let v = &audit.violations[0];
            assert!(
                v.diagnosis().contains("allocated by `alloc old`"),
                "{}",
                v.diagnosis()
            );
            assert!(v.diagnosis().contains("freed by"), "{}", v.diagnosis());
            assert!(!v.timeline().contains("alloc new"), "{}", v.timeline());
        }
    }
}

/// Counting mode detects the same kinds, on the same subjects, without a
/// history, and says how to get one.
#[test]
fn counting_mode_reports_every_kind_without_history() {
    for kind in ViolationKind::ALL {
        let counting = Ledger::new(Mode::Counting);
        let full = Ledger::new(Mode::Full);
        ledger::misuse::provoke(&counting, kind);
        ledger::misuse::provoke(&full, kind);
        let c = counting.audit();
        let f = full.audit();
        let summary = |a: &ledger::Audit| -> Vec<(ViolationKind, String)> {
            a.violations
                .iter()
                .map(|v| (v.kind, v.subject.to_string()))
                .collect()
        };
        assert_eq!(summary(&c), summary(&f), "{kind}: modes disagree");
        assert!(c.count(kind) >= 1, "{kind} missed in counting mode");
        assert_eq!(c.stats, f.stats, "{kind}");
        for v in &c.violations {
            assert!(v.history.is_empty());
            assert!(v.diagnosis().contains("counting mode"), "{}", v.diagnosis());
            assert!(v.diagnosis().contains(&v.subject.to_string()));
        }
        for v in &f.violations {
            assert!(!v.history.is_empty(), "{kind}: full mode lost the history");
        }
    }
}

#[test]
fn audit_serialises_with_stats_and_every_finding() {
    let l = Ledger::new(Mode::Full);
    for kind in ViolationKind::ALL {
        ledger::misuse::provoke(&l, kind);
    }
    let audit = l.audit();
    let j = serde_json::to_value(&audit).unwrap();
    assert_eq!(j["stats"]["allocated"], audit.stats.allocated);
    assert_eq!(j["stats"]["live"], 1, "{}", j["stats"]);
    assert_eq!(j["stats"]["ops_open"], 1, "{}", j["stats"]);
    let kinds: Vec<_> = j["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in ViolationKind::ALL {
        assert!(
            kinds.contains(&kind.to_string()),
            "{kind} missing from {kinds:?}"
        );
    }
}

#[test]
fn msg_slot_holds_at_most_one_and_hands_back_what_it_displaces() {
    let l = Ledger::new(Mode::Full);
    let mut slot = MsgSlot::default();
    assert!(slot.is_empty());
    assert!(slot.peek().is_none());
    assert!(slot.take().is_none());

    let a = l.alloc(MsgKind::Publish, payload(), "a");
    let b = l.alloc(MsgKind::Publish, payload(), "b");
    assert!(slot.set(a).is_none());
    assert!(!slot.is_empty());
    assert_eq!(slot.peek().map(|m| m.serial()), Some(1));
    let displaced = slot.set(b).expect("the first message comes back");
    assert_eq!(displaced.serial(), 1);
    displaced.release("displaced");
    let held = slot.take().expect("the second message");
    assert_eq!(held.serial(), 2);
    assert!(slot.is_empty(), "take must clear");
    assert!(slot.take().is_none());
    held.release("taken");
    assert!(l.audit().is_clean());
}

#[test]
fn a_message_forgotten_in_a_slot_is_a_leak() {
    let l = Ledger::new(Mode::Counting);
    let mut slot = MsgSlot::new();
    let _ = slot.set(l.alloc(MsgKind::Publish, payload(), "queued"));
    drop(slot);
    assert_eq!(l.audit().count(ViolationKind::Leak), 1);
}

#[test]
fn op_slots_carry_request_and_result() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Subscribe, "client::subscribe");
    let sub = l.alloc(MsgKind::Subscribe, payload(), "client::subscribe");
    assert!(op.set_msg(sub, "client::subscribe").is_none());
    assert_eq!(
        op.with_msg(|s| s.peek().map(|m| m.kind())),
        Some(MsgKind::Subscribe)
    );
    let parked = op.take_msg().unwrap();
    let suback = l.alloc(MsgKind::Suback, payload(), "reader");
    assert!(op.set_result(suback, "reader: SUBACK").is_none());
    assert!(op.finish(Outcome::Success, "reader: SUBACK"));
    parked.release("reader: SUBACK");
    // After finish the caller may still take what is left: it owns it.
    assert!(op.take_msg().is_none());
    op.take_result().unwrap().release("caller");
    assert!(l.audit().is_clean());
    assert_eq!(op.kind(), OpKind::Subscribe);
    assert_eq!(op.id(), 1);
}

#[test]
fn wait_returns_the_outcome_set_by_another_thread() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Subscribe, "client::subscribe");
    let remote = op.clone();
    let finisher = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        remote.finish(Outcome::Failed("refused".into()), "reader: SUBACK 0x80")
    });
    assert_eq!(op.wait(), Outcome::Failed("refused".into()));
    assert!(finisher.join().unwrap());
    // Waiting on a finished operation returns at once.
    assert_eq!(op.wait(), Outcome::Failed("refused".into()));
    assert!(op.is_finished());
    assert!(l.audit().is_clean());
}

#[test]
fn on_finish_runs_exactly_once_with_the_first_outcome() {
    let l = Ledger::new(Mode::Full);
    let op = l.begin_op(OpKind::Publish, "client::publish");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    op.on_finish(move |o| lock(&s).push(o.clone()));
    assert!(lock(&seen).is_empty(), "ran before the finish");
    assert!(op.finish(Outcome::TimedOut, "timer"));
    assert!(!op.finish(Outcome::Success, "reader: PUBACK"));
    assert_eq!(*lock(&seen), vec![Outcome::TimedOut]);
    // Registered after the finish: runs at once.
    let s = Arc::clone(&seen);
    op.on_finish(move |o| lock(&s).push(o.clone()));
    assert_eq!(*lock(&seen), vec![Outcome::TimedOut, Outcome::TimedOut]);
    assert_eq!(l.audit().count(ViolationKind::OpFinishedTwice), 1);
}

#[test]
fn outcomes_read_as_words() {
    assert_eq!(Outcome::Success.to_string(), "success");
    assert_eq!(Outcome::Canceled.to_string(), "canceled");
    assert_eq!(Outcome::TimedOut.to_string(), "timed out");
    assert_eq!(Outcome::Closed.to_string(), "closed");
    assert_eq!(Outcome::Failed("x".into()).to_string(), "failed: x");
}

#[test]
fn actor_defaults_and_restores() {
    thread::spawn(|| {
        assert_eq!(&*ledger::current_actor(), "unnamed");
        ledger::with_actor("outer", || {
            ledger::with_actor("inner", || assert_eq!(&*ledger::current_actor(), "inner"));
            assert_eq!(&*ledger::current_actor(), "outer");
        });
        assert_eq!(&*ledger::current_actor(), "unnamed");
        ledger::set_actor("named");
        assert_eq!(&*ledger::current_actor(), "named");
    })
    .join()
    .unwrap();
}

/// A retained message delivered many times keeps a bounded history: its
/// allocation, the landmarks, the latest steps and a count of what was
/// dropped, so a late misuse is still diagnosed in full.
#[test]
fn long_lived_message_history_is_bounded_but_still_diagnosed() {
    let l = Ledger::new(Mode::Full);
    let store = ledger::with_actor("broker", || {
        l.alloc(MsgKind::Publish, payload(), "retain::store")
    });
    let pointer = store.alias("retain::deliver (no clone)");
    for _ in 0..10_000 {
        store.retain("deliver").release("write_done");
    }
    store.release("retain::clear");
    pointer.release("late delivery write_done");
    let v = only(&l, ViolationKind::DoubleRelease);
    assert!(
        v.history.len() < 400,
        "history not bounded: {}",
        v.history.len()
    );
    assert_eq!(v.history.first().map(|e| e.site), Some("retain::store"));
    assert!(v.history.windows(2).all(|w| w[0].seq < w[1].seq));
    let elided: u64 = v
        .history
        .iter()
        .filter_map(|e| match e.action {
            Action::Elided { count } => Some(count),
            _ => None,
        })
        .sum();
    let kept_routine = v
        .history
        .iter()
        .filter(|e| matches!(e.action, Action::Retain { .. } | Action::Release { .. }))
        .count() as u64;
    assert_eq!(
        elided + kept_routine,
        20_000,
        "steps lost without being counted"
    );
    assert!(
        v.timeline().contains("routine step(s) not kept"),
        "{}",
        v.timeline()
    );
    assert_reported(
        &v,
        &[
            "allocated by `retain::store` on `broker`",
            "copied without a reference by `unnamed` at `retain::deliver (no clone)`",
            "freed by `unnamed` at `retain::clear`",
            "released again by `unnamed` at `late delivery write_done`",
        ],
    );
}
