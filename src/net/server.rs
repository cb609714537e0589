//! The broker shell: TLS (and optionally plain TCP) listeners, an accept
//! loop whose handshakes are bounded and never block it, per-connection
//! reader and writer tasks over the broker kernel, and the keep-alive timer.
//!
//! Every connection ends through one path that calls
//! [`Broker::connection_lost`]; [`Server::shutdown`] stops the listeners,
//! ends every connection, shuts the kernel down and audits the ledger.
//!
//! Logs (`info`): each refused connection with its reason (a failed TLS
//! handshake explained, plain MQTT on the TLS port, TLS on the plain port,
//! silence), each connection opened, each client connected, and each
//! connection closed with its reason code. `debug` adds the kernel's detail.

use super::NetError;
use super::clock::Clock;
use super::io::{WriterEnd, outbox_waker, write_loop};
use crate::broker::{Broker, BrokerConfig, BrokerStats, CloseReason, Conn, Flow};
use crate::codec::ReasonCode;
use crate::ledger::{self, Audit, Ledger};
use crate::sync::{Arc, AtomicU64, Ordering, StdArc};
use crate::tls::{FirstBytes, ServerTls};
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
    /// Bound on a client's TLS handshake (on the plain listener: on its
    /// first bytes); a client that never finishes is dropped after it.
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
    /// The bound ports, for the advice a refusal log line gives.
    tls_port: Option<u16>,
    tcp_port: Option<u16>,
    refused: AtomicU64,
}

impl Shared {
    /// Logs and counts a connection refused before MQTT began.
    fn refuse(&self, peer: SocketAddr, why: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%peer, "refused a connection: {why}");
    }
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
    /// Connections refused before MQTT began: failed or unfinished TLS
    /// handshakes, plain bytes on the TLS port, TLS on the plain port.
    pub refused: u64,
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
            tls_port: tls_addr.map(|a| a.port()),
            tcp_port: tcp_addr.map(|a| a.port()),
            refused: AtomicU64::new(0),
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
            refused: self.shared.refused.load(Ordering::Relaxed),
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
                    conns.spawn(async move { serve_plain(shared, tcp, peer).await });
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
            shared.broker.connection_lost(&conn, now);
        }
    });
}

/// The first bytes waiting on `tcp`, without reading them (`None`: the
/// peer closed before sending any).
async fn first_bytes(tcp: &TcpStream) -> Option<FirstBytes> {
    let mut head = [0u8; 3];
    match tcp.peek(&mut head).await {
        Ok(n) => FirstBytes::of(head.get(..n).unwrap_or_default()),
        Err(_) => None,
    }
}

/// Advice for a client that spoke plain MQTT to the TLS port.
fn plain_on_tls_advice(shared: &Shared) -> String {
    let plain = shared.tcp_port.map_or_else(String::new, |p| {
        format!(", or connect to the plain TCP port {p}")
    });
    format!(
        "the client must use TLS (mosquitto_sub --cafile CA.pem, mqtls sub -s --cafile CA.pem){plain}"
    )
}

async fn serve_tls(shared: StdArc<Shared>, tls: ServerTls, tcp: TcpStream, peer: SocketAddr) {
    let mut stop = shared.stop.clone();
    // Peeking first tells plain MQTT from a failed handshake; both are
    // bounded by the handshake timeout, so a silent client cannot hold a
    // task.
    let handshake = tokio::time::timeout(shared.handshake_timeout, async {
        let first = first_bytes(&tcp).await;
        (first, tls.accept(tcp).await)
    });
    let outcome = tokio::select! {
        _ = stop.changed() => return,
        r = handshake => r,
    };
    let port = shared.tls_port.unwrap_or_default();
    match outcome {
        Ok((_, Ok(stream))) => {
            let version = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "TLS",
            };
            serve(shared, stream, peer, version).await;
        }
        Ok((None, Err(_))) => {
            tracing::debug!(%peer, "closed before sending anything on the TLS port");
        }
        // rustls has answered with an alert already, which a plain client
        // can recognise (`net::client` does).
        Ok((Some(first), Err(_))) if !first.is_tls() => shared.refuse(
            peer,
            &format!(
                "{} on the TLS port {port}: {}",
                first.describe(),
                plain_on_tls_advice(&shared)
            ),
        ),
        Ok((Some(_), Err(e))) => shared.refuse(peer, &format!("TLS handshake failed: {e}")),
        Err(_) => shared.refuse(
            peer,
            &format!(
                "the TLS handshake did not finish within {:?}",
                shared.handshake_timeout
            ),
        ),
    }
}

/// A plain TCP connection: refused when it starts with TLS or sends
/// nothing within the handshake timeout, served otherwise.
async fn serve_plain(shared: StdArc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let mut stop = shared.stop.clone();
    let first = tokio::select! {
        _ = stop.changed() => return,
        f = tokio::time::timeout(shared.handshake_timeout, first_bytes(&tcp)) => f,
    };
    let port = shared.tcp_port.unwrap_or_default();
    match first {
        Ok(Some(f)) if f.is_tls() => {
            let tls = shared
                .tls_port
                .map_or_else(String::new, |p| format!(" or connect to the TLS port {p}"));
            shared.refuse(
                peer,
                &format!(
                    "{} on the plain TCP port {port}: the client must drop TLS (-s, --cafile){tls}",
                    f.describe()
                ),
            );
        }
        Ok(Some(_)) => serve(shared, tcp, peer, "plain TCP").await,
        Ok(None) => tracing::debug!(%peer, "closed before sending anything on the plain port"),
        Err(_) => shared.refuse(
            peer,
            &format!(
                "sent nothing within {:?} of connecting to the plain TCP port {port}",
                shared.handshake_timeout
            ),
        ),
    }
}

/// Why a connection's reader stopped.
enum Ending {
    /// The kernel decided (DISCONNECT from the client, a protocol error).
    Kernel(CloseReason),
    /// The writer ended (the kernel closed the connection out of band:
    /// keep-alive, takeover; or a write failed).
    Writer,
    /// The server is stopping.
    Stopped,
    /// The peer closed its side.
    PeerClosed,
    /// Reading failed.
    ReadFailed(std::io::Error),
}

/// One connection, from accept to `connection_lost`.
async fn serve<S>(shared: StdArc<Shared>, stream: S, peer: SocketAddr, transport: &str)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let broker = &shared.broker;
    let notify = StdArc::new(Notify::new());
    let conn = ledger::with_actor("broker/acceptor", || {
        broker.accept(shared.clock.now_ms(), Some(outbox_waker(&notify)))
    });
    let id = conn.id();
    tracing::info!(conn = id, %peer, "connection opened over {transport}");
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
    let mut announced = false;
    let ending = loop {
        if *stop.borrow() {
            break Ending::Stopped;
        }
        let paused = conn.outbox.queued() >= READ_PAUSE_AT;
        tokio::select! {
            _ = writer_done.notified() => break Ending::Writer,
            _ = stop.changed() => break Ending::Stopped,
            _ = tokio::time::sleep(READ_PAUSE_POLL), if paused => {}
            r = rd.read_buf(&mut buf), if !paused => match r {
                Ok(0) => break Ending::PeerClosed,
                Ok(_) => {
                    let now = shared.clock.now_ms();
                    let flow = ledger::with_actor(&actor, || broker.on_bytes(&conn, &buf, now));
                    buf.clear();
                    if !announced {
                        announced = announce(&conn);
                    }
                    if let Flow::Close(why) = flow {
                        conn.outbox.poke();
                        break Ending::Kernel(why);
                    }
                    // A flat-out publisher always has the next read ready:
                    // without this its task would keep the worker for
                    // tokio's whole budget (128 reads, thousands of
                    // deliveries) while other clients wait.
                    tokio::task::yield_now().await;
                }
                Err(e) => break Ending::ReadFailed(e),
            }
        }
    };
    let mut write_error = None;
    if matches!(ending, Ending::Kernel(_)) {
        // Let the writer send what the broker queued last (its DISCONNECT
        // or refusing CONNACK), bounded against a peer that stops reading.
        if let Some(w) = writer.as_mut()
            && let Ok(end) = tokio::time::timeout(shared.close_linger, w).await
        {
            write_error = writer_failure(id, end);
            writer = None;
        }
    }
    end_connection(&shared, &conn, &actor);
    if let Some(mut w) = writer {
        notify.notify_one();
        match tokio::time::timeout(Duration::from_secs(1), &mut w).await {
            Ok(end) => write_error = writer_failure(id, end),
            Err(_) => w.abort(),
        }
    }
    log_closed(&conn, ending, write_error);
}

/// Logs the client's CONNECT once the kernel accepted it; true once it did.
fn announce(conn: &Conn) -> bool {
    let Some(client) = conn.client_id() else {
        return false;
    };
    let version = conn.version().map_or_else(|| "?".into(), |v| v.to_string());
    tracing::info!(
        conn = conn.id(),
        client = %client,
        "client connected: MQTT {version}, keep-alive {} s",
        conn.keep_alive_secs()
    );
    true
}

/// One line per closed connection: why, and the reason code the broker
/// closed with (none when the client just went away).
fn log_closed(conn: &Conn, ending: Ending, write_error: Option<String>) {
    let (code, why) = match (ending, conn.close_code()) {
        (Ending::Kernel(r), _) => (Some(r.code), r.detail),
        // The broker had decided to close (keep-alive, takeover), whichever
        // end then noticed first.
        (_, Some(code)) => (Some(code), broker_close(code).to_owned()),
        (Ending::Stopped, None) => (
            Some(ReasonCode::ServerShuttingDown),
            broker_close(ReasonCode::ServerShuttingDown).to_owned(),
        ),
        (Ending::Writer, None) => (
            None,
            write_error.unwrap_or_else(|| "the connection ended".to_owned()),
        ),
        (Ending::PeerClosed, None) => (
            None,
            "the client closed the connection without DISCONNECT".to_owned(),
        ),
        (Ending::ReadFailed(e), None) => (None, format!("read failed: {e}")),
    };
    let client = conn.client_id();
    let client = client.as_deref().unwrap_or("(no CONNECT yet)");
    match code {
        Some(code) => tracing::info!(
            conn = conn.id(),
            client = %client,
            reason_code = code.as_u8(),
            "connection closed: {why} ({code})"
        ),
        None => tracing::info!(
            conn = conn.id(),
            client = %client,
            "connection closed: {why}"
        ),
    }
}

/// Why the broker closed a connection out of band, by its reason code.
fn broker_close(code: ReasonCode) -> &'static str {
    match code {
        ReasonCode::KeepAliveTimeout => {
            "keep-alive expired: nothing received for 1.5 times the keep-alive"
        }
        ReasonCode::SessionTakenOver => "another connection took over the session",
        ReasonCode::ServerShuttingDown => "the broker is shutting down",
        _ => "closed by the broker",
    }
}

fn end_connection(shared: &Shared, conn: &Arc<Conn>, actor: &str) {
    let now = shared.clock.now_ms();
    ledger::with_actor(actor, || shared.broker.connection_lost(conn, now));
}

/// What went wrong with the writer, if anything (a broken pipe is a
/// reason to close, a writer that could not encode is a bug: warned).
fn writer_failure(id: u64, end: Result<WriterEnd, tokio::task::JoinError>) -> Option<String> {
    match end {
        Ok(WriterEnd::Io(e)) => Some(format!("write failed: {e}")),
        Ok(WriterEnd::Encode(e)) => {
            tracing::warn!(conn = id, "could not encode: {e}");
            Some(format!("could not encode: {e}"))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(conn = id, "writer task failed: {e}");
            Some(format!("writer task failed: {e}"))
        }
    }
}
