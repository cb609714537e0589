//! The soak: mixed load with slow, stopped and flapping consumers against a
//! broker for a given time, reporting its resident memory over time, what
//! it dropped and why, the latency an unrelated client sees meanwhile, and
//! (ours) the ledger audit. Each target in a run gets the same load, one
//! after the other, so the figures sit side by side.
//!
//! Timeline of one target: start it and connect every consumer and the
//! probe; `baseline` with only the probe running (its latency unloaded);
//! the flood for `duration` (publishers flat out); then `settle`: the
//! publishers stop and the stopped consumers leave, the others go on, and
//! RSS is still sampled (does the memory come back?); then everything
//! stops and the broker is shut down (ours audits its ledger and writes
//! its report). RSS is sampled throughout, from `/proc/PID/status`.

mod client;
mod error;
mod roles;
pub mod target;

pub use error::SoakError;
pub use target::{SharedLimits, TargetSpec};

use crate::broker::limits::Drops;
use crate::codec::{Packet, QoS};
use crate::sync::{Mutex, StdArc, lock};
use crate::tls::ClientTls;
use client::{Client, Endpoint, Hello};
use roles::{Counters, ProbeLog};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use target::Running;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Who connects and what they do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Publishers sending flat out.
    pub publishers: usize,
    /// QoS of the flood (publish and subscribe): 0 or 1.
    #[serde(serialize_with = "qos_number")]
    pub qos: QoS,
    /// Payload bytes per message.
    pub payload: usize,
    /// Consumers that subscribe and never read again.
    pub stopped: usize,
    /// Consumers that read about `slow_rate` messages per second.
    pub slow: usize,
    /// Messages per second a slow consumer reads.
    pub slow_rate: u32,
    /// Persistent consumers that come and go.
    pub flapping: usize,
    /// How long a flapping consumer stays connected, in ms.
    pub flap_up_ms: u64,
    /// How long it stays away, in ms.
    pub flap_down_ms: u64,
    /// Consumers that keep up.
    pub healthy: usize,
    /// Round trips per second of the latency probe (on its own topic).
    pub probe_hz: u32,
}

fn qos_number<S: serde::Serializer>(q: &QoS, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(*q as u8)
}

/// One soak.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The load.
    pub mix: Mix,
    /// How long the publishers flood.
    pub duration: Duration,
    /// Probe alone before the flood.
    pub baseline: Duration,
    /// After the flood, before stopping the broker.
    pub settle: Duration,
    /// How often RSS is read.
    pub sample_every: Duration,
    /// The brokers, run one after the other with the same load.
    pub targets: Vec<TargetSpec>,
    /// Per-session limits every broker gets.
    pub limits: SharedLimits,
    /// Where our broker's log (its stderr) is written, as
    /// `soak-ours.log`.
    pub log_dir: PathBuf,
}

/// What our broker logged about its queues during one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BrokerLog {
    /// The log file.
    pub path: PathBuf,
    /// Lines in all.
    pub lines: usize,
    /// Warnings and errors.
    pub warnings: usize,
    /// "queue limit reached" lines (one per session going over) and
    /// "memory budget exhausted" lines (one per time the budget ran out).
    pub over_limit: usize,
    /// "disconnecting a slow consumer" lines.
    pub slow_consumer: usize,
    /// The first few of those two kinds, as written.
    pub examples: Vec<String>,
}

impl BrokerLog {
    fn read(path: &Path) -> Option<BrokerLog> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut log = BrokerLog {
            path: path.to_path_buf(),
            ..Default::default()
        };
        for line in text.lines() {
            log.lines += 1;
            if line.contains("WARN") || line.contains("ERROR") {
                log.warnings += 1;
            }
            let over =
                line.contains("queue limit reached") || line.contains("memory budget exhausted");
            let slow = line.contains("disconnecting a slow consumer");
            log.over_limit += usize::from(over);
            log.slow_consumer += usize::from(slow);
            if (over || slow) && log.examples.len() < 3 {
                log.examples.push(line.to_string());
            }
        }
        Some(log)
    }
}

/// One RSS reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RssSample {
    /// Ms since the flood began (negative: baseline).
    pub t_ms: i64,
    /// Resident set in KiB.
    pub kib: u64,
}

/// Latency figures of the probe over one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Round trips measured.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut us: Vec<u64>) -> Latency {
        if us.is_empty() {
            return Latency::default();
        }
        us.sort_unstable();
        let at = |q: f64| {
            let i = ((us.len() - 1) as f64 * q).round() as usize;
            us.get(i).copied().unwrap_or_default() as f64 / 1000.0
        };
        Latency {
            samples: us.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// What the clients of one role saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoleFigures {
    /// Publishes sent, or deliveries received.
    pub messages: u64,
    /// QoS 1 publishes acknowledged (publishers).
    pub acked: u64,
    /// Publishes refused with Quota exceeded (publishers).
    pub refused: u64,
    /// Connections the broker ended.
    pub closed_by_broker: u64,
    /// Reconnects (flapping consumers).
    pub reconnects: u64,
}

impl RoleFigures {
    fn of(c: &Counters) -> RoleFigures {
        RoleFigures {
            messages: Counters::get(&c.messages),
            acked: Counters::get(&c.acked),
            refused: Counters::get(&c.refused),
            closed_by_broker: Counters::get(&c.closed_by_broker),
            reconnects: Counters::get(&c.reconnects),
        }
    }
}

/// The ledger audit of our broker, as a soak reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuditFigures {
    /// Messages allocated over the run.
    pub allocated: u64,
    /// Messages freed.
    pub freed: u64,
    /// Messages still referenced at the audit (leaks).
    pub live: u64,
    /// Violations (double releases, leaks, ...): 0 when clean.
    pub violations: usize,
}

/// One broker's soak.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRun {
    /// The broker.
    pub target: String,
    /// RSS over time (empty when the broker's pid is unknown).
    pub rss: Vec<RssSample>,
    /// Highest RSS seen, KiB.
    pub rss_peak_kib: Option<u64>,
    /// RSS when the flood ended, KiB.
    pub rss_flood_end_kib: Option<u64>,
    /// RSS after the settle phase, KiB.
    pub rss_settled_kib: Option<u64>,
    /// Publishers.
    pub publishers: RoleFigures,
    /// Slow consumers.
    pub slow: RoleFigures,
    /// Flapping consumers.
    pub flapping: RoleFigures,
    /// Healthy consumers.
    pub healthy: RoleFigures,
    /// Probe latency before the flood.
    pub latency_baseline: Latency,
    /// Probe latency during the flood.
    pub latency_flood: Latency,
    /// Probe publishes sent and round trips completed.
    pub probe_sent: u64,
    /// Round trips completed.
    pub probe_received: usize,
    /// Our broker's drops per reason.
    pub drops: Option<Drops>,
    /// mosquitto's `$SYS/broker/publish/messages/dropped` at the end.
    pub mosquitto_dropped: Option<u64>,
    /// Our broker's ledger audit.
    pub audit: Option<AuditFigures>,
    /// What our broker logged about its queues.
    pub broker_log: Option<BrokerLog>,
    /// Client failures other than the broker closing a connection.
    pub errors: Vec<String>,
}

/// A whole soak: the load and one run per target.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The load.
    pub mix: Mix,
    /// Flood seconds.
    pub duration_secs: f64,
    /// Settle seconds.
    pub settle_secs: f64,
    /// Per-session queued messages every broker was given.
    pub max_queued_messages: usize,
    /// Per-session queued bytes every broker was given.
    pub max_queued_bytes: usize,
    /// Per-session in-flight window every broker was given.
    pub max_inflight: u16,
    /// The runs, in order.
    pub runs: Vec<TargetRun>,
}

/// What the CLI shows while a target runs.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Runs the soak: every target in turn, with the PEM files of `pki`
/// (`ca.pem`, `server.pem`, `server.key`; the server must be valid for
/// `localhost`) and `tls` trusting them.
pub fn run(
    cfg: &SoakConfig,
    pki: &Path,
    tls: &ClientTls,
    progress: Progress<'_>,
) -> Result<SoakReport, SoakError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("soak-load")
        .enable_all()
        .build()
        .map_err(|e| SoakError::io("starting the load runtime", e))?;
    // The probe on a worker of its own: its latency is the broker's, not
    // the time it waits behind the load generator's tasks.
    let probe_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("soak-probe")
        .enable_all()
        .build()
        .map_err(|e| SoakError::io("starting the probe's runtime", e))?;
    let mut runs = Vec::new();
    for spec in &cfg.targets {
        progress(&format!("[{}] starting", spec.name()));
        std::fs::create_dir_all(&cfg.log_dir)
            .map_err(|e| SoakError::io(&format!("creating {}", cfg.log_dir.display()), e))?;
        let log = cfg.log_dir.join("soak-ours.log");
        let running = Running::start(spec, pki, &cfg.limits, &log)?;
        let log = running.log().map(Path::to_path_buf);
        let ep = Endpoint {
            addr: running.addr,
            tls: tls.clone(),
        };
        let mosquitto = matches!(spec, TargetSpec::Mosquitto { .. });
        let outcome = rt.block_on(one_target(
            cfg,
            &running,
            ep,
            mosquitto,
            probe_rt.handle(),
            progress,
        ));
        let ours = running.stop()?;
        let mut run = outcome?;
        run.broker_log = log.as_deref().and_then(BrokerLog::read);
        if let Some(r) = ours {
            run.drops = Some(r.stats.drops);
            run.audit = Some(AuditFigures {
                allocated: r.audit.stats.allocated,
                freed: r.audit.stats.freed,
                live: r.audit.stats.live,
                violations: r.audit.violations.len(),
            });
        }
        runs.push(run);
    }
    Ok(SoakReport {
        mix: cfg.mix.clone(),
        duration_secs: cfg.duration.as_secs_f64(),
        settle_secs: cfg.settle.as_secs_f64(),
        max_queued_messages: cfg.limits.max_queued_messages,
        max_queued_bytes: cfg.limits.max_queued_bytes,
        max_inflight: cfg.limits.max_inflight,
        runs,
    })
}

/// Failures of the clients of one run, kept for the report.
type Errors = StdArc<Mutex<Vec<String>>>;

fn spawn_role(
    set: &mut JoinSet<()>,
    errors: &Errors,
    what: String,
    f: impl Future<Output = Result<(), SoakError>> + Send + 'static,
) {
    let errors = errors.clone();
    set.spawn(async move {
        if let Err(e) = f.await {
            lock(&errors).push(format!("{what}: {e}"));
        }
    });
}

async fn one_target(
    cfg: &SoakConfig,
    running: &Running,
    ep: Endpoint,
    mosquitto: bool,
    probe_rt: &tokio::runtime::Handle,
    progress: Progress<'_>,
) -> Result<TargetRun, SoakError> {
    let name = running.name.clone();
    let mix = &cfg.mix;
    let epoch = Instant::now();
    let (flood_end, flood_ended) = watch::channel(false);
    let (all_end, all_ended) = watch::channel(false);
    let errors: Errors = StdArc::default();
    let mut set = JoinSet::new();
    let counters: [StdArc<Counters>; 4] = Default::default();
    let [pubs, slow, flapping, healthy] = counters.clone();

    // The stopped consumers must be subscribed before the flood: connect
    // them (and everything else) first.
    let mut stopped_set = JoinSet::new();
    for i in 0..mix.stopped {
        let (ep, leave) = (ep.clone(), flood_ended.clone());
        let qos = mix.qos;
        spawn_role(
            &mut stopped_set,
            &errors,
            format!("stopped {i}"),
            async move { roles::stopped_consumer(ep, format!("soak-stopped-{i}"), qos, leave).await },
        );
    }
    for i in 0..mix.slow {
        let (ep, stop, c) = (ep.clone(), all_ended.clone(), slow.clone());
        let pace = roles::Pace::Slow {
            rate: mix.slow_rate,
            msg_size: mix.payload + roles::FLOOD_TOPIC.len() + 8,
        };
        let qos = mix.qos;
        spawn_role(&mut set, &errors, format!("slow {i}"), async move {
            roles::consumer(ep, format!("soak-slow-{i}"), qos, pace, stop, c).await
        });
    }
    for i in 0..mix.flapping {
        let (ep, stop, c) = (ep.clone(), all_ended.clone(), flapping.clone());
        let up = Duration::from_millis(mix.flap_up_ms);
        let down = Duration::from_millis(mix.flap_down_ms);
        let qos = mix.qos;
        spawn_role(&mut set, &errors, format!("flapping {i}"), async move {
            roles::flapping_consumer(ep, format!("soak-flap-{i}"), qos, up, down, stop, c).await
        });
    }
    for i in 0..mix.healthy {
        let (ep, stop, c) = (ep.clone(), all_ended.clone(), healthy.clone());
        let qos = mix.qos;
        spawn_role(&mut set, &errors, format!("healthy {i}"), async move {
            roles::consumer(
                ep,
                format!("soak-healthy-{i}"),
                qos,
                roles::Pace::Full,
                stop,
                c,
            )
            .await
        });
    }
    let probe_log = StdArc::new(ProbeLog::default());
    let probe = (mix.probe_hz > 0).then(|| {
        let (ep, stop, log) = (ep.clone(), all_ended.clone(), probe_log.clone());
        let (hz, errors) = (mix.probe_hz, errors.clone());
        probe_rt.spawn(async move {
            if let Err(e) = roles::probe(ep, hz, epoch, stop, log).await {
                lock(&errors).push(format!("probe: {e}"));
            }
        })
    });
    let dropped_sys = StdArc::new(crate::sync::AtomicU64::new(u64::MAX));
    if mosquitto {
        let (ep, stop, seen) = (ep.clone(), all_ended.clone(), dropped_sys.clone());
        spawn_role(&mut set, &errors, "mosquitto $SYS".into(), async move {
            watch_sys_dropped(ep, stop, seen).await
        });
    }
    // Let every consumer connect and subscribe.
    tokio::time::sleep(Duration::from_millis(500 + 5 * mix.stopped as u64)).await;

    let rss = StdArc::new(Mutex::new(Vec::<RssSample>::new()));
    let flood_start = epoch + cfg.baseline + Duration::from_millis(500);
    let sampler = {
        let rss = rss.clone();
        let pid_reader = RssReader::of(running);
        let every = cfg.sample_every;
        let mut stop = all_ended.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {}
                }
                let t_ms = signed_ms_since(flood_start);
                if let Some(kib) = pid_reader.read() {
                    lock(&rss).push(RssSample { t_ms, kib });
                }
            }
        })
    };
    tokio::time::sleep_until(flood_start.into()).await;
    progress(&format!("[{name}] flooding for {:?}", cfg.duration));
    for i in 0..mix.publishers {
        let (ep, stop, c) = (ep.clone(), flood_ended.clone(), pubs.clone());
        let (qos, payload) = (mix.qos, mix.payload);
        spawn_role(&mut set, &errors, format!("publisher {i}"), async move {
            roles::publisher(ep, format!("soak-pub-{i}"), qos, payload, stop, c).await
        });
    }
    let flood_end_at = flood_start + cfg.duration;
    let report_every = Duration::from_secs(5);
    let mut next = flood_start + report_every;
    while next < flood_end_at {
        tokio::time::sleep_until(next.into()).await;
        let last = lock(&rss).last().copied();
        progress(&format!(
            "[{name}] t={:>3}s  rss {}  published {}  probe round trips {}",
            (next - flood_start).as_secs(),
            last.map_or("?".into(), |s| format!("{:.1} MiB", s.kib as f64 / 1024.0)),
            Counters::get(&pubs.messages),
            lock(&probe_log.samples).len()
        ));
        next += report_every;
    }
    tokio::time::sleep_until(flood_end_at.into()).await;
    let _ = flood_end.send(true);
    let rss_flood_end = RssReader::of(running).read();
    progress(&format!(
        "[{name}] flood over; settling for {:?}",
        cfg.settle
    ));
    while let Some(r) = stopped_set.join_next().await {
        if r.is_err() {
            lock(&errors).push("a stopped consumer's task failed".into());
        }
    }
    tokio::time::sleep(cfg.settle).await;
    let rss_settled = RssReader::of(running).read();
    let _ = all_end.send(true);
    let bounded = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), bounded)
        .await
        .is_err()
    {
        lock(&errors).push("some clients did not stop within 10 s".into());
        set.shutdown().await;
    }
    let _ = sampler.await;
    if let Some(p) = probe
        && p.await.is_err()
    {
        lock(&errors).push("the probe's task failed".into());
    }

    let samples = lock(&probe_log.samples).clone();
    let (mut base, mut flood) = (Vec::new(), Vec::new());
    let flood_start_ms = u64::try_from((flood_start - epoch).as_millis()).unwrap_or(0);
    let flood_end_ms = flood_start_ms + u64::try_from(cfg.duration.as_millis()).unwrap_or(0);
    for (at, us) in &samples {
        if *at < flood_start_ms {
            base.push(*us);
        } else if *at <= flood_end_ms {
            flood.push(*us);
        }
    }
    let rss = lock(&rss).clone();
    let dropped = crate::sync::AtomicU64::load(&dropped_sys, crate::sync::Ordering::Relaxed);
    let errors = lock(&errors).clone();
    Ok(TargetRun {
        target: name,
        rss_peak_kib: rss.iter().map(|s| s.kib).max(),
        rss,
        rss_flood_end_kib: rss_flood_end,
        rss_settled_kib: rss_settled,
        publishers: RoleFigures::of(&pubs),
        slow: RoleFigures::of(&slow),
        flapping: RoleFigures::of(&flapping),
        healthy: RoleFigures::of(&healthy),
        latency_baseline: Latency::of(base),
        latency_flood: Latency::of(flood),
        probe_sent: Counters::get(&probe_log.sent),
        probe_received: samples.len(),
        drops: None,
        mosquitto_dropped: (dropped != u64::MAX).then_some(dropped),
        audit: None,
        broker_log: None,
        errors,
    })
}

fn signed_ms_since(t: Instant) -> i64 {
    let now = Instant::now();
    if now >= t {
        i64::try_from((now - t).as_millis()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from((t - now).as_millis()).unwrap_or(i64::MAX)
    }
}

/// Reads one broker's RSS (a pid, or nothing to read).
#[derive(Clone, Copy)]
struct RssReader(Option<u32>);

impl RssReader {
    fn of(r: &Running) -> RssReader {
        RssReader(r.pid())
    }

    fn read(self) -> Option<u64> {
        target::rss_kib(self.0?)
    }
}

/// Keeps the latest value of mosquitto's dropped-messages counter.
async fn watch_sys_dropped(
    ep: Endpoint,
    mut stop: watch::Receiver<bool>,
    seen: StdArc<crate::sync::AtomicU64>,
) -> Result<(), SoakError> {
    let mut c = Client::connect(&ep, &Hello::clean("soak-sys")).await?;
    c.subscribe("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce)
        .await?;
    loop {
        let p = tokio::select! {
            _ = stop.changed() => return Ok(()),
            p = c.rx.next() => p?,
        };
        match p {
            Some(Packet::Publish(p)) => {
                if let Some(n) = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                {
                    seen.store(n, crate::sync::Ordering::Relaxed);
                }
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
}
