//! The tracker driven through the same calls, in the same order, as the
//! NanoNNG code paths it exists for (read in the trees of
//! ../shared/targets/nanomq), with named threads standing in for the
//! target's.

use super::*;
use crate::report::Report;
use crate::sites::{Frame, Stack};
use mqtls_harness::ledger::ViolationKind;
use std::sync::mpsc;

/// Call sites of the paths below: a fake return address per function.
const SITES: &[(usize, &str, &str, u32)] = &[
    (0x100, "nng_mqtt_subscribe", "mqtt_public.c", 966),
    (0x110, "nng_mqtt_subscribe", "mqtt_public.c", 975),
    (0x120, "nng_mqtt_subscribe", "mqtt_public.c", 986),
    (0x130, "nng_mqtt_subscribe", "mqtt_public.c", 988),
    (0x200, "mqtt_ctx_send", "mqtt_client.c", 1110),
    (0x210, "mqtt_send_msg", "mqtt_client.c", 454),
    (0x220, "mqtt_send_msg", "mqtt_client.c", 576),
    (0x230, "mqtt_send_msg", "mqtt_client.c", 555),
    (0x300, "mqtts_tcptran_pipe_send", "mqtt_tls.c", 817),
    (0x310, "mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", 509),
    (0x320, "mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", 514),
    (0x330, "mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", 515),
    (0x340, "mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", 516),
    (0x400, "mqtt_recv_cb", "mqtt_client.c", 930),
    (0x410, "mqtt_recv_cb", "mqtt_client.c", 1144),
    (0x420, "mqtt_recv_cb", "mqtt_client.c", 1145),
    (0x430, "mqtt_recv_cb", "mqtt_client.c", 1151),
    (0x440, "mqtts_tcptran_pipe_recv_cb", "mqtt_tls.c", 600),
    (0x500, "mqtt_close_unack_aio_cb", "mqtt_msg.c", 942),
    (0x600, "mqtt_pipe_init", "mqtt_client.c", 300),
];

fn at(pc: usize) -> Stack {
    Stack::at(pc)
}

fn resolve(pc: usize) -> Frame {
    let found = SITES.iter().find(|(p, ..)| *p == pc);
    Frame {
        function: found.map(|s| s.1.to_string()),
        file: found.map(|s| s.2.to_string()),
        line: found.map(|s| s.3),
        address: format!("{pc:#x}"),
    }
}

/// Every message is a SUBSCRIBE unless the test says otherwise.
fn tracker() -> Tracker {
    Tracker::new(
        Mode::Full,
        Some(Box::new(|ptr| if ptr >= 0x9000 { 9 } else { 8 })),
    )
}

/// One step of a script: which thread, doing what.
type Step = (&'static str, fn(&Tracker));

/// A script thread: its jobs in, "done" out.
type Worker = (mpsc::Sender<fn(&Tracker)>, mpsc::Receiver<()>);

/// Plays `steps` in order, each on the thread of its name (one thread per
/// name for the whole script, as the target's threads are).
fn play(t: &Tracker, steps: &[Step]) {
    std::thread::scope(|s| {
        let mut workers: HashMap<&str, Worker> = HashMap::new();
        for (name, step) in steps {
            let (jobs, done) = workers.entry(name).or_insert_with(|| {
                let (jtx, jrx) = mpsc::channel::<fn(&Tracker)>();
                let (dtx, drx) = mpsc::channel();
                std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn_scoped(s, move || {
                        for job in jrx {
                            job(t);
                            let _ = dtx.send(());
                        }
                    })
                    .unwrap();
                (jtx, drx)
            });
            jobs.send(*step).unwrap();
            done.recv().unwrap();
        }
    });
}

const SUB: usize = 0x1000;
const SUBACK: usize = 0x9000;
const USER_AIO: usize = 0x2000;
const SEND_AIO: usize = 0x3000;

/// The transport's part of sending the SUBSCRIBE: the write completes, the
/// send callback clears its slot and frees the message (mqtt_tls.c).
const WRITE_COMPLETES: Step = ("nng:task", |t| {
    t.aio_get_msg(SEND_AIO, SUB, &at(0x310));
    t.aio_set_msg(SEND_AIO, 0, &at(0x320));
    t.msg_free(SUB, &at(0x330));
    t.msg_free_done();
    t.aio_finish(SEND_AIO, 0, 0, &at(0x340));
});

/// nng_mqtt_subscribe up to the wait, and the protocol's send path, on the
/// caller's thread (nng_send_aio runs mqtt_ctx_send synchronously).
const SUBSCRIBE_SENT: Step = ("connect_cb", |t| {
    t.aio_init(SEND_AIO, &at(0x600));
    t.msg_alloc(SUB, &at(0x100));
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_timeout(USER_AIO, 5000, -1);
    t.aio_set_msg(USER_AIO, SUB, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.aio_get_msg(USER_AIO, SUB, &at(0x200));
    t.aio_set_msg(SEND_AIO, SUB, &at(0x210));
    t.aio_begin(SEND_AIO, 0, &at(0x300));
    t.aio_schedule(SEND_AIO, &at(0x300));
    t.aio_scheduled(SEND_AIO, 0, true);
    t.aio_wait(USER_AIO, &at(0x120));
});

/// The same with the later fix: mqtt_client.c arms the user aio and takes
/// a reference of its own when it parks it in sent_unack.
const SUBSCRIBE_SENT_WITH_REFERENCE: Step = ("connect_cb", |t| {
    t.aio_init(SEND_AIO, &at(0x600));
    t.msg_alloc(SUB, &at(0x100));
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_timeout(USER_AIO, 5000, -1);
    t.aio_set_msg(USER_AIO, SUB, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.aio_get_msg(USER_AIO, SUB, &at(0x200));
    t.aio_schedule(USER_AIO, &at(0x230));
    t.aio_scheduled(USER_AIO, 0, true);
    t.msg_clone(SUB, &at(0x220));
    t.aio_set_msg(SEND_AIO, SUB, &at(0x210));
    t.aio_begin(SEND_AIO, 0, &at(0x300));
    t.aio_schedule(SEND_AIO, &at(0x300));
    t.aio_scheduled(SEND_AIO, 0, true);
    t.aio_wait(USER_AIO, &at(0x120));
});

fn no_settings() -> crate::config::Config {
    crate::config::Config::parse(|_| None, |_| Ok(String::new()))
}

fn findings(t: &Tracker) -> Report {
    Report::build(t, "test", &resolve, &no_settings())
}

fn kinds(r: &Report) -> Vec<ViolationKind> {
    r.violations.iter().map(|v| v.kind).collect()
}

/// NanoNNG 87253717b and c3b043d84, a SUBACK as a broker sends it: the
/// SUBSCRIBE is freed by the write completion while the user aio's slot
/// still points at it; the SUBACK then overwrites the slot. Nothing reads
/// freed memory, and the ledger still names the mistake.
#[test]
fn nanomq_1766_ordinary_subscribe_leaves_the_user_aio_dangling() {
    let t = tracker();
    play(
        &t,
        &[
            SUBSCRIBE_SENT,
            WRITE_COMPLETES,
            ("nng:task#2", |t| {
                t.msg_alloc(SUBACK, &at(0x440));
                t.msg_clone(SUBACK, &at(0x400));
                t.aio_set_msg(USER_AIO, SUBACK, &at(0x400));
                t.msg_free(SUBACK, &at(0x400));
                t.msg_free_done();
                t.aio_finish(USER_AIO, 0, 0, &at(0x400));
            }),
            ("connect_cb", |t| {
                t.aio_waited(USER_AIO);
                t.aio_get_msg(USER_AIO, SUBACK, &at(0x130));
                t.msg_free(SUBACK, &at(0x130));
                t.msg_free_done();
                let tok = t.aio_free_begin(USER_AIO, &at(0x130));
                t.aio_free_end(USER_AIO, tok);
            }),
        ],
    );
    let r = findings(&t);
    assert_eq!(kinds(&r), vec![ViolationKind::FreedWhileInSlot], "{r:#?}");
    let f = &r.shim.findings[0];
    for needle in [
        "msg #1 SUBSCRIBE",
        "allocated by `nng_mqtt_subscribe (mqtt_public.c:966)` on `connect_cb",
        "copied without a reference by `connect_cb",
        "at `mqtt_send_msg (mqtt_client.c:454)`",
        "freed by `nng:task",
        "at `mqtts_tcptran_pipe_send_cb (mqtt_tls.c:515)`",
        "the slot of the aio allocated at `nng_mqtt_subscribe (mqtt_public.c:975)` (op #1 SUBSCRIBE, in progress)",
        "then overwritten by `nng:task",
        "at `mqtt_recv_cb (mqtt_client.c:930)`",
    ] {
        assert!(
            f.diagnosis.contains(needle),
            "{needle:?} not in {}",
            f.diagnosis
        );
    }
    assert_eq!(
        f.signature,
        "FreedWhileInSlot SUBSCRIBE; from nng_mqtt_subscribe; aliased in mqtt_send_msg; \
         released in mqtts_tcptran_pipe_send_cb; at mqtts_tcptran_pipe_send_cb"
    );
    assert!(
        f.timeline
            .contains("alias: handle copied WITHOUT a reference"),
        "{}",
        f.timeline
    );
    assert!(r.shim.held_at_stop.is_empty(), "{:?}", r.shim.held_at_stop);
    assert!(r.shim.open_at_stop.is_empty(), "{:?}", r.shim.open_at_stop);
    let json = serde_json::to_value(&r.shim).unwrap();
    assert_eq!(json["findings"][0]["kind"], "FreedWhileInSlot");
    assert_eq!(
        json["findings"][0]["violation"]["subject"]["kind"],
        "SUBSCRIBE"
    );
    assert_eq!(
        json["findings"][0]["sites"]["aliased"][0]["label"],
        "mqtt_send_msg (mqtt_client.c:454)"
    );
    let back = mqtls_harness::report::shim::ShimReport::parse(&json.to_string()).unwrap();
    assert_eq!(back.findings[0].signature, f.signature);
}

/// The same bug when the broker closes instead of answering
/// (close-before-suback): the close finishes the user aio, and the caller,
/// following "on error the caller owns the message", frees the SUBSCRIBE
/// again (87253717b: mqtt_public.c:986), then reads the dangling slot.
#[test]
fn nanomq_1766_close_before_suback_is_a_double_release_too() {
    let t = tracker();
    play(
        &t,
        &[
            SUBSCRIBE_SENT,
            WRITE_COMPLETES,
            ("nng:task#2", |t| t.aio_finish(USER_AIO, 7, 0, &at(0x500))),
            ("connect_cb", |t| {
                t.aio_waited(USER_AIO);
                t.msg_free(SUB, &at(0x120));
                t.msg_free_done();
                t.aio_get_msg(USER_AIO, SUB, &at(0x130));
            }),
        ],
    );
    let r = findings(&t);
    assert_eq!(
        kinds(&r),
        vec![
            ViolationKind::DoubleRelease,
            ViolationKind::FreedWhileInSlot
        ],
        "{r:#?}"
    );
    let double = &r.shim.findings[0].diagnosis;
    assert!(
        double.contains("released again by `connect_cb") && double.contains("mqtt_public.c:986"),
        "{double}"
    );
    assert!(
        r.shim.findings[1]
            .diagnosis
            .contains("(op #1 SUBSCRIBE, finished: closed)")
            && r.shim.findings[1]
                .diagnosis
                .contains("then read by `connect_cb"),
        "{}",
        r.shim.findings[1].diagnosis
    );
}

/// NanoNNG 52148e769: the protocol takes its own reference when it parks
/// the aio, and on SUBACK frees it and clears the slot in the next
/// statement (`nni_msg_free(nni_aio_get_msg(user_aio)); nni_aio_set_msg(
/// user_aio, NULL);`): clean, the one-statement dangling forgiven.
#[test]
fn the_refcounting_fix_is_clean_and_free_then_clear_is_forgiven() {
    let t = tracker();
    play(
        &t,
        &[
            SUBSCRIBE_SENT_WITH_REFERENCE,
            WRITE_COMPLETES,
            ("nng:task#2", |t| {
                t.msg_alloc(SUBACK, &at(0x440));
                t.aio_get_msg(USER_AIO, SUB, &at(0x410));
                t.msg_free(SUB, &at(0x410));
                t.msg_free_done();
                t.aio_set_msg(USER_AIO, 0, &at(0x420));
                t.msg_clone(SUBACK, &at(0x420));
                t.aio_set_msg(USER_AIO, SUBACK, &at(0x420));
                t.aio_finish(USER_AIO, 0, 0, &at(0x430));
                t.msg_free(SUBACK, &at(0x430));
                t.msg_free_done();
            }),
            ("connect_cb", |t| {
                t.aio_waited(USER_AIO);
                t.aio_get_msg(USER_AIO, SUBACK, &at(0x130));
                t.msg_free(SUBACK, &at(0x130));
                t.msg_free_done();
            }),
        ],
    );
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.counters.dangling_forgiven, 1);
    assert_eq!(r.shim.stats.live, 0);
}

/// A free-then-clear whose free frees more messages inside it (protocol
/// data with messages of its own): the calls made inside the free do not
/// use up the grace.
#[test]
fn calls_made_inside_the_free_do_not_use_up_its_grace() {
    let t = tracker();
    t.aio_init(USER_AIO, &at(0x110));
    t.msg_alloc(SUB, &at(0x100));
    t.msg_alloc(SUB + 8, &at(0x100));
    t.aio_set_msg(USER_AIO, SUB, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.msg_free(SUB, &at(0x410));
    t.msg_free(SUB + 8, &at(0x410));
    t.msg_free_done();
    t.msg_free_done();
    t.aio_set_msg(USER_AIO, 0, &at(0x420));
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.counters.dangling_forgiven, 1);
}

/// The freeing thread goes on to something else: the free-then-clear grace
/// is over and the slot is reported, naming that next step.
#[test]
fn a_freer_that_goes_on_without_clearing_is_reported() {
    let t = tracker();
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_init(SEND_AIO, &at(0x600));
    t.msg_alloc(SUB, &at(0x100));
    t.aio_set_msg(USER_AIO, SUB, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.msg_free(SUB, &at(0x410));
    t.msg_free_done();
    t.aio_begin(SEND_AIO, 0, &at(0x300));
    t.aio_finish(SEND_AIO, 0, 0, &at(0x340));
    t.aio_set_msg(USER_AIO, 0, &at(0x420));
    let r = findings(&t);
    assert_eq!(kinds(&r), vec![ViolationKind::FreedWhileInSlot], "{r:#?}");
    assert!(
        r.shim.findings[0].diagnosis.contains(
            "went on without clearing the slot (next: `mqtts_tcptran_pipe_send (mqtt_tls.c:817)`)"
        ),
        "{}",
        r.shim.findings[0].diagnosis
    );
}

/// A QoS 0 PUBLISH (87253717b mqtt_send_msg): put on the pipe's send aio,
/// then cleared from the user aio by the same thread; the write may
/// complete in between. That hand-over is no violation.
#[test]
fn hand_over_then_clear_is_forgiven_even_when_the_write_completes_first() {
    let t = tracker();
    play(
        &t,
        &[
            ("caller", |t| {
                t.aio_init(SEND_AIO, &at(0x600));
                t.msg_alloc(SUB, &at(0x100));
                t.aio_init(USER_AIO, &at(0x110));
                t.aio_set_msg(USER_AIO, SUB, &at(0x110));
                t.aio_begin(USER_AIO, 0, &at(0x200));
                t.aio_set_msg(SEND_AIO, SUB, &at(0x210));
            }),
            WRITE_COMPLETES,
            ("caller", |t| {
                t.aio_set_msg(USER_AIO, 0, &at(0x210));
                t.aio_finish(USER_AIO, 0, 0, &at(0x210));
            }),
        ],
    );
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.counters.dangling_forgiven, 1);
}

/// nanonng-83430191f / nng-355: a second finish of one operation.
#[test]
fn a_second_finish_is_reported_with_both_sites() {
    let t = tracker();
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.aio_finish(USER_AIO, 0, 0, &at(0x430));
    t.aio_schedule(USER_AIO, &at(0x230));
    t.aio_finish(USER_AIO, 20, 0, &at(0x500));
    let r = findings(&t);
    assert_eq!(
        kinds(&r),
        vec![
            ViolationKind::OpTouchedAfterFinish,
            ViolationKind::OpFinishedTwice
        ],
        "{r:#?}"
    );
    let twice = &r.shim.findings[1].diagnosis;
    assert!(
        twice.contains("finished (success) by")
            && twice.contains("mqtt_recv_cb (mqtt_client.c:1151)")
            && twice.contains("finished again by")
            && twice.contains("mqtt_close_unack_aio_cb (mqtt_msg.c:942)")
            && twice.contains("[first finished success, now canceled]"),
        "{twice}"
    );
}

/// nanonng-1578: a waiter blocked on an operation whose timeout passed and
/// nobody finished: a finding at its sites. A receive with no timeout that
/// waits for the next PUBLISH is only listed.
#[test]
fn a_waiter_stuck_past_its_timeout_is_a_hang_and_an_idle_receive_is_not() {
    let t = tracker();
    play(&t, &[SUBSCRIBE_SENT_WITH_REFERENCE]);
    t.aio_init(SEND_AIO + 8, &at(0x600));
    t.aio_begin(SEND_AIO + 8, 0, &at(0x440));
    let r = Report::build_at(
        &t,
        "test",
        &resolve,
        &no_settings(),
        now_ms() + 5_000 + 1_500,
    );
    let hangs: Vec<_> = r
        .shim
        .findings
        .iter()
        .filter(|f| f.kind == "OpNeverFinished")
        .collect();
    assert_eq!(hangs.len(), 1, "{:#?}", r.shim.findings);
    let d = &hangs[0].diagnosis;
    assert!(
        d.contains("op #1 SUBSCRIBE")
            && d.contains("begun by `mqtt_ctx_send (mqtt_client.c:1110)`")
            && d.contains("its 5000 ms timeout passed")
            && d.contains("the expiry's cancel did not finish it")
            && d.contains("1 waiter(s) blocked in nni_aio_wait")
            && d.contains("(aio allocated at `nng_mqtt_subscribe (mqtt_public.c:975)`)")
            && !d.contains('@'),
        "{d}"
    );
    assert_eq!(
        hangs[0].signature,
        "OpNeverFinished SUBSCRIBE; from mqtt_ctx_send; armed in mqtt_send_msg; \
         waited in nng_mqtt_subscribe; at audit"
    );
    assert!(
        hangs[0]
            .timeline
            .contains("waiter blocks until it finishes"),
        "{}",
        hangs[0].timeline
    );
    assert!(
        r.shim
            .open_at_stop
            .iter()
            .any(|g| g.site.contains("mqtts_tcptran_pipe_recv_cb")),
        "{:?}",
        r.shim.open_at_stop
    );
    // Before the timeout has passed, the same wait is no finding.
    let early = Report::build_at(&t, "test", &resolve, &no_settings(), now_ms());
    assert!(
        early
            .shim
            .findings
            .iter()
            .all(|f| f.kind != "OpNeverFinished"),
        "{:#?}",
        early.shim.findings
    );
}

/// References still held when the report is written are listed by
/// allocation site, not judged.
#[test]
fn references_held_at_stop_are_grouped_by_allocation_site() {
    let t = tracker();
    for i in 0..3 {
        t.msg_alloc(SUB + 16 * i, &at(0x100));
    }
    t.msg_alloc(SUBACK, &at(0x440));
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.held_at_stop.len(), 2, "{:?}", r.shim.held_at_stop);
    assert_eq!(
        r.shim.held_at_stop[0].site,
        "nng_mqtt_subscribe (mqtt_public.c:966)"
    );
    assert_eq!(r.shim.held_at_stop[0].count, 3);
    assert_eq!(r.shim.held_at_stop[0].kinds.get("SUBSCRIBE"), Some(&3));
}

/// An aio used after nni_aio_free: reported on its last operation.
#[test]
fn an_aio_used_after_it_was_freed_is_reported() {
    let t = tracker();
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.aio_finish(USER_AIO, 0, 0, &at(0x430));
    let tok = t.aio_free_begin(USER_AIO, &at(0x130));
    t.aio_free_end(USER_AIO, tok);
    t.aio_get_msg(USER_AIO, 0, &at(0x500));
    let r = findings(&t);
    assert_eq!(
        kinds(&r),
        vec![ViolationKind::OpTouchedAfterFinish],
        "{r:#?}"
    );
    assert!(
        r.shim.findings[0]
            .diagnosis
            .contains("[slot read (nni_aio_get_msg) after its aio was freed at `nng_mqtt_subscribe (mqtt_public.c:988)`]"),
        "{}",
        r.shim.findings[0].diagnosis
    );
}

/// nni_msg_unique on a shared message frees the original inside
/// message.c and returns a copy: one reference moves, nothing leaks.
#[test]
fn unique_on_a_shared_message_moves_one_reference_to_a_copy() {
    let t = tracker();
    t.msg_alloc(SUB, &at(0x100));
    t.msg_clone(SUB, &at(0x220));
    let tok = t.msg_replace_begin(SUB, true, &at(0x400));
    t.msg_replace_end(SUB, tok, SUB + 64, &at(0x400));
    t.msg_free(SUB, &at(0x330));
    t.msg_free_done();
    t.msg_free(SUB + 64, &at(0x130));
    t.msg_free_done();
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.stats.live, 0);
    assert_eq!(r.shim.counters.messages, 2);
}

/// Many threads, each with its own aio and messages, through the shim at
/// once: nothing is lost, nothing is reported.
#[test]
fn concurrent_clean_traffic_stays_clean() {
    let t = tracker();
    std::thread::scope(|s| {
        for w in 0..4usize {
            let t = &t;
            s.spawn(move || {
                let aio = 0x10_0000 + w * 0x1000;
                t.aio_init(aio, &at(0x600));
                for i in 0..2_000usize {
                    let m = 0x20_0000 + (w * 4096 + i % 64) * 16;
                    t.msg_alloc(m, &at(0x100));
                    t.aio_set_msg(aio, m, &at(0x110));
                    t.aio_begin(aio, 0, &at(0x300));
                    t.aio_schedule(aio, &at(0x300));
                    t.aio_scheduled(aio, 0, true);
                    t.aio_get_msg(aio, m, &at(0x310));
                    t.aio_set_msg(aio, 0, &at(0x320));
                    t.msg_free(m, &at(0x330));
                    t.msg_free_done();
                    t.aio_finish(aio, 0, 0, &at(0x340));
                }
                let tok = t.aio_free_begin(aio, &at(0x130));
                t.aio_free_end(aio, tok);
            });
        }
    });
    let r = findings(&t);
    assert!(r.shim.findings.is_empty(), "{:#?}", r.shim.findings);
    assert_eq!(r.shim.counters.messages, 8_000);
    assert_eq!(r.shim.stats.ops_begun, 8_000);
    assert_eq!(r.shim.stats.ops_finished, 8_000);
    assert_eq!(r.shim.stats.live, 0);
}

/// A suppression rule moves the finding it explains out of the findings,
/// with its reason; the others stay.
#[test]
fn suppressed_findings_keep_their_reason_and_leave_the_verdict() {
    let t = tracker();
    t.aio_init(USER_AIO, &at(0x110));
    t.aio_begin(USER_AIO, 0, &at(0x200));
    t.aio_finish(USER_AIO, 0, 0, &at(0x430));
    t.aio_finish(USER_AIO, 0, 0, &at(0x500));
    t.aio_init(SEND_AIO, &at(0x600));
    t.aio_begin(SEND_AIO, 0, &at(0x300));
    t.aio_finish(SEND_AIO, 0, 0, &at(0x340));
    t.aio_finish(SEND_AIO, 0, 0, &at(0x340));
    let cfg = crate::config::Config::parse(
        |k| (k == "MQTLS_SHIM_SUPPRESSIONS").then(|| "supp".to_string()),
        |_| Ok("OpFinishedTwice at=mqtt_close_unack_aio_cb # the test's reason\n".into()),
    );
    let r = Report::build(&t, "test", &resolve, &cfg);
    assert_eq!(r.shim.findings.len(), 1, "{:#?}", r.shim.findings);
    assert!(
        r.shim.findings[0]
            .diagnosis
            .contains("mqtts_tcptran_pipe_send_cb")
    );
    assert_eq!(r.shim.suppressed.len(), 1);
    assert_eq!(r.shim.suppressed[0].reason, "the test's reason");
    assert_eq!(
        r.shim.suppressed[0].rule,
        "OpFinishedTwice at=mqtt_close_unack_aio_cb"
    );
    assert!(
        r.shim
            .summary()
            .contains("1 finding(s) (1 OpFinishedTwice), 1 suppressed"),
        "{}",
        r.shim.summary()
    );
}
