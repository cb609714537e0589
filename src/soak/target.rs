//! The brokers a soak runs against: ours (`mqtls broker` as a child
//! process, so that its RSS is its own), mosquitto (a child with a
//! generated configuration carrying the same limits), or one the user
//! started (measured only if its pid is given). Each one's resident set is
//! read from `/proc`.

use super::SoakError;
use crate::broker::BrokerStats;
use crate::ledger::Stats;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a broker may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a broker may take to stop and write its report.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The limits both brokers get, so that they are compared like for like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLimits {
    /// Queued messages per session (0: none).
    pub max_queued_messages: usize,
    /// Queued bytes per session (0: none).
    pub max_queued_bytes: usize,
    /// In-flight QoS 1/2 per session.
    pub max_inflight: u16,
}

/// Which broker, and how to start it.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// `mqtls broker` from `exe`, with `args` appended (its queue flags).
    Ours {
        /// The `mqtls` executable.
        exe: PathBuf,
        /// Extra arguments (queue limits, ledger mode).
        args: Vec<String>,
    },
    /// mosquitto from `exe`.
    Mosquitto {
        /// The `mosquitto` executable.
        exe: PathBuf,
    },
    /// A broker someone else started.
    External {
        /// Its TLS address.
        addr: SocketAddr,
        /// Its process id, to read its RSS.
        pid: Option<u32>,
    },
}

impl TargetSpec {
    /// The name in reports.
    pub fn name(&self) -> String {
        match self {
            TargetSpec::Ours { .. } => "ours".into(),
            TargetSpec::Mosquitto { .. } => "mosquitto".into(),
            TargetSpec::External { addr, .. } => format!("external {addr}"),
        }
    }
}

/// What our broker wrote at shutdown (`mqtls broker --report`).
#[derive(Debug, Clone, Deserialize)]
pub struct OursReport {
    /// Its traffic and drop counters.
    pub stats: BrokerStats,
    /// The ledger audit.
    pub audit: AuditSummary,
}

/// The part of a ledger audit a soak reports.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSummary {
    /// Counts at the audit.
    pub stats: Stats,
    /// The violations (their count is what the soak reports).
    pub violations: Vec<serde_json::Value>,
}

/// A broker under test, started (or found) and listening.
pub struct Running {
    /// The name in reports.
    pub name: String,
    /// Where it listens (TLS).
    pub addr: SocketAddr,
    pid: Option<u32>,
    child: Option<Child>,
    report: Option<PathBuf>,
    /// Where ours writes its log (stderr).
    log: Option<PathBuf>,
    /// Holds the configuration and report files.
    _dir: tempfile::TempDir,
}

fn free_port() -> Result<u16, SoakError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| SoakError::io("finding a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| SoakError::io("finding a free port", e))
}

impl Running {
    /// Starts `spec` with the PEM files in `pki` (`ca.pem`, `server.pem`,
    /// `server.key`) and `limits`, and waits until it listens. Our broker's
    /// log goes to `log`.
    pub fn start(
        spec: &TargetSpec,
        pki: &Path,
        limits: &SharedLimits,
        log: &Path,
    ) -> Result<Running, SoakError> {
        let dir = tempfile::tempdir().map_err(|e| SoakError::io("creating a temp dir", e))?;
        let name = spec.name();
        let mut log_file = None;
        let (addr, child, report) = match spec {
            TargetSpec::External { addr, .. } => (*addr, None, None),
            TargetSpec::Ours { exe, args } => {
                let port = free_port()?;
                let report = dir.path().join("ours-report.json");
                let p = |f: &str| pki.join(f);
                let child = Command::new(exe)
                    .arg("broker")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .arg("--cert")
                    .arg(p("server.pem"))
                    .arg("--key")
                    .arg(p("server.key"))
                    .arg("--report")
                    .arg(&report)
                    .args([
                        "--max-queued-messages",
                        &limits.max_queued_messages.to_string(),
                    ])
                    .args(["--max-queued-bytes", &limits.max_queued_bytes.to_string()])
                    .args(["--max-inflight", &limits.max_inflight.to_string()])
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr({
                        let f = std::fs::File::create(log).map_err(|e| {
                            SoakError::io(&format!("creating {}", log.display()), e)
                        })?;
                        log_file = Some(log.to_path_buf());
                        f
                    })
                    .spawn()
                    .map_err(|e| SoakError::Start(format!("{}: {e}", exe.display())))?;
                (
                    (Ipv4Addr::LOCALHOST, port).into(),
                    Some(child),
                    Some(report),
                )
            }
            TargetSpec::Mosquitto { exe } => {
                let port = free_port()?;
                let p = |f: &str| pki.join(f).display().to_string();
                // `user root`: mosquitto would otherwise drop to a user that
                // cannot read the 0600 key. $SYS every second gives the
                // soak mosquitto's own count of dropped messages.
                let conf = format!(
                    "user root\nallow_anonymous true\npersistence false\nlog_type none\n\
                     sys_interval 1\nmax_queued_messages {}\nmax_queued_bytes {}\n\
                     max_inflight_messages {}\nset_tcp_nodelay true\n\
                     listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                    limits.max_queued_messages,
                    limits.max_queued_bytes,
                    limits.max_inflight,
                    p("ca.pem"),
                    p("server.pem"),
                    p("server.key"),
                );
                let path = dir.path().join("mosquitto.conf");
                std::fs::write(&path, conf)
                    .map_err(|e| SoakError::io("writing mosquitto.conf", e))?;
                let child = Command::new(exe)
                    .arg("-c")
                    .arg(&path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| SoakError::Start(format!("{}: {e}", exe.display())))?;
                ((Ipv4Addr::LOCALHOST, port).into(), Some(child), None)
            }
        };
        let pid = match spec {
            TargetSpec::External { pid, .. } => *pid,
            _ => child.as_ref().map(Child::id),
        };
        let mut running = Running {
            name,
            addr,
            pid,
            child,
            report,
            log: log_file,
            _dir: dir,
        };
        running.wait_listening()?;
        Ok(running)
    }

    fn wait_listening(&mut self) -> Result<(), SoakError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(SoakError::Start(format!(
                    "{} exited with {status} before listening on {}",
                    self.name, self.addr
                )));
            }
            if Instant::now() > deadline {
                return Err(SoakError::Start(format!(
                    "{} did not listen on {} within {START_TIMEOUT:?}",
                    self.name, self.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Where our broker's log is, if this is ours.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The process measured, if known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Its resident set in KiB right now (`None`: no pid to read, or it is
    /// gone).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid?)
    }

    /// Stops it: ours gets SIGINT (it shuts down, audits its ledger and
    /// writes its report, which is returned), mosquitto is killed, an
    /// external one is left alone.
    pub fn stop(mut self) -> Result<Option<OursReport>, SoakError> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let Some(report) = self.report.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SoakError::Report(format!(
                        "{} did not stop within {STOP_TIMEOUT:?} of SIGINT",
                        self.name
                    )));
                }
            }
        };
        let text = std::fs::read_to_string(&report).map_err(|e| {
            SoakError::Report(format!(
                "{} exited with {status} without its report {}: {e}",
                self.name,
                report.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SoakError::Report(format!("{}: {e}", report.display())))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The resident set of process `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// mosquitto from PATH or the sbin directories, if installed.
pub fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mosquitto"))
        .find(|c| c.is_file())
}
