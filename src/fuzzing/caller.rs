//! The application side of a client kernel in the fuzz scripts: it builds
//! requests with [`crate::client::request`], keeps its operations, reaps
//! each one once it is finished (freeing the result and whatever the SDK
//! left in the slot, as the ownership rules say) and consumes deliveries.

use super::shapes::{FILTERS, TOPICS};
use crate::client::{ClientKernel, request};
use crate::codec::QoS;
use crate::ledger::{Op, Outcome};
use bytes::Bytes;

/// Operations one caller keeps at most (older reaped ones are forgotten).
const MAX_KEPT: usize = 32;

struct Tracked {
    op: Op,
    reaped: bool,
}

/// One application's operations.
#[derive(Default)]
pub(crate) struct Caller {
    ops: Vec<Tracked>,
}

fn qos(b: u8) -> QoS {
    match b % 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn pick(table: &[&'static str], i: u8) -> &'static str {
    table
        .get(usize::from(i) % table.len())
        .copied()
        .unwrap_or("a")
}

impl Caller {
    /// Keeps `op` until it is finished and reaped.
    pub(crate) fn track(&mut self, op: Op) {
        if self.ops.len() >= MAX_KEPT
            && let Some(i) = self.ops.iter().position(|t| t.reaped)
        {
            self.ops.remove(i);
        }
        self.ops.push(Tracked { op, reaped: false });
    }

    /// Reaps every finished operation not reaped yet.
    pub(crate) fn reap(&mut self) {
        for t in self.ops.iter_mut().filter(|t| !t.reaped) {
            if let Some(r) = request::reap(&t.op, "caller: reap") {
                if let Some(m) = r.result {
                    m.release("caller: result");
                }
                t.reaped = true;
            }
        }
    }

    /// The `i`-th kept operation (modulo how many are kept).
    pub(crate) fn nth(&self, i: u8) -> Option<&Op> {
        let n = self.ops.len().max(1);
        self.ops.get(usize::from(i) % n).map(|t| &t.op)
    }

    /// SUBSCRIBE to filter choice `f` at QoS choice `q`.
    pub(crate) fn subscribe(&mut self, c: &ClientKernel, f: u8, q: u8, now_ms: u64) {
        let v = c.config().version;
        if let Ok(op) = request::subscribe(c.ledger(), v, &[(pick(&FILTERS, f), qos(q))]) {
            self.send(c, op, false, now_ms);
        }
    }

    /// UNSUBSCRIBE from filter choice `f`.
    pub(crate) fn unsubscribe(&mut self, c: &ClientKernel, f: u8, now_ms: u64) {
        let v = c.config().version;
        if let Ok(op) = request::unsubscribe(c.ledger(), v, &[pick(&FILTERS, f)]) {
            self.send(c, op, false, now_ms);
        }
    }

    /// PUBLISH to topic choice `t`; `flags` bits 0-1 QoS, bit 2 retain.
    pub(crate) fn publish(
        &mut self,
        c: &ClientKernel,
        t: u8,
        flags: u8,
        payload: &[u8],
        now_ms: u64,
    ) {
        let v = c.config().version;
        let q = qos(flags);
        let p = Bytes::copy_from_slice(payload);
        if let Ok(op) = request::publish(c.ledger(), v, pick(&TOPICS, t), p, q, flags & 4 != 0) {
            self.send(c, op, q == QoS::AtMostOnce, now_ms);
        }
    }

    fn send(&mut self, c: &ClientKernel, op: Op, qos0: bool, now_ms: u64) {
        if qos0 {
            c.publish_qos0(&op);
        } else if c.send_request(&op, now_ms).is_err() && !op.is_finished() {
            // Refused before the SDK took it (no packet id): the request is
            // still the caller's, and so is finishing the operation.
            op.finish(Outcome::Failed("refused".into()), "caller: send refused");
        }
        self.track(op);
    }

    /// Takes and frees every delivered message.
    pub(crate) fn consume(c: &ClientKernel) {
        for _ in 0..1024 {
            match c.take_received() {
                Some(r) => request::consume(r.msg),
                None => return,
            }
        }
    }
}
