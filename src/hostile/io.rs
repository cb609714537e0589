//! The socket under the hostile broker's TLS: it can trickle bytes, cut a
//! TLS record in the middle, or end the connection with a TCP reset.
//!
//! These are transport faults a TLS client meets in the field (a NAT
//! dropping state, a broker killed mid-write, a slow link) and that a broker
//! written on top of a TLS library cannot produce on purpose: the shaping
//! has to happen below the TLS layer, on the bytes of finished records.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// What happens to bytes written through a [`HostileIo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shaping {
    /// Written as they come.
    Pass,
    /// One byte per write, with a pause after each.
    Trickle {
        /// The pause between bytes.
        gap: Duration,
    },
    /// Only the next `bytes` bytes reach the wire; everything after is
    /// swallowed (reported written, never sent), so that the peer sees a
    /// record that stops in the middle once the connection is closed.
    CutAfter {
        /// How many more bytes get through.
        bytes: usize,
    },
}

/// A TCP stream whose writes are shaped by a [`Shaping`].
#[derive(Debug)]
pub struct HostileIo {
    tcp: TcpStream,
    shaping: Shaping,
    pause: Option<Pin<Box<Sleep>>>,
}

impl HostileIo {
    /// Wraps `tcp`, passing bytes through until told otherwise.
    pub fn new(tcp: TcpStream) -> Self {
        HostileIo {
            tcp,
            shaping: Shaping::Pass,
            pause: None,
        }
    }

    /// Changes how the following writes are shaped.
    pub fn set_shaping(&mut self, shaping: Shaping) {
        self.shaping = shaping;
    }

    /// True once a [`Shaping::CutAfter`] has let its last byte through.
    pub fn is_cut(&self) -> bool {
        self.shaping == Shaping::CutAfter { bytes: 0 }
    }

    /// Ends the connection with a TCP reset (RST) instead of a FIN:
    /// SO_LINGER 0, then close. No close_notify, no FIN.
    pub fn reset(self) -> io::Result<()> {
        self.tcp.set_zero_linger()?;
        drop(self.tcp);
        Ok(())
    }

    /// Closes the TCP connection with a FIN (no TLS close_notify).
    pub fn close(self) {
        drop(self.tcp);
    }
}

impl AsyncRead for HostileIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostileIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.shaping {
            Shaping::Pass => Pin::new(&mut this.tcp).poll_write(cx, buf),
            Shaping::Trickle { gap } => {
                if let Some(pause) = this.pause.as_mut() {
                    ready!(pause.as_mut().poll(cx));
                    this.pause = None;
                }
                let Some(first) = buf.get(..1) else {
                    return Poll::Ready(Ok(0));
                };
                let n = ready!(Pin::new(&mut this.tcp).poll_write(cx, first))?;
                this.pause = Some(Box::pin(tokio::time::sleep(gap)));
                Poll::Ready(Ok(n))
            }
            Shaping::CutAfter { bytes: 0 } => Poll::Ready(Ok(buf.len())),
            Shaping::CutAfter { bytes } => {
                let through = buf.get(..bytes).unwrap_or(buf);
                let n = ready!(Pin::new(&mut this.tcp).poll_write(cx, through))?;
                this.shaping = Shaping::CutAfter {
                    bytes: bytes.saturating_sub(n),
                };
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_cut() {
            // The swallowed bytes must not be followed by a close_notify the
            // peer could read as a clean end.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
