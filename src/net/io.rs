//! The writer loop shared by the broker's connections and the client:
//! drains a kernel outbox onto an async byte stream.
//!
//! Each job is encoded into one buffer and handed back with
//! `write_done(Complete)` as soon as its bytes are copied: from then on the
//! bytes belong to the transport, exactly like a TLS write completion in the
//! C stacks, and the message reference is released at that moment. Several
//! jobs are batched into one buffer before one `write_all`, so a burst of
//! small deliveries costs one TLS record instead of one per packet.
//!
//! The two steps of the loop that touch a job and the stream,
//! [`complete_job`] and [`write_out`], are public so that a deterministic
//! driver moving bytes over real TLS (the lifecycle model's TLS driver)
//! writes exactly as the shell does.

use crate::kernels::frame::{OutFrame, encode_job};
use crate::kernels::outbox::{Outbox, WriteJob, WriteResult};
use crate::ledger;
use crate::sync::StdArc;
use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes gathered before one write to the stream.
const BATCH_BYTES: usize = 64 * 1024;

/// How a writer loop ended.
#[derive(Debug)]
pub enum WriterEnd {
    /// The outbox was closed (the connection is being torn down).
    OutboxClosed,
    /// `finished` said so and everything queued was written; the stream
    /// was shut down cleanly (TLS close_notify, then FIN).
    Flushed,
    /// The stream failed.
    Io(std::io::Error),
    /// A queued message could not be encoded (already a ledger finding, or
    /// a broker bug); the connection is dropped.
    Encode(String),
}

/// Builds a waker for a kernel outbox: it stores a permit in `notify`, so
/// a wake between the writer's last drain and its next wait is never lost.
pub fn outbox_waker(notify: &StdArc<Notify>) -> Box<dyn Fn() + Send + Sync> {
    let n = notify.clone();
    Box::new(move || n.notify_one())
}

/// Drains `outbox` onto `stream` until the outbox closes, `finished()`
/// says the connection should end once flushed, or the stream fails.
/// `actor` names the writer in the ledger.
pub async fn write_loop<W>(
    outbox: &Outbox<OutFrame>,
    notify: &Notify,
    stream: &mut W,
    actor: &str,
    finished: impl Fn() -> bool,
) -> WriterEnd
where
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(BATCH_BYTES);
    loop {
        let gathered = ledger::with_actor(actor, || gather(outbox, &mut buf));
        if let Err(why) = gathered {
            return WriterEnd::Encode(why);
        }
        if !buf.is_empty() {
            match write_unless_closed(outbox, notify, stream, &mut buf).await {
                Ok(true) => {}
                Ok(false) => return WriterEnd::OutboxClosed,
                Err(e) => return WriterEnd::Io(e),
            }
            // Other connections' turn (a fast reader's socket is always
            // writable), then more may have been queued while we wrote.
            tokio::task::yield_now().await;
            continue;
        }
        if outbox.is_closed() {
            return WriterEnd::OutboxClosed;
        }
        if finished() && outbox.is_idle() {
            return match stream.shutdown().await {
                Ok(()) => WriterEnd::Flushed,
                Err(e) => WriterEnd::Io(e),
            };
        }
        notify.notified().await;
    }
}

/// [`write_out`], unless `outbox` closes first: a peer that stopped reading
/// blocks the write for ever, and the kernel closing the connection (keep
/// alive, a slow consumer's grace ended) must still end this writer and
/// free what it holds. `Ok(false)` when it gave up. The wakes it takes from
/// `notify` meanwhile are not lost: the loop gathers again after a write.
async fn write_unless_closed<W>(
    outbox: &Outbox<OutFrame>,
    notify: &Notify,
    stream: &mut W,
    buf: &mut BytesMut,
) -> std::io::Result<bool>
where
    W: AsyncWrite + Unpin,
{
    let write = write_out(stream, buf);
    tokio::pin!(write);
    loop {
        tokio::select! {
            r = &mut write => return r.map(|()| true),
            () = notify.notified() => {
                if outbox.is_closed() {
                    return Ok(false);
                }
            }
        }
    }
}

/// Moves queued jobs into `buf` until it holds a batch or the queue is
/// empty. No `.await` in here: a job is never in flight across a
/// suspension point, so aborting the writer task cannot strand one.
fn gather(outbox: &Outbox<OutFrame>, buf: &mut BytesMut) -> Result<(), String> {
    while buf.len() < BATCH_BYTES {
        let Some(job) = outbox.start_write() else {
            return Ok(());
        };
        complete_job(outbox, job, buf)?;
    }
    Ok(())
}

/// Appends `job`'s bytes to `buf` and hands the job back to `outbox`:
/// `Complete`, because from here on the bytes belong to the transport; or
/// `Failed` with the reason when the message cannot be encoded (the
/// connection must then be dropped). Name the writer with
/// [`ledger::with_actor`] around this.
pub fn complete_job(
    outbox: &Outbox<OutFrame>,
    job: WriteJob<OutFrame>,
    buf: &mut BytesMut,
) -> Result<(), String> {
    match encode_job(&job, buf) {
        Ok(()) => {
            outbox.write_done(job, WriteResult::Complete);
            Ok(())
        }
        Err(e) => {
            let why = e.to_string();
            outbox.write_done(job, WriteResult::Failed(why.clone()));
            Err(why)
        }
    }
}

/// Writes `buf` (jobs already completed into it) to `stream`, empties it
/// and flushes, so the bytes are on their way to the peer (a TLS record
/// sealed and handed to the socket) when this returns.
pub async fn write_out<W>(stream: &mut W, buf: &mut BytesMut) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    stream.write_all(buf).await?;
    buf.clear();
    stream.flush().await
}
