//! The lifecycle driver over real TLS: every link is a rustls client and
//! server stream pair over a loopback TCP connection, written with the
//! shell's own write path.
//!
//! Proptest needs reproducible runs, so the kernels are still driven one
//! step at a time by the [`Sim`](crate::sim::Sim) bookkeeping (writes held
//! in flight, failed writes, timers on a virtual clock). What changes is the
//! [`Wire`]: a completed write is encoded and handed back to its outbox by
//! [`net::io::complete_job`](crate::net::io::complete_job), written and
//! flushed into the TLS stream by [`net::io::write_out`], read on the peer's
//! TLS stream until those bytes arrived, and given to the peer kernel one
//! read at a time, as the shell's readers do. A broker-ended connection
//! closes with TLS close_notify as the shell's writer does; a dropped one
//! closes the socket under the peer.
//!
//! The driver owns a current-thread tokio runtime and blocks on it for each
//! step; every step is bounded by [`STEP_LIMIT`]. A transport failure (which
//! loopback should never produce) drops the link, as the shell would, and is
//! recorded in the [`TransportLog`]: a run whose log is not empty did not
//! test what it meant to.

use super::driver::StepDriver;
use crate::broker::BrokerConfig;
use crate::e2e::Tls;
use crate::kernels::frame::OutFrame;
use crate::kernels::outbox::{Outbox, WriteJob, WriteResult};
use crate::ledger::Ledger;
use crate::net::NetError;
use crate::net::io::{complete_job, write_out};
use crate::net::socket;
use crate::sim::{Carried, Close, Dir, Wire};
use crate::sync::{Arc, Mutex, lock};
use bytes::{Bytes, BytesMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// Bound on one step on the wire (a handshake, a write and its read, a
/// close).
pub const STEP_LIMIT: Duration = Duration::from_secs(5);

/// What the shell's reader reads at most at once.
const READ_BUF: usize = 16 * 1024;

/// The lifecycle driver over loopback TLS.
pub type TlsDriver = StepDriver<TlsWire>;

impl TlsDriver {
    /// A fresh broker with `cfg` recording into `ledger`, whose connections
    /// are TLS connections over 127.0.0.1 with `tls`.
    pub fn new(ledger: Arc<Ledger>, cfg: BrokerConfig, tls: &Tls) -> Result<Self, NetError> {
        Ok(StepDriver::with_wire(ledger, cfg, TlsWire::new(tls)?))
    }

    /// What this driver's connections did (opened, bytes, transport
    /// failures), readable after the run consumed the driver.
    pub fn transport_log(&self) -> TransportLog {
        self.wire().log.clone()
    }
}

/// What a [`TlsWire`] did: connections opened, bytes carried, and
/// transport failures (each dropped the link it happened on). Shared, so
/// it can be read after the run consumed the driver.
#[derive(Clone, Default)]
pub struct TransportLog(Arc<Mutex<Traffic>>);

#[derive(Default)]
struct Traffic {
    failures: Vec<String>,
    connections: u64,
    bytes: u64,
}

impl TransportLog {
    fn failed(&self, what: String) {
        tracing::warn!("loopback TLS transport: {what}");
        lock(&self.0).failures.push(what);
    }

    /// Every failure so far, oldest first.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.0).failures.clone()
    }

    /// TLS connections opened (both handshakes done).
    pub fn connections(&self) -> u64 {
        lock(&self.0).connections
    }

    /// Plaintext bytes carried, both ways.
    pub fn bytes(&self) -> u64 {
        lock(&self.0).bytes
    }
}

/// One link's connection: both ends of a TLS session over loopback TCP.
struct Pair {
    client: tokio_rustls::client::TlsStream<TcpStream>,
    server: tokio_rustls::server::TlsStream<TcpStream>,
}

/// A [`Wire`] whose links are TLS connections over 127.0.0.1.
pub struct TlsWire {
    rt: Runtime,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Tls,
    /// Indexed by link; `None` once closed (or never opened).
    links: Vec<Option<Pair>>,
    log: TransportLog,
}

impl TlsWire {
    /// A listener on a free loopback port and a runtime to drive it.
    pub fn new(tls: &Tls) -> Result<Self, NetError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let want = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = rt
            .block_on(TcpListener::bind(want))
            .map_err(|source| NetError::Bind {
                addr: want.to_string(),
                source,
            })?;
        let addr = listener.local_addr()?;
        Ok(TlsWire {
            rt,
            listener,
            addr,
            tls: tls.clone(),
            links: Vec::new(),
            log: TransportLog::default(),
        })
    }

    /// Carries `buf` in `dir` on `link`, recording a failure.
    fn send(&mut self, link: usize, dir: Dir, buf: &mut BytesMut) -> Carried {
        let Some(pair) = self.links.get_mut(link).and_then(Option::as_mut) else {
            self.log
                .failed(format!("link {link}: a write on a closed connection"));
            return Carried::Dropped;
        };
        let moved = self.rt.block_on(async {
            let transfer = async {
                match dir {
                    Dir::Up => transfer(&mut pair.client, &mut pair.server, buf).await,
                    Dir::Down => transfer(&mut pair.server, &mut pair.client, buf).await,
                }
            };
            timeout(STEP_LIMIT, transfer).await
        });
        match moved {
            Ok(Ok(chunks)) => {
                let n: usize = chunks.iter().map(Bytes::len).sum();
                lock(&self.log.0).bytes += n as u64;
                Carried::Delivered(chunks)
            }
            Ok(Err(e)) => {
                self.log.failed(format!("link {link} {dir:?}: {e}"));
                Carried::Dropped
            }
            Err(_) => {
                self.log.failed(format!(
                    "link {link} {dir:?}: the bytes did not arrive within {STEP_LIMIT:?}"
                ));
                Carried::Dropped
            }
        }
    }
}

/// Opens a loopback TCP connection through `listener` and runs both TLS
/// handshakes.
async fn connect_pair(listener: &TcpListener, addr: SocketAddr, tls: &Tls) -> Result<Pair, String> {
    let (tcp, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let tcp = tcp.map_err(|e| format!("TCP connect: {e}"))?;
    let (accepted, _) = accepted.map_err(|e| format!("TCP accept: {e}"))?;
    // The shell's socket options, on both ends.
    socket::prepare(&tcp);
    socket::prepare(&accepted);
    let (client, server) = tokio::join!(tls.client.connect(tcp), tls.server.accept(accepted));
    Ok(Pair {
        client: client.map_err(|e| format!("client handshake: {e}"))?,
        server: server.map_err(|e| format!("server handshake: {e}"))?,
    })
}

/// Writes `buf` on `from` with the shell's write path while reading on
/// `to` until all of it arrived; returns what each read returned.
async fn transfer<W, R>(from: &mut W, to: &mut R, buf: &mut BytesMut) -> std::io::Result<Vec<Bytes>>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let want = buf.len();
    let (wrote, read) = tokio::join!(write_out(from, buf), read_exactly(to, want));
    wrote?;
    read
}

/// Reads until `want` bytes arrived, one chunk per read.
async fn read_exactly<R: AsyncRead + Unpin>(
    to: &mut R,
    want: usize,
) -> std::io::Result<Vec<Bytes>> {
    let mut chunks = Vec::new();
    let mut got = 0;
    let mut buf = BytesMut::with_capacity(READ_BUF);
    while got < want {
        let n = to.read_buf(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the peer closed after {got} of {want} bytes"),
            ));
        }
        got += n;
        chunks.push(buf.split().freeze());
    }
    if got > want {
        return Err(std::io::Error::other(format!(
            "{got} bytes arrived where {want} were written"
        )));
    }
    Ok(chunks)
}

/// Reads on `r` until the peer's close shows: `Ok(true)` for a clean TLS
/// close (close_notify), `Ok(false)` for a socket closed under the session.
async fn await_close<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<bool> {
    let mut buf = BytesMut::with_capacity(READ_BUF);
    match r.read_buf(&mut buf).await {
        Ok(0) => Ok(true),
        Ok(n) => Err(std::io::Error::other(format!(
            "{n} unexpected bytes before the close"
        ))),
        Err(_) => Ok(false),
    }
}

impl Wire for TlsWire {
    fn open(&mut self, link: usize) -> bool {
        let (listener, addr, tls) = (&self.listener, self.addr, &self.tls);
        let opened = self
            .rt
            .block_on(async { timeout(STEP_LIMIT, connect_pair(listener, addr, tls)).await });
        if self.links.len() <= link {
            self.links.resize_with(link + 1, || None);
        }
        match opened {
            Ok(Ok(pair)) => {
                if let Some(slot) = self.links.get_mut(link) {
                    *slot = Some(pair);
                }
                lock(&self.log.0).connections += 1;
                true
            }
            Ok(Err(e)) => {
                self.log.failed(format!("link {link}: {e}"));
                false
            }
            Err(_) => {
                self.log.failed(format!(
                    "link {link}: the connection did not open within {STEP_LIMIT:?}"
                ));
                false
            }
        }
    }

    fn finish(
        &mut self,
        link: usize,
        dir: Dir,
        outbox: &Outbox<OutFrame>,
        job: WriteJob<OutFrame>,
        result: WriteResult,
    ) -> Carried {
        if result != WriteResult::Complete {
            // The transport failed before it took the bytes: nothing is
            // written, the sim drops the connection.
            outbox.write_done(job, result);
            return Carried::Nothing;
        }
        let mut buf = BytesMut::new();
        if complete_job(outbox, job, &mut buf).is_err() {
            // The shell's writer drops a connection whose message cannot be
            // encoded (already a ledger finding).
            return Carried::Dropped;
        }
        self.send(link, dir, &mut buf)
    }

    fn carry(&mut self, link: usize, dir: Dir, bytes: &[u8]) -> Carried {
        self.send(link, dir, &mut BytesMut::from(bytes))
    }

    fn close(&mut self, link: usize, how: Close) {
        let Some(Pair {
            mut client,
            mut server,
        }) = self.links.get_mut(link).and_then(Option::take)
        else {
            return;
        };
        let closed = self.rt.block_on(async {
            let observed = async {
                match how {
                    // As the shell's writer ends a connection the broker
                    // closed: close_notify, then FIN; the client's reader
                    // sees the end of the stream.
                    Close::Graceful => {
                        server.shutdown().await?;
                        await_close(&mut client).await
                    }
                    // The client's socket goes away under the session; the
                    // broker's reader sees the connection end.
                    Close::Abrupt => {
                        drop(client);
                        await_close(&mut server).await.map(|clean| !clean)
                    }
                }
            };
            timeout(STEP_LIMIT, observed).await
        });
        match closed {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => self.log.failed(format!(
                "link {link}: a {how:?} close was seen as the other kind by the peer"
            )),
            Ok(Err(e)) => self.log.failed(format!("link {link}: {how:?} close: {e}")),
            Err(_) => self.log.failed(format!(
                "link {link}: the peer did not see the {how:?} close within {STEP_LIMIT:?}"
            )),
        }
    }
}
