//! The broker shell: TLS (and optionally plain TCP) listeners, an accept
//! loop whose handshakes are bounded and never block it, per-connection
//! reader and writer tasks over the broker kernel, and the keep-alive timer.
//!
//! Every connection ends through one path that calls
//! [`Broker::connection_lost`]; [`Server::shutdown`] stops the listeners,
//! ends every connection, shuts the kernel down and audits the ledger.

use super::NetError;
use super::clock::Clock;
use super::io::{WriterEnd, outbox_waker, write_loop};
use crate::broker::{Broker, BrokerConfig, BrokerStats, Conn, Flow};
use crate::ledger::{self, Audit, Ledger};
use crate::sync::{Arc, StdArc};
use crate::tls::ServerTls;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How often the timer runs the broker's keep-alive and expiry checks.
const TICK: Duration = Duration::from_millis(250);

/// While a connection's send queue holds this many entries, its reader
/// stops reading: a client that publishes without reading its
/// acknowledgements gets TCP backpressure instead of an ever longer queue.
const READ_PAUSE_AT: usize = 4_096;

/// How often a paused reader looks at the send queue again.
const READ_PAUSE_POLL: Duration = Duration::from_millis(5);

/// What a broker listens on and how it behaves.
#[derive(Clone)]
pub struct ServerOptions {
    /// The TLS configuration and the address of the TLS listener.
    pub tls: Option<(ServerTls, SocketAddr)>,
    /// The address of a plain TCP listener, if wanted.
    pub tcp: Option<SocketAddr>,
    /// Bound on a client's TLS handshake; a client that never finishes
    /// is dropped after it.
    pub handshake_timeout: Duration,
    /// How long a connection the broker closes may take to flush its last
    /// packets (a DISCONNECT with a reason code, say).
    pub close_linger: Duration,
    /// The kernel's limits and faults.
    pub broker: BrokerConfig,
}

impl ServerOptions {
    /// A TLS listener on `addr` with default limits.
    pub fn tls(tls: ServerTls, addr: SocketAddr) -> Self {
        ServerOptions {
            tls: Some((tls, addr)),
            tcp: None,
            handshake_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(2),
            broker: BrokerConfig::default(),
        }
    }
}

struct Shared {
    broker: Broker,
    clock: Clock,
    handshake_timeout: Duration,
    close_linger: Duration,
    stop: watch::Receiver<bool>,
}

/// A running broker.
pub struct Server {
    shared: StdArc<Shared>,
    ledger: Arc<Ledger>,
    tls_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

/// What a stopped server leaves behind.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerReport {
    /// The ledger audit after everything ended.
    pub audit: Audit,
    /// Traffic counters.
    pub stats: BrokerStats,
    /// Connections that did not end within the shutdown bound and were
    /// aborted (0 normally).
    pub aborted: usize,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NetError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NetError::Bind {
            addr: addr.to_string(),
            source,
        })
}

impl Server {
    /// Opens the listeners and starts serving. The broker records into
    /// `ledger`.
    pub async fn start(opts: ServerOptions, ledger: Arc<Ledger>) -> Result<Server, NetError> {
        let tls = match &opts.tls {
            Some((tls, addr)) => Some((tls.clone(), bind(*addr).await?)),
            None => None,
        };
        let tcp = match opts.tcp {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let tls_addr = tls.as_ref().and_then(|(_, l)| l.local_addr().ok());
        let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = StdArc::new(Shared {
            broker: Broker::new(ledger.clone(), opts.broker.clone()),
            clock: Clock::new(),
            handshake_timeout: opts.handshake_timeout,
            close_linger: opts.close_linger,
            stop: stop_rx,
        });
        let supervisor = tokio::spawn(supervise(shared.clone(), tls, tcp));
        Ok(Server {
            shared,
            ledger,
            tls_addr,
            tcp_addr,
            stop: stop_tx,
            supervisor,
        })
    }

    /// The bound TLS address (with the real port when 0 was asked for).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The bound plain TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The broker kernel (for counters).
    pub fn broker(&self) -> &Broker {
        &self.shared.broker
    }

    /// The ledger the broker records into.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Stops listening, ends every connection (bounded), shuts the kernel
    /// down and audits the ledger.
    pub async fn shutdown(self) -> ServerReport {
        let _ = self.stop.send(true);
        let aborted = match self.supervisor.await {
            Ok(()) => 0,
            Err(_) => 1,
        };
        ledger::with_actor("broker/shutdown", || self.shared.broker.shutdown());
        ServerReport {
            audit: self.ledger.audit(),
            stats: self.shared.broker.stats(),
            aborted,
        }
    }
}

/// Accept loops and the timer; on stop, waits for every connection.
async fn supervise(
    shared: StdArc<Shared>,
    tls: Option<(ServerTls, TcpListener)>,
    tcp: Option<TcpListener>,
) {
    let mut conns = JoinSet::new();
    let mut stop = shared.stop.clone();
    let mut timer = tokio::time::interval(TICK);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = timer.tick() => tick(&shared),
            accepted = accept(tls.as_ref().map(|(_, l)| l)) => {
                if let (Some((cfg, _)), Some((tcp, peer))) = (&tls, accepted) {
                    let (cfg, shared) = (cfg.clone(), shared.clone());
                    conns.spawn(async move { serve_tls(shared, cfg, tcp, peer).await });
                }
            }
            accepted = accept(tcp.as_ref()) => {
                if let Some((tcp, peer)) = accepted {
                    let shared = shared.clone();
                    conns.spawn(async move { serve(shared, tcp, peer).await });
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(tls);
    drop(tcp);
    // Every connection task sees the stop too; give them a bound.
    let all_done = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), all_done)
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connections did not end in 5 s; aborting them",
            conns.len()
        );
        conns.shutdown().await;
    }
}

/// The next connection on `listener`; pends forever without a listener.
/// An accept error (out of file descriptors, say) is logged and retried
/// after a pause instead of ending the loop.
async fn accept(listener: Option<&TcpListener>) -> Option<(TcpStream, SocketAddr)> {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    match l.accept().await {
        Ok((tcp, peer)) => {
            super::socket::prepare(&tcp);
            Some((tcp, peer))
        }
        Err(e) => {
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

fn tick(shared: &Shared) {
    let now = shared.clock.now_ms();
    ledger::with_actor("broker/timer", || {
        for conn in shared.broker.tick(now) {
            tracing::debug!(conn = conn.id(), "keep-alive expired");
            shared.broker.connection_lost(&conn, now);
        }
    });
}

async fn serve_tls(shared: StdArc<Shared>, tls: ServerTls, tcp: TcpStream, peer: SocketAddr) {
    let mut stop = shared.stop.clone();
    let handshake = tokio::time::timeout(shared.handshake_timeout, tls.accept(tcp));
    let stream = tokio::select! {
        _ = stop.changed() => return,
        r = handshake => r,
    };
    match stream {
        Ok(Ok(stream)) => serve(shared, stream, peer).await,
        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::info!(
            %peer,
            "TLS handshake did not finish within {:?}; dropped",
            shared.handshake_timeout
        ),
    }
}

/// One connection, from accept to `connection_lost`.
async fn serve<S>(shared: StdArc<Shared>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let broker = &shared.broker;
    let notify = StdArc::new(Notify::new());
    let conn = ledger::with_actor("broker/acceptor", || {
        broker.accept(shared.clock.now_ms(), Some(outbox_waker(&notify)))
    });
    let id = conn.id();
    tracing::debug!(conn = id, %peer, "connected");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer_done = StdArc::new(Notify::new());
    let mut writer = Some(tokio::spawn({
        let (conn, notify, writer_done) = (conn.clone(), notify.clone(), writer_done.clone());
        async move {
            let actor = format!("conn-{id}/writer");
            let closing = conn.clone();
            let end = write_loop(&conn.outbox, &notify, &mut wr, &actor, || {
                closing.is_closing()
            })
            .await;
            writer_done.notify_one();
            end
        }
    }));

    let actor = format!("conn-{id}/reader");
    let mut stop = shared.stop.clone();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let graceful = loop {
        if *stop.borrow() {
            break false;
        }
        let paused = conn.outbox.queued() >= READ_PAUSE_AT;
        tokio::select! {
            _ = writer_done.notified() => break false,
            _ = stop.changed() => break false,
            _ = tokio::time::sleep(READ_PAUSE_POLL), if paused => {}
            r = rd.read_buf(&mut buf), if !paused => match r {
                Ok(0) => break false,
                Ok(_) => {
                    let now = shared.clock.now_ms();
                    let flow = ledger::with_actor(&actor, || broker.on_bytes(&conn, &buf, now));
                    buf.clear();
                    // A flat-out publisher always has the next read ready:
                    // without this its task would keep the worker for
                    // tokio's whole budget (128 reads, thousands of
                    // deliveries) while other clients wait.
                    tokio::task::yield_now().await;
                    if let Flow::Close(why) = flow {
                        tracing::debug!(conn = id, code = ?why.code, "closing: {}", why.detail);
                        conn.outbox.poke();
                        break true;
                    }
                }
                Err(e) => {
                    tracing::debug!(conn = id, "read failed: {e}");
                    break false;
                }
            }
        }
    };
    if graceful {
        // Let the writer send what the broker queued last (its DISCONNECT
        // or refusing CONNACK), bounded against a peer that stops reading.
        if let Some(w) = writer.as_mut()
            && let Ok(end) = tokio::time::timeout(shared.close_linger, w).await
        {
            log_end(id, end);
            writer = None;
        }
    }
    end_connection(&shared, &conn, &actor);
    if let Some(mut w) = writer {
        notify.notify_one();
        match tokio::time::timeout(Duration::from_secs(1), &mut w).await {
            Ok(end) => log_end(id, end),
            Err(_) => w.abort(),
        }
    }
    tracing::debug!(conn = id, "ended");
}

fn end_connection(shared: &Shared, conn: &Arc<Conn>, actor: &str) {
    let now = shared.clock.now_ms();
    ledger::with_actor(actor, || shared.broker.connection_lost(conn, now));
}

fn log_end(id: u64, end: Result<WriterEnd, tokio::task::JoinError>) {
    match end {
        Ok(WriterEnd::Io(e)) => tracing::debug!(conn = id, "write failed: {e}"),
        Ok(WriterEnd::Encode(e)) => tracing::warn!(conn = id, "could not encode: {e}"),
        Ok(_) => {}
        Err(e) => tracing::warn!(conn = id, "writer task failed: {e}"),
    }
}
