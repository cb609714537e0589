//! The end-to-end engine: the TLS scenarios of [`crate::e2e`] (the reference
//! broker and clients over real TLS on loopback) with the fault switched on.

use super::matrix::{DetectionEngine, Engine, EngineRun};
use crate::e2e::{self, Tls};
use crate::faults::{Fault, FaultSet};
use std::time::{Duration, Instant};

/// The end-to-end TLS engine; holds the PKI every run uses.
pub struct E2eEngine {
    tls: Tls,
}

impl E2eEngine {
    /// An engine over a freshly generated in-memory PKI.
    pub fn new() -> Result<E2eEngine, String> {
        let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())
            .map_err(|e| e.to_string())?;
        let tls = Tls::from_pki(&pki).map_err(|e| e.to_string())?;
        Ok(E2eEngine { tls })
    }
}

impl DetectionEngine for E2eEngine {
    fn engine(&self) -> Engine {
        Engine::E2eTls
    }

    fn run(&self, faults: FaultSet, target: Option<Fault>, budget: Duration) -> EngineRun {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                return EngineRun {
                    applicable: true,
                    failure: Some(format!("no tokio runtime: {e}")),
                    ..EngineRun::default()
                };
            }
        };
        let started = Instant::now();
        let mut iterations = 0;
        // A control run repeats the scenarios for its whole budget; a fault
        // run stops at the first scenario that shows it.
        loop {
            let outcomes = rt.block_on(e2e::all(&self.tls, faults, |_| {}));
            for o in outcomes {
                iterations += 1;
                if let Some(v) = o.audit.violations.first() {
                    return EngineRun {
                        applicable: true,
                        violation: Some(v.clone()),
                        kind: None,
                        failure: None,
                        iterations,
                        reproduction: Some(format!("scenario `{}` over TLS", o.name)),
                    };
                }
                if !o.behaved && target.is_none() {
                    return EngineRun {
                        applicable: true,
                        failure: Some(format!("scenario `{}`: {}", o.name, o.detail)),
                        iterations,
                        ..EngineRun::default()
                    };
                }
            }
            if started.elapsed() >= budget {
                return EngineRun {
                    applicable: true,
                    iterations,
                    ..EngineRun::default()
                };
            }
        }
    }
}
