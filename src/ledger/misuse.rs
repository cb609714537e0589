//! One deliberately wrong use per violation kind.
//!
//! The self-check (`mqtls check`), the loom models and the tests all provoke
//! violations through these, so "the ledger detects X" is proven on the same
//! steps everywhere. Each names the C mistake it mirrors.

use super::{Ledger, MsgKind, OpKind, Outcome, ViolationKind};
use bytes::Bytes;

/// Performs the canonical misuse that must be reported as `kind`.
pub fn provoke(ledger: &Ledger, kind: ViolationKind) {
    let payload = Bytes::from_static(b"\x82\x0c\x00\x01\x00\x02t0\x00");
    match kind {
        // NanoMQ 1766: the write completes and frees the only reference,
        // then the caller frees "its" message on the error path.
        ViolationKind::DoubleRelease => {
            let m = ledger.alloc(MsgKind::Subscribe, payload, "client::subscribe");
            let wire = m.alias("park without a reference");
            wire.release("tls write_done");
            m.release("subscribe (error path)");
        }
        // NanoMQ 485: a delivery clones the retained message after the
        // store's only reference was freed.
        ViolationKind::UseAfterRelease => {
            let m = ledger.alloc(MsgKind::Publish, payload, "retain::store");
            let delivery = m.alias("retain::deliver (no clone)");
            m.release("first delivery write_done");
            let again = delivery.retain("second delivery clone");
            again.release("second delivery write_done");
        }
        ViolationKind::Leak => {
            let m = ledger.alloc(MsgKind::Publish, payload, "broker::publish");
            drop(m);
        }
        // NanoNNG 230: the send callback frees the message the TLS write
        // still reads.
        ViolationKind::ReleaseWhileBorrowed => {
            let m = ledger.alloc(MsgKind::Publish, payload, "broker::publish");
            let write = m.borrow("tls::write start");
            m.release("send callback");
            drop(write);
        }
        // Setting the DUP bit on a message that another subscriber's write
        // is reading.
        ViolationKind::MutateWhileShared => {
            let m = ledger.alloc(MsgKind::Publish, payload, "broker::publish");
            let other = m.retain("fanout: second subscriber");
            let _ = m.mutate("resend: set DUP", |b| {
                let mut v = b.to_vec();
                if let Some(first) = v.first_mut() {
                    *first |= 0x08;
                }
                *b = Bytes::from(v);
            });
            other.release("second subscriber write_done");
            m.release("first subscriber write_done");
        }
        // NanoMQ 1766 on an ordinary subscribe, as the C shim sees it: the
        // user aio's slot points at the SUBSCRIBE without a reference of its
        // own (a watch), the write completion frees the only reference, and
        // the slot is left dangling although nobody reads it (yet).
        ViolationKind::FreedWhileInSlot => {
            let m = ledger.alloc(MsgKind::Subscribe, payload, "nng_mqtt_subscribe");
            let slot = m.watch();
            m.release("mqtts_tcptran_pipe_send_cb");
            if !slot.is_live() {
                slot.report(
                    ViolationKind::FreedWhileInSlot,
                    "mqtts_tcptran_pipe_send_cb",
                    "the user aio's slot still points at it".into(),
                );
            }
        }
        // NanoNNG 83430191f: SUBACK and the timeout both finish the op.
        ViolationKind::OpFinishedTwice => {
            let op = ledger.begin_op(OpKind::Subscribe, "client::subscribe");
            op.finish(Outcome::Success, "reader: SUBACK");
            op.finish(Outcome::TimedOut, "timer: subscribe timeout");
        }
        // NanoNNG 1578: cancel detaches the op and never finishes it.
        ViolationKind::OpNeverFinished => {
            let op = ledger.begin_op(OpKind::Receive, "client::recv");
            op.touch("cancel (detach only)");
        }
        // nng 355: cancel leaves the op armed; the late ACK touches it.
        ViolationKind::OpTouchedAfterFinish => {
            let op = ledger.begin_op(OpKind::Subscribe, "client::subscribe");
            op.finish(Outcome::Canceled, "cancel");
            op.touch("reader: late SUBACK");
        }
    }
}
