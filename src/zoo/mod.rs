//! The bug zoo at run time: reproductions and the detection matrix.

#[cfg(not(feature = "loom"))]
pub mod e2e_engine;
pub mod fuzz_engine;
pub mod loom_results;
pub mod matrix;
pub mod recipes;
#[cfg(all(feature = "shuttle", not(feature = "loom")))]
pub mod schedule_engine;
pub mod sequences;
#[cfg(not(feature = "loom"))]
pub mod stress;

use matrix::DetectionEngine;

/// Every run-time engine the detection matrix uses, in column order. An
/// engine that cannot start (no PKI for the TLS runs) is left out with a
/// note on stderr.
pub fn engines() -> Vec<Box<dyn DetectionEngine>> {
    #[cfg_attr(feature = "loom", allow(unused_mut))]
    let mut v: Vec<Box<dyn DetectionEngine>> = vec![
        Box::new(recipes::RecipeEngine),
        Box::new(sequences::SequencesEngine),
        Box::new(fuzz_engine::FuzzEngine),
    ];
    // Real threads and sockets: not under the loom build, whose primitives
    // only work inside a model.
    #[cfg(not(feature = "loom"))]
    {
        v.push(Box::new(stress::StressEngine));
        #[cfg(feature = "shuttle")]
        v.push(Box::new(schedule_engine::ScheduleEngine));
        match e2e_engine::E2eEngine::new() {
            Ok(e) => v.push(Box::new(e)),
            Err(why) => eprintln!("end-to-end TLS engine left out: {why}"),
        }
    }
    v
}
