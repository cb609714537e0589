//! A broker under test that the probe starts itself, so that its standard
//! error (where its sanitizers report) is read after every scenario and its
//! stop is graceful (the stop signal, a grace period, then SIGKILL), which
//! gives LeakSanitizer its chance.

use super::HostileError;
use super::raw_client::{Target, liveness};
use super::runner::{self, Exit, StopPlan};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Child;
use tokio::sync::mpsc;

/// Output kept from the broker at most; the rest is dropped.
const KEEP: usize = 8 << 20;

/// The broker process and what it has written so far.
#[derive(Debug)]
pub struct BrokerProcess {
    /// The command as run by `sh -c`.
    pub command: String,
    child: Child,
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    reader: tokio::task::JoinHandle<Vec<u8>>,
    kept: usize,
    died: bool,
    /// Everything read so far (up to 8 MiB).
    pub stderr: String,
}

impl BrokerProcess {
    /// Starts `command` through `sh -c` in a process group of its own, with
    /// `env` added; its stdout and stderr are read together.
    pub fn start(command: &str, env: &[(String, String)]) -> Result<Self, HostileError> {
        let mut child = runner::spawn(command, env)?;
        let (tx, chunks) = mpsc::unbounded_channel();
        let out = child.stdout.take();
        let err = child.stderr.take();
        let reader = tokio::spawn(async move {
            let forward = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                           tx: mpsc::UnboundedSender<Vec<u8>>| async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 || tx.send(buf.get(..n).unwrap_or_default().to_vec()).is_err() {
                        break;
                    }
                }
            };
            let a = out.map(|o| tokio::spawn(forward(Box::new(o), tx.clone())));
            let b = err.map(|e| tokio::spawn(forward(Box::new(e), tx.clone())));
            drop(tx);
            for t in [a, b].into_iter().flatten() {
                let _ = t.await;
            }
            Vec::new()
        });
        Ok(BrokerProcess {
            command: command.to_owned(),
            child,
            chunks,
            reader,
            kept: 0,
            died: false,
            stderr: String::new(),
        })
    }

    /// What the broker wrote since the last call.
    pub fn drain(&mut self) -> String {
        let mut fresh = Vec::new();
        while let Ok(chunk) = self.chunks.try_recv() {
            fresh.extend(chunk);
        }
        let room = KEEP.saturating_sub(self.kept);
        fresh.truncate(room);
        self.kept += fresh.len();
        let text = String::from_utf8_lossy(&fresh).into_owned();
        self.stderr.push_str(&text);
        text
    }

    /// Waits until it serves a plain client (the probe's liveness check,
    /// each `step` at most), for up to `limit`; fails with what it printed.
    pub async fn wait_serving(
        &mut self,
        target: &Target,
        limit: Duration,
        step: Duration,
    ) -> Result<(), HostileError> {
        let started = Instant::now();
        loop {
            let why = match self.exited() {
                Some(exit) => Some(format!("exited ({exit}) before serving")),
                None if started.elapsed() > limit => {
                    Some(format!("did not serve within {limit:?}"))
                }
                None => None,
            };
            if let Some(why) = why {
                self.drain();
                return Err(HostileError::BrokerDidNotStart {
                    command: self.command.clone(),
                    why,
                    output: runner::tail(&self.stderr),
                });
            }
            if tokio::net::TcpStream::connect(target.addr).await.is_ok()
                && liveness(target, 0, step).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How it ended, if it did.
    pub fn exited(&mut self) -> Option<Exit> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.died = true;
                Some(runner::exit_of(Some(status)))
            }
            _ => None,
        }
    }

    /// True when it had ended before [`stop`](Self::stop) was called.
    pub fn exited_before_stop(&mut self) -> bool {
        self.exited();
        self.died
    }

    /// Stops it by `plan` and returns how it ended, whether it had to be
    /// killed, and what it wrote since the last [`drain`](Self::drain).
    pub async fn stop(mut self, plan: StopPlan) -> (Exit, bool, String) {
        let (status, killed) = match self.child.try_wait() {
            Ok(Some(status)) => (Some(status), false),
            _ => runner::stop_group(&mut self.child, plan, &[&self.reader]).await,
        };
        // The reader ends once every writer of the pipes is gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.reader).await;
        let rest = self.drain();
        (runner::exit_of(status), killed, rest)
    }
}
