//! The bug zoo at run time: reproductions and the detection matrix.

pub mod recipes;
