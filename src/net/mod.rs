//! The tokio + rustls shell around the kernels: the broker server
//! ([`server`]), the async client library ([`client`]) and the writer loop
//! both share ([`io`]).
//!
//! Kernels are synchronous and take their locks internally: the shell calls
//! them from tasks between awaits, never across one, and names the task
//! acting (`conn-3/reader`, `sub/caller`) so that ledger reports say who did
//! what.

pub mod client;
mod clock;
mod error;
pub mod io;
pub mod server;
pub mod socket;

pub use client::{Client, ClientOptions, Message};
pub use clock::Clock;
pub use error::NetError;
pub use server::{Server, ServerOptions, ServerReport};
