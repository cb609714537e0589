//! End-to-end throughput over TLS on loopback: messages/s delivered from
//! one publisher to 1 and to 8 subscribers, QoS 0 and 1, 64 B and 4 KiB
//! payloads, against our broker with the ledger counting, our broker with
//! the ledger off (`Mode::Off`: what the accounting costs), our broker
//! (counting) on one worker thread, and mosquitto (`/usr/sbin/mosquitto`,
//! skipped with a note when not installed). mosquitto is single-threaded;
//! our broker normally runs one worker per core, and on a machine busy with
//! other work the scheduler shares CPU per thread, so the one-thread column
//! is the like-for-like comparison.
//!
//! The load is the same for every broker: one lean MQTT 3.1.1 load client
//! over tokio-rustls and our codec (frames through `FrameDecoder`, packets
//! from `codec::encode`), ECDSA P-256 certificates from `certs-gen` for both
//! brokers. Each iteration publishes N messages and waits until every
//! subscriber received all of them. Flow control is identical for both
//! brokers: the publisher stays at most `LAG` messages ahead of the
//! slowest subscriber (so neither broker is pushed into dropping QoS 0),
//! and at QoS 1 it also keeps at most `WINDOW` publishes unacknowledged.
//!
//! Criterion measures each broker per configuration; right after, the same
//! connections are measured once more in interleaved rounds (ours, off,
//! mosquitto, ours, ...) and the summary prints messages/s and the ratios,
//! so that other load on the machine hits every column alike.
//!
//! Targets (issue 9): ours (ledger counting) at least 1.5x mosquitto's
//! messages/s at QoS 0 and QoS 1, 64 B, 1 -> 1; ledger overhead
//! (off / counting) under 10%. Run with `cargo bench --bench e2e`.

#[cfg(not(feature = "loom"))]
mod bench {
    use bytes::{Bytes, BytesMut};
    use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
    use mqtls_harness::codec::{
        self, Connect, FrameDecoder, MqttString, Packet, PacketType, Publish, QoS, Subscribe,
        Subscription, SubscriptionOptions, Version, parse_fixed_header,
    };
    use mqtls_harness::e2e::Tls;
    use mqtls_harness::ledger::{Ledger, Mode};
    use mqtls_harness::net::{Server, ServerOptions};
    use mqtls_harness::sync::{AtomicU64, Ordering, StdArc};
    use mqtls_harness::tls::ClientTls;
    use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::runtime::Runtime;
    use tokio::sync::Notify;
    use tokio::task::JoinHandle;
    use tokio_rustls::client::TlsStream;

    type Stream = TlsStream<TcpStream>;

    /// How far (in messages) the publisher may run ahead of the slowest
    /// subscriber.
    const LAG: u64 = 1_000;
    /// Unacknowledged QoS 1 publishes the publisher keeps in flight.
    const WINDOW: u64 = 256;
    /// Publishes encoded into one write.
    const BATCH: u64 = 64;
    /// An iteration that does not complete in this time lost messages.
    const STALL: Duration = Duration::from_secs(20);
    const MAX_PACKET: usize = 1 << 20;

    // ---------------------------------------------------------------- brokers

    /// One broker under test and how to reach it.
    struct Target {
        name: &'static str,
        port: u16,
        kind: Kind,
    }

    enum Kind {
        /// Our broker on its own runtime (its own worker threads, as a
        /// separate process would have).
        Ours { rt: Runtime, server: Option<Server> },
        /// mosquitto, killed on drop.
        Mosquitto {
            child: Child,
            _dir: tempfile::TempDir,
        },
    }

    impl Target {
        /// Our broker; `workers` threads (`None`: one per core, as `mqtls
        /// broker` runs).
        fn ours(name: &'static str, tls: &Tls, mode: Mode, workers: Option<usize>) -> Target {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if let Some(w) = workers {
                rt.worker_threads(w);
            }
            // The threads carry the target's name, so its CPU time can be read
            // from /proc.
            let rt = rt.enable_all().thread_name(name).build().unwrap();
            let opts =
                ServerOptions::tls(tls.server.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
            let server = rt.block_on(Server::start(opts, Ledger::new(mode))).unwrap();
            let port = server.tls_addr().unwrap().port();
            Target {
                name,
                port,
                kind: Kind::Ours {
                    rt,
                    server: Some(server),
                },
            }
        }

        fn mosquitto(exe: &Path, pki: &Path) -> Target {
            let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let p = |f: &str| pki.join(f).display().to_string();
            // `user root`: mosquitto would otherwise drop to a user that cannot
            // read the 0600 key. The queue and inflight limits are raised so
            // that its defaults (20 inflight, 1000 queued) do not throttle or
            // drop; our flow control keeps both brokers far below them.
            let config = format!(
                "user root\nallow_anonymous true\npersistence false\nlog_type none\n\
                 max_inflight_messages 1000\nmax_queued_messages 100000\nset_tcp_nodelay true\n\
                 listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                p("ca.pem"),
                p("server.pem"),
                p("server.key"),
            );
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(&conf, config).unwrap();
            let child = Command::new(exe)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut t = Target {
                name: "mosquitto",
                port,
                kind: Kind::Mosquitto { child, _dir: dir },
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while StdStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                if let Kind::Mosquitto { child, .. } = &mut t.kind
                    && let Some(status) = child.try_wait().unwrap()
                {
                    panic!("mosquitto exited with {status} before listening");
                }
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not listen in 10 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            t
        }

        /// Stops the broker; ours must audit clean (a bench that leaves
        /// violations behind measured a broken path).
        fn stop(mut self) {
            match &mut self.kind {
                Kind::Ours { rt, server } => {
                    if let Some(s) = server.take() {
                        let report = rt.block_on(s.shutdown());
                        assert!(
                            report.audit.is_clean(),
                            "{}: ledger audit after the bench: {:?}",
                            self.name,
                            report.audit.violations
                        );
                    }
                }
                Kind::Mosquitto { child, .. } => {
                    child.kill().ok();
                    child.wait().ok();
                }
            }
        }
    }

    /// User plus system CPU time of a `/proc/.../stat` line.
    fn stat_cpu(stat: &str) -> Option<Duration> {
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(Duration::from_micros(ticks * 1_000_000 / hz))
    }

    impl Target {
        /// CPU time the broker used so far: mosquitto's process, or the
        /// threads of our broker's runtime (named after the target).
        fn cpu(&self) -> Duration {
            match &self.kind {
                Kind::Mosquitto { child, .. } => {
                    std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
                        .ok()
                        .and_then(|s| stat_cpu(&s))
                        .unwrap_or_default()
                }
                Kind::Ours { .. } => {
                    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
                        return Duration::ZERO;
                    };
                    tasks
                        .flatten()
                        .filter(|t| {
                            std::fs::read_to_string(t.path().join("comm"))
                                .is_ok_and(|c| c.trim() == self.name)
                        })
                        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                        .filter_map(|s| stat_cpu(&s))
                        .sum()
                }
            }
        }
    }

    impl Drop for Target {
        fn drop(&mut self) {
            if let Kind::Mosquitto { child, .. } = &mut self.kind {
                child.kill().ok();
                child.wait().ok();
            }
        }
    }

    fn find_mosquitto() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
            .map(|d| d.join("mosquitto"))
            .find(|c| c.is_file())
    }

    // ------------------------------------------------------------ load client

    fn encode(p: &Packet) -> Bytes {
        let mut b = BytesMut::new();
        codec::encode(p, Version::V311, &mut b).unwrap();
        b.freeze()
    }

    /// Reads until one whole packet is in; the load client only does this
    /// during setup (CONNACK, SUBACK).
    async fn read_packet(s: &mut Stream, dec: &mut FrameDecoder) -> Packet {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(p) = dec.next_packet().unwrap() {
                return p;
            }
            buf.clear();
            let n = tokio::time::timeout(STALL, s.read_buf(&mut buf))
                .await
                .expect("no answer from the broker")
                .unwrap();
            assert!(n > 0, "the broker closed the connection during setup");
            dec.extend(&buf);
        }
    }

    async fn connect(tls: &ClientTls, port: u16, id: &str) -> (Stream, FrameDecoder) {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut s = tls.connect(tcp).await.unwrap();
        let c = Connect {
            clean_start: true,
            keep_alive: 0,
            client_id: MqttString::new(id).unwrap(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
        };
        s.write_all(&encode(&Packet::Connect(Box::new(c))))
            .await
            .unwrap();
        s.flush().await.unwrap();
        let mut dec = FrameDecoder::new(Some(Version::V311), MAX_PACKET);
        match read_packet(&mut s, &mut dec).await {
            Packet::Connack(c) if (c.reason as u8) == 0 => {}
            other => panic!("{id}: expected an accepting CONNACK, got {other:?}"),
        }
        (s, dec)
    }

    /// Messages delivered to the subscribers of one rig.
    struct Progress {
        delivered: AtomicU64,
        changed: Notify,
    }

    /// The packet id of a QoS 1/2 PUBLISH frame (3.1.1: no properties).
    fn publish_pid(frame: &[u8]) -> Option<u16> {
        let h = parse_fixed_header(frame).ok()??;
        let at = h.header_len;
        let topic_len = usize::from(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
        let pid_at = at + 2 + topic_len;
        Some(u16::from_be_bytes([
            *frame.get(pid_at)?,
            *frame.get(pid_at + 1)?,
        ]))
    }

    /// Counts deliveries and acknowledges QoS 1 ones, one batched write of
    /// PUBACKs per read.
    async fn subscriber(mut s: Stream, mut dec: FrameDecoder, progress: StdArc<Progress>) {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut acks = Vec::with_capacity(4096);
        loop {
            buf.clear();
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            dec.extend(&buf);
            let mut n = 0;
            while let Some(f) = dec.next_frame().unwrap() {
                let byte1 = f.bytes.first().copied().unwrap_or(0);
                if PacketType::from_u8(byte1 >> 4) != Some(PacketType::Publish) {
                    continue;
                }
                n += 1;
                if (byte1 >> 1) & 3 == 1 {
                    let pid = publish_pid(&f.bytes).expect("a QoS 1 PUBLISH has a packet id");
                    acks.extend_from_slice(&[0x40, 2]);
                    acks.extend_from_slice(&pid.to_be_bytes());
                }
            }
            if !acks.is_empty() {
                if s.write_all(&acks).await.is_err() || s.flush().await.is_err() {
                    return;
                }
                acks.clear();
            }
            if n > 0 {
                progress.delivered.fetch_add(n, Ordering::Release);
                progress.changed.notify_one();
            }
        }
    }

    /// One configuration's connections to one broker: a publisher and
    /// `fanout` subscribers to a topic of their own.
    struct Rig {
        publisher: Stream,
        dec: FrameDecoder,
        /// One encoded PUBLISH; QoS 1 copies get their packet id patched.
        template: Vec<u8>,
        pid_at: Option<usize>,
        next_pid: u16,
        inflight: u64,
        fanout: u64,
        progress: StdArc<Progress>,
        subscribers: Vec<JoinHandle<()>>,
        rbuf: BytesMut,
        wbuf: Vec<u8>,
    }

    #[derive(Clone, Copy)]
    struct Config {
        qos: QoS,
        payload: usize,
        fanout: u64,
        /// Messages published per iteration.
        n: u64,
    }

    impl Config {
        fn name(&self) -> String {
            let size = if self.payload >= 1024 {
                format!("{}KiB", self.payload / 1024)
            } else {
                format!("{}B", self.payload)
            };
            format!("qos{}_{}_1to{}", self.qos as u8, size, self.fanout)
        }
    }

    impl Rig {
        async fn open(tls: &ClientTls, port: u16, cfg: Config, tag: &str) -> Rig {
            let topic = format!("bench/{tag}/{}", cfg.name());
            let progress = StdArc::new(Progress {
                delivered: AtomicU64::new(0),
                changed: Notify::new(),
            });
            let mut subscribers = Vec::new();
            for i in 0..cfg.fanout {
                let (mut s, mut dec) = connect(tls, port, &format!("{tag}-sub{i}")).await;
                let sub = Subscribe {
                    packet_id: 1,
                    filters: vec![Subscription {
                        filter: MqttString::new(topic.as_str()).unwrap(),
                        options: SubscriptionOptions {
                            qos: cfg.qos,
                            ..Default::default()
                        },
                    }],
                    properties: Default::default(),
                };
                s.write_all(&encode(&Packet::Subscribe(sub))).await.unwrap();
                s.flush().await.unwrap();
                match read_packet(&mut s, &mut dec).await {
                    Packet::Suback(a) if (a.reasons[0] as u8) == cfg.qos as u8 => {}
                    other => panic!("expected a SUBACK granting {:?}, got {other:?}", cfg.qos),
                }
                subscribers.push(tokio::spawn(subscriber(s, dec, progress.clone())));
            }
            let (publisher, dec) = connect(tls, port, &format!("{tag}-pub")).await;
            let mut p = Publish::new(
                MqttString::new(topic.as_str()).unwrap(),
                Bytes::from(vec![b'x'; cfg.payload]),
            );
            p.qos = cfg.qos;
            p.packet_id = if cfg.qos == QoS::AtMostOnce { 0 } else { 1 };
            let template = encode(&Packet::Publish(p)).to_vec();
            let pid_at = (cfg.qos != QoS::AtMostOnce).then(|| template.len() - cfg.payload - 2);
            Rig {
                publisher,
                dec,
                template,
                pid_at,
                next_pid: 1,
                inflight: 0,
                fanout: cfg.fanout,
                progress,
                subscribers,
                rbuf: BytesMut::with_capacity(64 * 1024),
                wbuf: Vec::with_capacity(BATCH as usize * 4200),
            }
        }

        fn delivered(&self) -> u64 {
            self.progress.delivered.load(Ordering::Acquire)
        }

        /// Reads PUBACKs (at least one read's worth).
        async fn read_acks(&mut self) {
            self.rbuf.clear();
            let n = tokio::time::timeout(STALL, self.publisher.read_buf(&mut self.rbuf))
                .await
                .expect("no PUBACK within the stall bound")
                .unwrap();
            assert!(n > 0, "the broker closed the publisher's connection");
            self.dec.extend(&self.rbuf);
            while let Some(p) = self.dec.next_packet().unwrap() {
                if let Packet::Puback(_) = p {
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
        }

        async fn wait_progress(&self) {
            tokio::time::timeout(STALL, self.progress.changed.notified())
                .await
                .expect("deliveries stalled: the broker dropped messages?");
        }

        /// Publishes `n` messages and returns once every subscriber got
        /// them all.
        async fn run(&mut self, n: u64) {
            let start = self.delivered();
            let k = self.fanout;
            let mut sent = 0;
            while sent < n {
                let delivered = self.delivered() - start;
                let lag = (sent * k).saturating_sub(delivered);
                let lag_room = (LAG * k).saturating_sub(lag) / k;
                let window_room = match self.pid_at {
                    Some(_) => WINDOW.saturating_sub(self.inflight),
                    None => u64::MAX,
                };
                let room = lag_room.min(window_room).min(n - sent).min(BATCH);
                if room == 0 {
                    if window_room == 0 {
                        self.read_acks().await;
                    } else {
                        self.wait_progress().await;
                    }
                    continue;
                }
                self.wbuf.clear();
                for _ in 0..room {
                    let at = self.wbuf.len();
                    self.wbuf.extend_from_slice(&self.template);
                    if let Some(pid_at) = self.pid_at {
                        let pid = self.next_pid;
                        self.next_pid = pid.checked_add(1).unwrap_or(1);
                        self.wbuf[at + pid_at..at + pid_at + 2].copy_from_slice(&pid.to_be_bytes());
                    }
                }
                self.publisher.write_all(&self.wbuf).await.unwrap();
                self.publisher.flush().await.unwrap();
                sent += room;
                if self.pid_at.is_some() {
                    self.inflight += room;
                }
            }
            while self.delivered() - start < n * k {
                self.wait_progress().await;
            }
        }

        async fn close(mut self) {
            let _ = self.publisher.write_all(&[0xe0, 0]).await;
            let _ = self.publisher.flush().await;
            let _ = self.publisher.shutdown().await;
            for s in self.subscribers {
                s.abort();
            }
        }
    }

    // ---------------------------------------------------------------- running

    /// Messages/s of each broker in one configuration, one entry per
    /// interleaved round.
    struct Row {
        cfg: Config,
        rounds: Vec<Vec<(&'static str, f64)>>,
        /// Broker CPU time per delivered message, over all rounds.
        cpu_per_msg: Vec<(&'static str, Duration)>,
    }

    fn median(mut v: Vec<f64>) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    impl Row {
        /// The median over rounds of one broker's messages/s.
        fn rate(&self, name: &str) -> Option<f64> {
            median(
                self.rounds
                    .iter()
                    .filter_map(|r| r.iter().find(|(t, _)| *t == name).map(|(_, v)| *v))
                    .collect(),
            )
        }

        fn cpu(&self, name: &str) -> Option<Duration> {
            self.cpu_per_msg
                .iter()
                .find(|(t, _)| *t == name)
                .map(|(_, d)| *d)
        }

        /// The median over rounds of `a / b`, each ratio from one round's
        /// neighbouring measurements.
        fn ratio(&self, a: &str, b: &str) -> Option<f64> {
            let get = |r: &[(&str, f64)], n: &str| r.iter().find(|(t, _)| *t == n).map(|x| x.1);
            median(
                self.rounds
                    .iter()
                    .filter_map(|r| Some(get(r, a)? / get(r, b)?))
                    .collect(),
            )
        }
    }

    fn configs() -> Vec<Config> {
        let mut v = Vec::new();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            for (payload, fanout, n) in [
                (64, 1, 5_000),
                (4096, 1, 2_000),
                (64, 8, 2_000),
                (4096, 8, 500),
            ] {
                v.push(Config {
                    qos,
                    payload,
                    fanout,
                    n,
                });
            }
        }
        v
    }

    pub fn main() {
        let mut c = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();
        let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default()).unwrap();
        let tls = Tls::from_pki(&pki).unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki.write_pem(dir.path(), false).unwrap();

        let mut targets = vec![
            Target::ours("ours_counting", &tls, Mode::Counting, None),
            Target::ours("ours_off", &tls, Mode::Off, None),
            // One thread like mosquitto: on a busy machine the scheduler
            // shares CPU per thread, so this is the like-for-like column.
            Target::ours("ours_1thread", &tls, Mode::Counting, Some(1)),
        ];
        match find_mosquitto() {
            Some(exe) => targets.push(Target::mosquitto(&exe, dir.path())),
            None => println!("mosquitto not installed: its column is skipped"),
        }
        // The load client: one thread, the same code for every broker.
        let load = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let filter: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();

        let mut rows = Vec::new();
        for (ci, cfg) in configs().into_iter().enumerate() {
            let name = cfg.name();
            if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
                continue;
            }
            let mut rigs: Vec<Rig> = targets
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    load.block_on(Rig::open(&tls.client, t.port, cfg, &format!("c{ci}t{ti}")))
                })
                .collect();
            let mut g = c.benchmark_group(format!("e2e/{name}"));
            g.sampling_mode(SamplingMode::Flat);
            g.throughput(Throughput::Elements(cfg.n * cfg.fanout));
            for (t, rig) in targets.iter().zip(rigs.iter_mut()) {
                g.bench_function(BenchmarkId::from_parameter(t.name), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            load.block_on(rig.run(cfg.n));
                        }
                        start.elapsed()
                    })
                });
            }
            g.finish();
            let (rounds, cpu_per_msg) = interleaved(&load, &targets, &mut rigs, cfg);
            rows.push(Row {
                cfg,
                rounds,
                cpu_per_msg,
            });
            for rig in rigs {
                load.block_on(rig.close());
            }
        }
        for t in targets {
            t.stop();
        }
        print_summary(&rows);
        c.final_summary();
    }

    /// Rounds of about 0.3 s per broker, in turn, five times: each round's
    /// figures are taken side by side in time, so load from elsewhere on
    /// the machine hits every broker alike.
    /// Also returns each broker's CPU time per delivered message over all
    /// rounds: unlike messages/s, that does not depend on the CPU share the
    /// scheduler gave the broker.
    #[allow(clippy::type_complexity)]
    fn interleaved(
        load: &Runtime,
        targets: &[Target],
        rigs: &mut [Rig],
        cfg: Config,
    ) -> (Vec<Vec<(&'static str, f64)>>, Vec<(&'static str, Duration)>) {
        let mut cpu = vec![(Duration::ZERO, 0u64); targets.len()];
        let rounds = (0..5)
            .map(|_| {
                targets
                    .iter()
                    .zip(rigs.iter_mut())
                    .zip(cpu.iter_mut())
                    .map(|((t, rig), cpu)| {
                        let (mut msgs, start, cpu0) = (0, Instant::now(), t.cpu());
                        while start.elapsed() < Duration::from_millis(300) {
                            load.block_on(rig.run(cfg.n));
                            msgs += cfg.n * cfg.fanout;
                        }
                        let rate = msgs as f64 / start.elapsed().as_secs_f64();
                        cpu.0 += t.cpu().saturating_sub(cpu0);
                        cpu.1 += msgs;
                        (t.name, rate)
                    })
                    .collect()
            })
            .collect();
        let per_msg = targets
            .iter()
            .zip(cpu)
            .map(|(t, (time, msgs))| (t.name, time / msgs.max(1) as u32))
            .collect();
        (rounds, per_msg)
    }

    fn print_summary(rows: &[Row]) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "\ne2e throughput, messages/s delivered: median of 5 interleaved rounds \
             (ratios: median of per-round ratios; load average {})",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "{:<16} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}",
            "config",
            "ours_counting",
            "ours_off",
            "ours_1thread",
            "mosquitto",
            "counting/mosq",
            "1thread/mosq",
            "counting/off"
        );
        let fmt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        for r in rows {
            println!(
                "{:<16} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}",
                r.cfg.name(),
                fmt(r.rate("ours_counting"), 0),
                fmt(r.rate("ours_off"), 0),
                fmt(r.rate("ours_1thread"), 0),
                fmt(r.rate("mosquitto"), 0),
                fmt(r.ratio("ours_counting", "mosquitto"), 2),
                fmt(r.ratio("ours_1thread", "mosquitto"), 2),
                fmt(r.ratio("ours_counting", "ours_off"), 2),
            );
        }
        println!(
            "\nbroker CPU time per delivered message, ns (all rounds; mosquitto's process, \
             our runtime's threads)"
        );
        println!(
            "{:<16} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}",
            "config",
            "ours_counting",
            "ours_off",
            "ours_1thread",
            "mosquitto",
            "mosq/counting",
            "off/counting"
        );
        let ns = |d: Option<Duration>| d.map(|d| d.as_nanos() as f64);
        for r in rows {
            let (c, o, t, m) = (
                ns(r.cpu("ours_counting")),
                ns(r.cpu("ours_off")),
                ns(r.cpu("ours_1thread")),
                ns(r.cpu("mosquitto")),
            );
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            println!(
                "{:<16} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}",
                r.cfg.name(),
                fmt(c, 0),
                fmt(o, 0),
                fmt(t, 0),
                fmt(m, 0),
                fmt(ratio(m, c), 2),
                fmt(ratio(o, c), 2),
            );
        }
    }
}

#[cfg(not(feature = "loom"))]
fn main() {
    bench::main();
}

// loom's primitives panic outside a model; under the feature there is
// nothing meaningful to measure.
#[cfg(feature = "loom")]
fn main() {}
