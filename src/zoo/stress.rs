//! The stress engine: real threads racing over the kernels, many times.
//!
//! Loom proves an interleaving exists; this engine shows the same race
//! happening on real threads, so the detection matrix can run it without
//! the loom build. Each iteration plays the reader (SUBACK), the timer and
//! the caller (cancel) against one parked SUBSCRIBE, starting together.

use super::matrix::{DetectionEngine, Engine, EngineRun};
use crate::client::{ClientConfig, ClientKernel, request};
use crate::codec::{self, AckProperties, Packet, QoS, ReasonCode, Suback, Version};
use crate::faults::{Fault, FaultSet};
use crate::kernels::outbox::WriteResult;
use crate::ledger::{Audit, Ledger, Mode};
use crate::sync::{Arc, AtomicBool, Ordering, thread};
use bytes::BytesMut;
use std::time::{Duration, Instant};

/// Which actors race in one iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// The SUBACK arrives as the subscribe times out.
    SubackVsTimeout,
    /// The caller cancels as the SUBACK arrives.
    CancelVsSuback,
}

impl Race {
    fn for_fault(f: Option<Fault>) -> Option<Race> {
        match f {
            Some(Fault::Nanonng83430191f) | Some(Fault::Nanonng23d0eb290) => {
                Some(Race::SubackVsTimeout)
            }
            Some(Fault::Nng355) | Some(Fault::Nanonng1578) => Some(Race::CancelVsSuback),
            None => Some(Race::SubackVsTimeout),
            Some(_) => None,
        }
    }
}

/// Runs one race, the second actor starting `offset` spins after the
/// reader, and audits it.
pub fn race_once(race: Race, faults: FaultSet, mode: Mode, offset: u32) -> Audit {
    let ledger = Ledger::new(mode);
    let cfg = ClientConfig {
        version: Version::V311,
        faults,
        ..Default::default()
    };
    let kernel = Arc::new(ClientKernel::new(ledger.clone(), cfg, None, None));
    let op = match request::subscribe(&ledger, Version::V311, &[("t", QoS::AtMostOnce)]) {
        Ok(op) => op,
        Err(_) => return ledger.audit(),
    };
    let pid = kernel.send_request(&op, 0).unwrap_or(1);
    if let Some(job) = kernel.outbox.start_write() {
        kernel.outbox.write_done(job, WriteResult::Complete);
    }
    let mut suback = BytesMut::new();
    let ack = Suback {
        packet_id: pid,
        reasons: vec![ReasonCode::Success],
        properties: AckProperties::default(),
    };
    let _ = codec::encode(&Packet::Suback(ack), Version::V311, &mut suback);
    // Both threads wait for one flag, then the second one waits `offset`
    // spins more: sweeping the offset walks the second actor across the
    // first one's critical sections instead of hoping the scheduler does.
    let go = Arc::new(AtomicBool::new(false));
    let wait = |go: &AtomicBool, spins: u32| {
        while !go.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        for _ in 0..spins {
            std::hint::spin_loop();
        }
    };
    let reader = {
        let k = kernel.clone();
        let go = go.clone();
        thread::spawn(move || {
            crate::ledger::set_actor("reader");
            wait(&go, 0);
            k.on_bytes(&suback);
        })
    };
    let other = {
        let k = kernel.clone();
        let op = op.clone();
        let go = go.clone();
        thread::spawn(move || {
            wait(&go, offset);
            other_side(race, &k, &op, pid)
        })
    };
    go.store(true, Ordering::Release);
    let _ = reader.join();
    let _ = other.join();
    crate::ledger::with_actor("caller", || request::reap_all(&op, "caller: reap"));
    kernel.shutdown();
    ledger.audit()
}

/// The actor racing the reader.
fn other_side(race: Race, k: &ClientKernel, op: &crate::ledger::Op, pid: u16) {
    match race {
        Race::SubackVsTimeout => {
            crate::ledger::set_actor("timer");
            k.time_out(pid);
        }
        Race::CancelVsSuback => {
            crate::ledger::set_actor("caller");
            k.cancel(op);
        }
    }
}

/// The spin offset of iteration `i`: a sweep from 0 to 2000 spins.
fn offset(i: u64) -> u32 {
    ((i * 37) % 2000) as u32
}

/// The stress engine for the detection matrix.
pub struct StressEngine;

impl DetectionEngine for StressEngine {
    fn engine(&self) -> Engine {
        Engine::Stress
    }

    fn run(&self, faults: FaultSet, target: Option<Fault>, budget: Duration) -> EngineRun {
        let Some(race) = Race::for_fault(target) else {
            return EngineRun::default();
        };
        let started = Instant::now();
        let mut iterations = 0;
        // The control run must stay clean for its whole budget; a fault
        // run stops at the first finding.
        while started.elapsed() < budget {
            iterations += 1;
            let audit = race_once(race, faults, Mode::Counting, offset(iterations));
            if let Some(v) = audit.violations.into_iter().next() {
                // Replay in full mode for the history (the race may need a
                // few tries to hit again).
                let full = (0..1000)
                    .map(|i| race_once(race, faults, Mode::Full, offset(iterations + i)))
                    .find_map(|a| a.violations.into_iter().next())
                    .unwrap_or(v);
                return EngineRun {
                    applicable: true,
                    violation: Some(full),
                    kind: None,
                    failure: None,
                    iterations,
                    reproduction: Some(format!(
                        "{race:?}: one parked SUBSCRIBE, two threads racing"
                    )),
                };
            }
        }
        EngineRun {
            applicable: true,
            iterations,
            ..EngineRun::default()
        }
    }
}
