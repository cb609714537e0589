//! Wills waiting out their Will Delay Interval (MQTT 5 section 3.1.3.2.2).
//!
//! Ownership: when a connection with a delayed will ends and its session
//! lives on, the will's only reference moves into the timer's slot for that
//! client id. Exactly one of four events takes it out again, clearing the
//! entry in the same step: the delay passes (`due`: the broker publishes
//! it; `take_due` when the client's CONNECT comes after the delay but
//! before the timer ran), the session ends first (`session_ends`: published
//! now [MQTT-3.1.2-8]), the client connects again in time (`cancel`:
//! released, never published [MQTT-3.1.3-9]), or the broker shuts down
//! (`drain`: released). mosquitto CVE-2019-11778 was the session-end path forgetting
//! the timer: the session freed the will while the timer still held it.

use crate::codec::Publish;
use crate::faults::{Fault, FaultSet};
use crate::ledger::{MsgRef, MsgSlot};
use crate::sync::StdArc;
use std::collections::HashMap;

/// A will and its publish header, as the broker publishes it.
pub struct TimedWill {
    /// The will's reference, now the caller's.
    pub msg: MsgRef,
    /// Topic, QoS, retain and properties (payload field empty).
    pub meta: StdArc<Publish>,
}

struct Entry {
    slot: MsgSlot,
    meta: StdArc<Publish>,
    due_ms: u64,
}

/// Client id to the will its delay timer holds.
#[derive(Default)]
pub struct WillTimers {
    by_client: HashMap<String, Entry>,
}

impl WillTimers {
    /// No will waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wills waiting.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// True when no will is waiting.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// Arms the timer of `client` with `msg` (the timer now owns it), due at
    /// `due_ms`. A will armed before for the same client (it cannot be: a
    /// connection cancels the last one) is handed back to be released.
    pub fn arm(
        &mut self,
        client: &str,
        msg: MsgRef,
        meta: StdArc<Publish>,
        due_ms: u64,
    ) -> Option<MsgRef> {
        let mut slot = MsgSlot::new();
        let _ = slot.set(msg);
        let old = self
            .by_client
            .insert(client.to_string(), Entry { slot, meta, due_ms });
        old.and_then(|mut e| e.slot.take())
    }

    /// The client connected again before the delay passed: the will is
    /// handed back to be released, not published.
    pub fn cancel(&mut self, client: &str) -> Option<MsgRef> {
        self.by_client
            .remove(client)
            .and_then(|mut e| e.slot.take())
    }

    /// The session of `client` ends: its will is published now. With
    /// `mosquitto-cve-2019-11778` on, the will is taken through a copy of
    /// the handle and the timer stays armed with the original.
    pub fn session_ends(&mut self, client: &str, faults: FaultSet) -> Option<TimedWill> {
        let e = self.by_client.get_mut(client)?;
        let msg = faults.take_slot(
            Fault::MosquittoCve201911778,
            &mut e.slot,
            "session end: delayed will",
        )?;
        let meta = e.meta.clone();
        if e.slot.is_empty() {
            self.by_client.remove(client);
        }
        Some(TimedWill { msg, meta })
    }

    /// The wills whose delay passed at `now_ms`, taken off their timers.
    pub fn due(&mut self, now_ms: u64) -> Vec<TimedWill> {
        let ready: Vec<String> = self
            .by_client
            .iter()
            .filter(|(_, e)| e.due_ms <= now_ms)
            .map(|(c, _)| c.clone())
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for c in ready {
            if let Some(mut e) = self.by_client.remove(&c)
                && let Some(msg) = e.slot.take()
            {
                out.push(TimedWill { msg, meta: e.meta });
            }
        }
        out
    }

    /// The will of `client`, if its delay passed at `now_ms`, taken off its
    /// timer (a CONNECT that came before the timer ran).
    pub fn take_due(&mut self, client: &str, now_ms: u64) -> Option<TimedWill> {
        if self.by_client.get(client)?.due_ms > now_ms {
            return None;
        }
        let mut e = self.by_client.remove(client)?;
        let msg = e.slot.take()?;
        Some(TimedWill { msg, meta: e.meta })
    }

    /// Every waiting will, taken off its timer (broker shutdown).
    pub fn drain(&mut self) -> Vec<MsgRef> {
        self.by_client
            .drain()
            .filter_map(|(_, mut e)| e.slot.take())
            .collect()
    }
}
