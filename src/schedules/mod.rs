//! The schedule engine: shuttle (randomized and PCT scheduling of real
//! threads) over the whole broker and client pair.
//!
//! Loom explores every interleaving of a few threads and a few operations;
//! whole scenarios (a broker, several clients, their readers, writers,
//! callers, a timer and a closer) are far past what it can hold. This engine
//! runs such scenarios as threads over the same kernels, with the crate's
//! primitives switched to shuttle's inside each execution
//! ([`crate::sync::schedule`]), samples schedules with shuttle's random or
//! PCT scheduler, and stops at the first one where the ledger reports a
//! violation or an oracle a broken promise. That schedule is printed in a
//! text form a committed regression file replays exactly.
//!
//! - [`world`]: the threaded pair and its oracles;
//! - [`scenario`]: what the threads do;
//! - [`record`]: schedules written down and read back;
//! - [`explore`]: the search and the replay;
//! - [`regressions`]: the committed schedules.

pub mod explore;
pub mod record;
pub mod regressions;
pub mod scenario;
pub mod world;

pub use explore::{Exploration, Finding, Strategy, explore, replay};
pub use scenario::Scenario;
