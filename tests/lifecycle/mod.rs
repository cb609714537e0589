//! Lifecycle sequences against a reference model (issue 8): the actions,
//! the model, the system-under-test driver and the runner that checks one
//! against the other.

pub mod action;
pub mod driver;
pub mod model;
pub mod run;
