//! The bug zoo at run time: reproductions and the detection matrix.

pub mod matrix;
pub mod recipes;
pub mod sequences;
#[cfg(not(feature = "loom"))]
pub mod stress;

use matrix::DetectionEngine;

/// Every run-time engine the detection matrix uses, in column order.
pub fn engines() -> Vec<Box<dyn DetectionEngine>> {
    let mut v: Vec<Box<dyn DetectionEngine>> = vec![
        Box::new(recipes::RecipeEngine),
        Box::new(sequences::SequencesEngine),
    ];
    #[cfg(not(feature = "loom"))]
    v.push(Box::new(stress::StressEngine));
    v
}
