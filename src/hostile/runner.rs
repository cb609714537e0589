//! Running the client under test: the command template, its process group,
//! and stopping it gracefully (the stop signal, a grace period, then
//! SIGKILL) once it recovered or at the time limit.

use super::HostileError;
use serde::Serialize;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Output kept per stream (the rest is counted, not kept).
const KEEP: usize = 1 << 20;

/// How much of each stream the report quotes as context (sanitizer reports
/// are quoted whole, by the findings).
const QUOTE: usize = 2000;

/// What the template's placeholders stand for.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `{host}`.
    pub host: String,
    /// `{port}`.
    pub port: u16,
    /// `{cafile}`: the CA the client must trust.
    pub cafile: Option<PathBuf>,
    /// `{cert}`: a client certificate for mutual TLS.
    pub cert: Option<PathBuf>,
    /// `{key}`: its private key.
    pub key: Option<PathBuf>,
}

/// Fills the placeholders of `template`; each value is shell-quoted when it
/// holds anything but `[A-Za-z0-9/._:@+-]`.
pub fn fill(template: &str, p: &Placeholders) -> Result<String, HostileError> {
    let mut out = template
        .replace("{host}", &quote(&p.host))
        .replace("{port}", &p.port.to_string());
    let files: [(&'static str, &Option<PathBuf>); 3] =
        [("cafile", &p.cafile), ("cert", &p.cert), ("key", &p.key)];
    for (name, value) in files {
        let pattern = format!("{{{name}}}");
        if !out.contains(&pattern) {
            continue;
        }
        let value = value
            .as_ref()
            .ok_or(HostileError::MissingPlaceholder { placeholder: name })?;
        out = out.replace(&pattern, &quote(&value.display().to_string()));
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._:@+-".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How the client under test is stopped when it has to be: `signal` to
/// its whole process group, `grace` to finish (LeakSanitizer runs in that
/// time when the leak check is preloaded), then SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPlan {
    /// The signal asking it to stop (SIGTERM unless told otherwise).
    pub signal: i32,
    /// How long it may take to exit after the signal.
    pub grace: Duration,
}

impl Default for StopPlan {
    fn default() -> Self {
        StopPlan {
            signal: libc::SIGTERM,
            grace: Duration::from_secs(5),
        }
    }
}

/// One run of the client under test: what to start and when to stop it.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The command, run by `sh -c` in a process group of its own.
    pub command: String,
    /// Stopped at this limit if it neither exits nor recovers.
    pub limit: Duration,
    /// How to stop it.
    pub stop: StopPlan,
    /// How long to let it run after it recovered (to print and
    /// acknowledge) before stopping it.
    pub settle: Duration,
    /// Variables added to its environment.
    pub env: Vec<(String, String)>,
    /// Run for each process of the client's group (shells left out), with
    /// `{pid}` filled in, when it is stopped at the time limit: e.g. a
    /// debugger printing every thread's stack, the evidence of a STUCK.
    pub on_stuck: Option<String>,
}

/// Why the harness stopped the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// It recovered (received the message) and would have kept running.
    Recovered,
    /// The time limit passed.
    TimeLimit,
}

/// How the process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Exit {
    /// It exited with this status.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// It died of a signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Its name, e.g. `SIGSEGV`.
        name: String,
    },
    /// Its status could not be read.
    Unknown,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Exited { code } => write!(f, "exit status {code}"),
            Exit::Signaled { name, .. } => write!(f, "killed by {name}"),
            Exit::Unknown => f.write_str("exit status unknown"),
        }
    }
}

/// One run of the client under test.
#[derive(Debug, Clone, Serialize)]
pub struct ClientRun {
    /// The command as run by `sh -c`.
    pub command: String,
    /// How it ended.
    pub exit: Exit,
    /// Why the harness stopped it, when it did.
    pub stopped: Option<StopReason>,
    /// True when it was still running after the stop signal's grace
    /// period and had to be killed.
    pub killed: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The end of its standard output.
    pub stdout_tail: String,
    /// The end of its standard error.
    pub stderr_tail: String,
    /// Its whole standard error (up to 1 MiB), for the sanitizer parser.
    #[serde(skip)]
    pub stderr: String,
    /// Its whole standard output (up to 1 MiB).
    #[serde(skip)]
    pub stdout: String,
    /// What the `on_stuck` command printed, when it ran.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stuck_evidence: String,
}

/// Signals that mean the process crashed (as opposed to being told to
/// stop): by the kernel or by the shell's `128 + n` status.
pub const CRASH_SIGNALS: [(i32, &str); 6] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
];

/// The name of `signal` (`SIGSEGV`, `signal 42`).
pub fn signal_name(signal: i32) -> String {
    CRASH_SIGNALS
        .iter()
        .find(|(s, _)| *s == signal)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| match signal {
            libc::SIGKILL => "SIGKILL".to_owned(),
            libc::SIGTERM => "SIGTERM".to_owned(),
            libc::SIGPIPE => "SIGPIPE".to_owned(),
            libc::SIGINT => "SIGINT".to_owned(),
            libc::SIGQUIT => "SIGQUIT".to_owned(),
            libc::SIGHUP => "SIGHUP".to_owned(),
            libc::SIGUSR1 => "SIGUSR1".to_owned(),
            libc::SIGUSR2 => "SIGUSR2".to_owned(),
            other => format!("signal {other}"),
        })
}

/// The number of a signal named `name` (`TERM`, `SIGTERM`, `15`).
pub fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = name.trim_start_matches("SIG");
    [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("HUP", libc::SIGHUP),
        ("QUIT", libc::SIGQUIT),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("KILL", libc::SIGKILL),
    ]
    .iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, s)| *s)
}

/// How `status` says the process ended.
pub fn exit_of(status: Option<ExitStatus>) -> Exit {
    match status {
        Some(s) => match (s.signal(), s.code()) {
            (Some(signal), _) => Exit::Signaled {
                signal,
                name: signal_name(signal),
            },
            (None, Some(code)) => Exit::Exited { code },
            (None, None) => Exit::Unknown,
        },
        None => Exit::Unknown,
    }
}

/// Starts `command` through `sh -c` in a process group of its own, with
/// `env` added, its output piped.
pub fn spawn(command: &str, env: &[(String, String)]) -> Result<Child, HostileError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().map_err(|source| HostileError::Spawn { source })
}

/// Stops the process group `child` leads by `plan`: the signal, then up to
/// the grace period for it to exit and for `pipes` (its output readers) to
/// reach their end (every process holding them gone: a LeakSanitizer report
/// is written by then), then SIGKILL. Returns its status and whether it had
/// to be killed.
pub async fn stop_group(
    child: &mut Child,
    plan: StopPlan,
    pipes: &[&tokio::task::JoinHandle<Vec<u8>>],
) -> (Option<ExitStatus>, bool) {
    let pid = child.id();
    signal_group(pid, plan.signal);
    let done = async {
        let status = child.wait().await.ok();
        // The readers keep what they read: wait for them to end, not for
        // their output (that is collected later).
        while pipes.iter().any(|t| !t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        status
    };
    let status = tokio::time::timeout(plan.grace, done).await;
    let result = match status {
        Ok(status) => (status, false),
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            let _ = child.kill().await;
            (child.wait().await.ok(), true)
        }
    };
    signal_group(pid, libc::SIGKILL);
    result
}

/// Runs `launch.command` through `sh -c` in its own process group until it
/// exits, or until `recovered` turns true (plus the settle time) or the
/// limit passes; then stops the whole group by [`StopPlan`].
pub async fn run(
    launch: &Launch,
    mut recovered: watch::Receiver<bool>,
) -> Result<ClientRun, HostileError> {
    let started = Instant::now();
    let mut child = spawn(&launch.command, &launch.env)?;
    let pid = child.id();
    let out = child.stdout.take().map(|s| tokio::spawn(keep(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(keep(s)));

    let wait_recovered = async {
        if recovered.wait_for(|d| *d).await.is_ok() {
            tokio::time::sleep(launch.settle).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let (status, stopped) = tokio::select! {
        status = child.wait() => (status.ok(), None),
        () = tokio::time::sleep(launch.limit) => (None, Some(StopReason::TimeLimit)),
        () = wait_recovered => (None, Some(StopReason::Recovered)),
    };
    let mut stuck_evidence = String::new();
    if let (Some(StopReason::TimeLimit), Some(hook)) = (stopped, &launch.on_stuck) {
        stuck_evidence = inspect_group(pid, hook).await;
    }
    let (status, killed) = match status {
        Some(status) => (Some(status), false),
        None => {
            let pipes: Vec<&tokio::task::JoinHandle<Vec<u8>>> =
                [out.as_ref(), err.as_ref()].into_iter().flatten().collect();
            stop_group(&mut child, launch.stop, &pipes).await
        }
    };
    // Whatever the shell left behind in its group goes too, so that the
    // pipes close and nothing outlives the run.
    signal_group(pid, libc::SIGKILL);
    let stdout = collect(out).await;
    let stderr = collect(err).await;
    Ok(ClientRun {
        command: launch.command.clone(),
        exit: exit_of(status),
        stopped,
        killed,
        seconds: started.elapsed().as_secs_f64(),
        stdout_tail: tail(&stdout),
        stderr_tail: tail(&stderr),
        stderr,
        stdout,
        stuck_evidence,
    })
}

/// The processes of the group `pgid` leads, shells left out, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may
            // hold spaces and parentheses, so count from the last ')'.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let comm = head.split_once('(').map_or("", |(_, c)| c);
            let pgrp = rest
                .split_whitespace()
                .nth(2)
                .and_then(|g| g.parse::<u32>().ok());
            pgrp == Some(pgid) && !matches!(comm, "sh" | "dash" | "bash")
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Runs `hook` (with `{pid}`) for every process of the group `pid` leads;
/// returns what it printed, at most 64 KiB per process.
async fn inspect_group(pid: Option<u32>, hook: &str) -> String {
    let Some(pgid) = pid else {
        return String::new();
    };
    let mut out = String::new();
    for member in group_members(pgid) {
        let cmd = hook.replace("{pid}", &member.to_string());
        let run = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let text = match tokio::time::timeout(Duration::from_secs(30), run).await {
            Ok(Ok(o)) => {
                let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
                t.push_str(&String::from_utf8_lossy(&o.stderr));
                t
            }
            Ok(Err(e)) => format!("cannot run `{cmd}`: {e}"),
            Err(_) => format!("`{cmd}` did not finish within 30 s"),
        };
        let cut = (0..=text.len().min(64 << 10))
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        out.push_str(&format!(
            "$ {cmd}\n{}\n",
            text.get(..cut).unwrap_or_default()
        ));
    }
    out
}

fn signal_group(pid: Option<u32>, signal: i32) {
    let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group the
    // child leads (`process_group(0)` above); it touches no memory of ours.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Reads `r` to its end, keeping the first 1 MiB.
pub async fn keep<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = KEEP.saturating_sub(kept.len());
        kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
    }
    kept
}

async fn collect(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    let Some(task) = task else {
        return String::new();
    };
    // A grandchild that left the process group may hold the pipe open.
    match tokio::time::timeout(Duration::from_secs(1), task).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

/// The end of `s`, quoted as context.
pub fn tail(s: &str) -> String {
    let s = s.trim_end();
    let start = s.len().saturating_sub(QUOTE);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s.get(start..).unwrap_or_default().to_owned()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn launch(cmd: &str, limit_ms: u64) -> Launch {
        Launch {
            command: cmd.into(),
            limit: Duration::from_millis(limit_ms),
            stop: StopPlan {
                signal: libc::SIGTERM,
                grace: Duration::from_millis(500),
            },
            settle: Duration::from_millis(50),
            env: vec![("MQTLS_RUNNER_TEST".into(), "set".into())],
            on_stuck: Some("echo inspected {pid}".into()),
        }
    }

    fn run_for(cmd: &str, limit_ms: u64) -> ClientRun {
        let (_tx, rx) = watch::channel(false);
        rt().block_on(run(&launch(cmd, limit_ms), rx)).unwrap()
    }

    #[test]
    fn exits_and_signals_are_recorded() {
        assert_eq!(run_for("true", 5000).exit, Exit::Exited { code: 0 });
        assert_eq!(run_for("exit 3", 5000).exit, Exit::Exited { code: 3 });
        let r = run_for("kill -SEGV $$", 5000);
        assert!(
            matches!(&r.exit, Exit::Signaled { signal, name } if *signal == libc::SIGSEGV && name == "SIGSEGV"),
            "{r:?}"
        );
        assert_eq!(r.stopped, None);
        let r = run_for("echo \"$MQTLS_RUNNER_TEST\" >&2", 5000);
        assert_eq!(r.stderr.trim(), "set");
    }

    #[test]
    fn at_the_limit_the_group_gets_the_stop_signal_and_its_grace() {
        // A client that finishes its work on SIGTERM (as LeakSanitizer's
        // check does): its last words are kept, nothing is killed.
        let r = run_for(
            "trap 'echo last words >&2; exit 0' TERM; sleep 30 & wait",
            300,
        );
        assert_eq!(r.stopped, Some(StopReason::TimeLimit));
        assert!(!r.killed, "{r:?}");
        assert!(r.stderr.contains("last words"), "{r:?}");
        // One that ignores it is killed with its whole group after the grace.
        let started = Instant::now();
        let r = run_for("trap '' TERM; sleep 30 & sleep 30", 300);
        assert!(r.killed, "{r:?}");
        // The stuck hook saw both sleeps (and not the shell).
        assert_eq!(r.stuck_evidence.matches("\ninspected ").count(), 2, "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_recovered_client_is_stopped_once_it_settled() {
        let (tx, rx) = watch::channel(false);
        let started = Instant::now();
        let r = rt().block_on(async {
            let l = launch("sleep 30", 20_000);
            let task = tokio::spawn(async move { run(&l, rx).await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send_replace(true);
            task.await.unwrap().unwrap()
        });
        assert_eq!(r.stopped, Some(StopReason::Recovered));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn signals_have_names_and_numbers() {
        assert_eq!(signal_number("TERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("SIGINT"), Some(libc::SIGINT));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("BOGUS"), None);
        assert_eq!(signal_name(libc::SIGABRT), "SIGABRT");
    }

    #[test]
    fn placeholders_are_filled_and_quoted() {
        let p = Placeholders {
            host: "127.0.0.1".into(),
            port: 8883,
            cafile: Some("/tmp/a b/ca.pem".into()),
            cert: None,
            key: None,
        };
        assert_eq!(
            fill("sub -h {host} -p {port} --cafile {cafile}", &p).unwrap(),
            "sub -h 127.0.0.1 -p 8883 --cafile '/tmp/a b/ca.pem'"
        );
        let err = fill("sub --cert {cert}", &p).unwrap_err();
        assert!(err.to_string().contains("--cert"), "{err}");
    }
}
