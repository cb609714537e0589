//! What each soak client does: a publisher flat out, consumers that stop
//! reading, read slowly, come and go, or keep up, and a probe that measures
//! the latency an unrelated client sees meanwhile.

use super::SoakError;
use super::client::{Client, Endpoint, Hello, Template, Writer};
use crate::codec::{Packet, Publish, QoS, ReasonCode};
use crate::sync::{AtomicU64, Mutex, Ordering, StdArc, lock};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// The topic the publishers flood.
pub const FLOOD_TOPIC: &str = "soak/flood";

/// The probe's own topic: nothing else is published there.
pub const PROBE_TOPIC: &str = "soak/probe";

/// QoS 1 publishes a publisher keeps unacknowledged.
const PUB_WINDOW: usize = 512;

/// Publishes gathered into one write.
const PUB_BATCH: usize = 32;

/// Receive buffer of a stopped consumer's socket: enough to be realistic,
/// small enough that a hundred of them do not hide gigabytes in the kernel.
const STOPPED_RECV_BUFFER: u32 = 256 * 1024;

/// Counters shared by the clients of one role.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes sent, or deliveries received.
    pub messages: AtomicU64,
    /// QoS 1 publishes acknowledged.
    pub acked: AtomicU64,
    /// Publishes refused with Quota exceeded.
    pub refused: AtomicU64,
    /// Connections the broker ended (not counting the role's own).
    pub closed_by_broker: AtomicU64,
    /// Reconnects (flapping consumers).
    pub reconnects: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Waits until `stop` says so.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Publishes `payload`-byte messages on [`FLOOD_TOPIC`] as fast as the
/// broker takes them (QoS 1: up to [`PUB_WINDOW`] unacknowledged) until
/// `stop`.
pub async fn publisher(
    ep: Endpoint,
    id: String,
    qos: QoS,
    payload: usize,
    mut stop: watch::Receiver<bool>,
    counters: StdArc<Counters>,
) -> Result<(), SoakError> {
    let Client { mut rx, mut tx } = Client::connect(&ep, &Hello::clean(id)).await?;
    let template = Template::new(FLOOD_TOPIC, Bytes::from(vec![0x5a; payload]), qos)?;
    let window = StdArc::new(Semaphore::new(PUB_WINDOW));
    let reader = {
        let (window, counters) = (window.clone(), counters.clone());
        tokio::spawn(async move {
            while let Ok(Some(p)) = rx.next().await {
                if let Packet::Puback(a) = p {
                    Counters::add(&counters.acked, 1);
                    if a.reason == ReasonCode::QuotaExceeded {
                        Counters::add(&counters.refused, 1);
                    }
                    window.add_permits(1);
                }
            }
        })
    };
    let mut pid: u16 = 0;
    let result = loop {
        let n = if qos == QoS::AtMostOnce {
            PUB_BATCH
        } else {
            let first = tokio::select! {
                _ = stopped(&mut stop) => break Ok(()),
                p = window.acquire() => p,
            };
            let Ok(first) = first else { break Ok(()) };
            first.forget();
            let mut n = 1;
            while n < PUB_BATCH
                && let Ok(p) = window.try_acquire()
            {
                p.forget();
                n += 1;
            }
            n
        };
        for _ in 0..n {
            pid = pid.checked_add(1).unwrap_or(1);
            template.queue(&mut tx, pid);
        }
        tokio::select! {
            _ = stopped(&mut stop) => break Ok(()),
            r = tx.flush() => if let Err(e) = r {
                Counters::add(&counters.closed_by_broker, 1);
                break Err(e);
            },
        }
        Counters::add(&counters.messages, n as u64);
    };
    reader.abort();
    result
}

/// Subscribes at `qos`, then never reads again; leaves (drops the
/// connection) at `leave`.
pub async fn stopped_consumer(
    ep: Endpoint,
    id: String,
    qos: QoS,
    mut leave: watch::Receiver<bool>,
) -> Result<(), SoakError> {
    let mut hello = Hello::clean(id);
    hello.recv_buffer = Some(STOPPED_RECV_BUFFER);
    let mut c = Client::connect(&ep, &hello).await?;
    c.subscribe(FLOOD_TOPIC, qos).await?;
    stopped(&mut leave).await;
    drop(c);
    Ok(())
}

/// How long a consumer the broker disconnected waits before it comes back,
/// as a real client's reconnect delay.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// How a consumer reads: everything as it comes, or about `rate`
/// deliveries of `msg_size` bytes per second.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as deliveries come.
    Full,
    /// About `rate` messages per second.
    Slow {
        /// Messages per second.
        rate: u32,
        /// Bytes of one delivery on the wire.
        msg_size: usize,
    },
}

/// Subscribes and reads at `pace`, acknowledging, until `stop`; when the
/// broker disconnects it (a slow consumer over its limit), it counts that
/// and comes back after [`RECONNECT_AFTER`] with a new session.
pub async fn consumer(
    ep: Endpoint,
    id: String,
    qos: QoS,
    pace: Pace,
    mut stop: watch::Receiver<bool>,
    counters: StdArc<Counters>,
) -> Result<(), SoakError> {
    loop {
        let mut c = Client::connect(&ep, &Hello::clean(id.clone())).await?;
        c.subscribe(FLOOD_TOPIC, qos).await?;
        let open = match pace {
            Pace::Full => consume_until(&mut c, &mut stop, None, &counters).await?,
            Pace::Slow { rate, msg_size } => {
                read_slowly(&mut c, &mut stop, rate, msg_size, &counters).await?
            }
        };
        if open {
            return Ok(());
        }
        Counters::add(&counters.closed_by_broker, 1);
        tokio::select! {
            _ = stopped(&mut stop) => return Ok(()),
            _ = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
        Counters::add(&counters.reconnects, 1);
    }
}

/// Reads about `rate` deliveries per second until `stop` (true) or until
/// the broker closes the connection (false).
async fn read_slowly(
    c: &mut Client,
    stop: &mut watch::Receiver<bool>,
    rate: u32,
    msg_size: usize,
    counters: &Counters,
) -> Result<bool, SoakError> {
    let tick = Duration::from_millis(100);
    let per_tick = (usize::try_from(rate).unwrap_or(usize::MAX) / 10).max(1);
    let limit = per_tick.saturating_mul(msg_size.max(1));
    loop {
        tokio::select! {
            _ = stopped(stop) => return Ok(true),
            _ = tokio::time::sleep(tick) => {}
        }
        let read = tokio::select! {
            _ = stopped(stop) => return Ok(true),
            r = c.rx.read_some(limit) => r?,
        };
        let Some(packets) = read else {
            return Ok(false);
        };
        if !count_and_ack(c, &packets, counters).await? {
            return Ok(false);
        }
    }
}

/// Counts the deliveries among `packets` and acknowledges them; false when
/// the broker closed the connection meanwhile.
async fn count_and_ack(
    c: &mut Client,
    packets: &[Packet],
    counters: &Counters,
) -> Result<bool, SoakError> {
    let mut n = 0;
    for p in packets {
        if let Packet::Publish(p) = p {
            n += 1;
            c.tx.ack(p)?;
        }
    }
    Counters::add(&counters.messages, n);
    if c.tx.pending() > 0 {
        match c.tx.flush().await {
            Ok(()) => {}
            Err(SoakError::Closed) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads and acknowledges until `stop` (true), until `until` if given
/// (true), or until the broker closes the connection (false).
async fn consume_until(
    c: &mut Client,
    stop: &mut watch::Receiver<bool>,
    until: Option<Instant>,
    counters: &Counters,
) -> Result<bool, SoakError> {
    loop {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            _ = stopped(stop) => return Ok(true),
            _ = deadline => return Ok(true),
            r = c.rx.read_some(usize::MAX) => r?,
        };
        let Some(packets) = read else {
            return Ok(false);
        };
        if !count_and_ack(c, &packets, counters).await? {
            return Ok(false);
        }
    }
}

/// A persistent session that comes and goes: reads for `up`, vanishes
/// without DISCONNECT for `down`, comes back, until `stop`.
pub async fn flapping_consumer(
    ep: Endpoint,
    id: String,
    qos: QoS,
    up: Duration,
    down: Duration,
    mut stop: watch::Receiver<bool>,
    counters: StdArc<Counters>,
) -> Result<(), SoakError> {
    let mut hello = Hello::clean(id);
    hello.session_expiry = 600;
    let mut first = true;
    loop {
        let mut c = Client::connect(&ep, &hello).await?;
        if first {
            c.subscribe(FLOOD_TOPIC, qos).await?;
            first = false;
            hello.clean_start = false;
        } else {
            Counters::add(&counters.reconnects, 1);
        }
        if !consume_until(&mut c, &mut stop, Some(Instant::now() + up), &counters).await? {
            Counters::add(&counters.closed_by_broker, 1);
        }
        // Gone without a word: the session keeps what arrives meanwhile.
        drop(c);
        tokio::select! {
            _ = stopped(&mut stop) => return Ok(()),
            _ = tokio::time::sleep(down) => {}
        }
    }
}

/// The probe's round trips: (ms since the soak's start, latency in µs).
#[derive(Debug, Default)]
pub struct ProbeLog {
    /// Publishes sent.
    pub sent: AtomicU64,
    /// Samples, in arrival order.
    pub samples: Mutex<Vec<(u64, u64)>>,
}

/// An unrelated client on its own topic: publishes QoS 1 to itself `hz`
/// times a second and records each round trip, until `stop`.
pub async fn probe(
    ep: Endpoint,
    hz: u32,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
    log: StdArc<ProbeLog>,
) -> Result<(), SoakError> {
    let mut c = Client::connect(&ep, &Hello::clean("soak-probe")).await?;
    c.subscribe(PROBE_TOPIC, QoS::AtLeastOnce).await?;
    let Client { mut rx, mut tx } = c;
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::unbounded_channel::<Publish>();
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(p)) = rx.next().await {
                if let Packet::Publish(p) = p {
                    let now = epoch.elapsed().as_micros();
                    if let Some(sent) = p.payload.get(..8).and_then(|b| b.try_into().ok()) {
                        let sent = u128::from(u64::from_be_bytes(sent));
                        let at_ms = u64::try_from(now / 1000).unwrap_or(u64::MAX);
                        let us = u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX);
                        lock(&log.samples).push((at_ms, us));
                    }
                    if acks_tx.send(p).is_err() {
                        return;
                    }
                }
            }
        })
    };
    let period = Duration::from_secs(1) / hz.max(1);
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pid: u16 = 0;
    let result = loop {
        tokio::select! {
            _ = stopped(&mut stop) => break Ok(()),
            p = acks_rx.recv() => {
                if let Some(p) = p {
                    tx.ack(&p)?;
                }
            }
            _ = every.tick() => {
                pid = pid.checked_add(1).unwrap_or(1);
                let us = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                let t = Template::new(PROBE_TOPIC, Bytes::copy_from_slice(&us.to_be_bytes()), QoS::AtLeastOnce)?;
                t.queue(&mut tx, pid);
                Counters::add(&log.sent, 1);
            }
        }
        if let Err(e) = tx.flush().await {
            break Err(e);
        }
    };
    let result = match result {
        Ok(()) => drain_probe(&mut tx, &mut acks_rx, &log).await,
        e => e,
    };
    reader.abort();
    result
}

/// How long the probe waits, once stopped, for the round trips still on
/// their way back.
const PROBE_DRAIN: Duration = Duration::from_secs(2);

/// Waits up to [`PROBE_DRAIN`] for the probe's last round trips: one sent
/// just before the stop is not lost, and counting it so would fail a
/// healthy broker now and then.
async fn drain_probe(
    tx: &mut Writer,
    acks: &mut tokio::sync::mpsc::UnboundedReceiver<Publish>,
    log: &ProbeLog,
) -> Result<(), SoakError> {
    let deadline = tokio::time::Instant::now() + PROBE_DRAIN;
    let received = |log: &ProbeLog| u64::try_from(lock(&log.samples).len()).unwrap_or(u64::MAX);
    while received(log) < Counters::get(&log.sent) {
        match tokio::time::timeout_at(deadline, acks.recv()).await {
            Ok(Some(p)) => {
                tx.ack(&p)?;
                tx.flush().await?;
            }
            Ok(None) | Err(_) => break,
        }
    }
    Ok(())
}
