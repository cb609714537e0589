//! The bug zoo at run time: reproductions and the detection matrix.

pub mod matrix;
pub mod recipes;
pub mod sequences;
#[cfg(not(feature = "loom"))]
pub mod stress;

use matrix::DetectionEngine;

/// Every run-time engine the detection matrix uses, in column order.
pub fn engines() -> Vec<Box<dyn DetectionEngine>> {
    vec![
        Box::new(recipes::RecipeEngine),
        Box::new(sequences::SequencesEngine),
        // Real threads: not under the loom build, whose primitives only
        // work inside a model.
        #[cfg(not(feature = "loom"))]
        Box::new(stress::StressEngine),
    ]
}
