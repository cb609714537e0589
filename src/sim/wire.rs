//! What carries a link's bytes between a client and the broker: the
//! [`Sim`](super::Sim) keeps the step bookkeeping (writes in flight, who
//! reads what, closes) and hands every byte movement to a [`Wire`].
//!
//! [`Memory`] hands the encoded bytes straight to the peer; the lifecycle
//! model's TLS wire moves them over a real loopback TLS connection with the
//! shell's own write path.

use super::Dir;
use crate::kernels::frame::{OutFrame, encode_job};
use crate::kernels::outbox::{Outbox, WriteJob, WriteResult};
use bytes::{Bytes, BytesMut};

/// What a finished write left for the peer to read.
#[derive(Debug)]
pub enum Carried {
    /// The peer read these bytes, in the chunks its reads returned.
    Delivered(Vec<Bytes>),
    /// Nothing arrives and the connection stays up (a failed write: the
    /// sim drops the link itself; or, in memory, a message that could not
    /// be encoded).
    Nothing,
    /// The connection ended under the write (the transport failed, or the
    /// shell's writer gave up on a message it could not encode).
    Dropped,
}

/// How a connection ends on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The broker's side flushed and closes cleanly (TLS close_notify,
    /// then FIN), as the shell's writer does for a connection the broker
    /// ended.
    Graceful,
    /// The connection drops where it stands.
    Abrupt,
}

/// A byte transport for the links of a [`Sim`](super::Sim). Link numbers
/// are the sim's; each is opened once and closed at most once.
pub trait Wire {
    /// Opens the connection of link `link`. False when it could not be
    /// opened (the wire keeps its own record of why); the sim then drops
    /// the link.
    fn open(&mut self, link: usize) -> bool;
    /// Ends the write `job` taken from `outbox` in direction `dir` with
    /// `result` (the caller names the writer in the ledger): hands the job
    /// back with [`Outbox::write_done`] and, when it completed, carries its
    /// bytes to the peer.
    fn finish(
        &mut self,
        link: usize,
        dir: Dir,
        outbox: &Outbox<OutFrame>,
        job: WriteJob<OutFrame>,
        result: WriteResult,
    ) -> Carried;
    /// Carries raw `bytes` (no job: a hostile or fuzzed client's input) in
    /// direction `dir`.
    fn carry(&mut self, link: usize, dir: Dir, bytes: &[u8]) -> Carried;
    /// Ends the connection of link `link`.
    fn close(&mut self, link: usize, how: Close);
}

/// The in-memory wire: every write's bytes reach the peer in one piece.
#[derive(Debug, Default, Clone, Copy)]
pub struct Memory;

impl Wire for Memory {
    fn open(&mut self, _link: usize) -> bool {
        true
    }

    fn finish(
        &mut self,
        _link: usize,
        _dir: Dir,
        outbox: &Outbox<OutFrame>,
        job: WriteJob<OutFrame>,
        result: WriteResult,
    ) -> Carried {
        // Encoded before the job is handed back, as a transport reads the
        // buffer it was given before reporting on it.
        let mut bytes = BytesMut::new();
        let encoded = encode_job(&job, &mut bytes).is_ok();
        let complete = result == WriteResult::Complete;
        outbox.write_done(job, result);
        if complete && encoded {
            Carried::Delivered(vec![bytes.freeze()])
        } else {
            Carried::Nothing
        }
    }

    fn carry(&mut self, _link: usize, _dir: Dir, bytes: &[u8]) -> Carried {
        Carried::Delivered(vec![Bytes::copy_from_slice(bytes)])
    }

    fn close(&mut self, _link: usize, _how: Close) {}
}
