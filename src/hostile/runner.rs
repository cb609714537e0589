//! Running the client under test: the command template, the time limit, and
//! what its exit means.

use super::HostileError;
use serde::Serialize;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Output kept per stream (the rest is counted, not kept).
const KEEP: usize = 1 << 20;

/// How much of each stream the report quotes.
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

/// How the client under test ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// Exit status 0.
    CleanExit,
    /// A non-zero exit status, without a crash or a sanitizer report: the
    /// client noticed the problem and said so.
    CleanError {
        /// The exit status.
        code: i32,
    },
    /// Killed by a signal it did not ask for (SIGSEGV, SIGABRT, ...).
    Crash {
        /// The signal number.
        signal: i32,
        /// Its name, e.g. `SIGSEGV`.
        name: String,
    },
    /// A sanitizer reported an error, whatever the exit status.
    Sanitizer {
        /// Which sanitizer, e.g. `AddressSanitizer`.
        tool: String,
        /// The report's first line.
        line: String,
    },
    /// Still running at the time limit: killed.
    Hang {
        /// The limit in seconds.
        limit_secs: f64,
    },
}

impl Outcome {
    /// True for crashes, sanitizer reports and hangs: what a client must
    /// never do, whatever the broker sends.
    pub fn is_finding(&self) -> bool {
        matches!(
            self,
            Outcome::Crash { .. } | Outcome::Sanitizer { .. } | Outcome::Hang { .. }
        )
    }

    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            Outcome::CleanExit => "clean exit".to_owned(),
            Outcome::CleanError { code } => format!("clean error (exit {code})"),
            Outcome::Crash { name, .. } => format!("CRASH ({name})"),
            Outcome::Sanitizer { tool, .. } => format!("SANITIZER ({tool})"),
            Outcome::Hang { limit_secs } => format!("HANG (killed after {limit_secs} s)"),
        }
    }
}

/// One run of the client under test.
#[derive(Debug, Clone, Serialize)]
pub struct ClientRun {
    /// The command as run by `sh -c`.
    pub command: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The end of its standard output.
    pub stdout_tail: String,
    /// The end of its standard error.
    pub stderr_tail: String,
}

/// Sanitizer report markers and the tool each names.
///
/// The harness's own client reports ownership violations through its
/// ledger, which plays the sanitizer's part for it.
const SANITIZERS: [(&str, &str); 6] = [
    ("mqtls: ledger violation:", "mqtls ledger"),
    ("ERROR: AddressSanitizer", "AddressSanitizer"),
    ("ERROR: LeakSanitizer", "LeakSanitizer"),
    ("runtime error:", "UndefinedBehaviorSanitizer"),
    (
        "SUMMARY: UndefinedBehaviorSanitizer",
        "UndefinedBehaviorSanitizer",
    ),
    ("WARNING: ThreadSanitizer", "ThreadSanitizer"),
];

/// The first sanitizer report in `text`: the tool and the line.
pub fn find_sanitizer(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        SANITIZERS
            .iter()
            .find(|(marker, _)| line.contains(marker))
            .map(|(_, tool)| ((*tool).to_owned(), line.trim().to_owned()))
    })
}

/// Signals that mean the process crashed (as opposed to being told to
/// stop): by the kernel or by the shell's `128 + n` status.
const CRASH_SIGNALS: [(i32, &str); 6] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
];

fn signal_name(signal: i32) -> String {
    CRASH_SIGNALS
        .iter()
        .find(|(s, _)| *s == signal)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| match signal {
            libc::SIGKILL => "SIGKILL".to_owned(),
            libc::SIGTERM => "SIGTERM".to_owned(),
            libc::SIGPIPE => "SIGPIPE".to_owned(),
            libc::SIGINT => "SIGINT".to_owned(),
            other => format!("signal {other}"),
        })
}

/// Classifies an ended run. A sanitizer report wins over everything (a
/// sanitizer may exit 1 or abort); then the time limit; then signals.
pub fn classify(
    status: Option<ExitStatus>,
    timed_out: bool,
    limit: Duration,
    stdout: &str,
    stderr: &str,
) -> Outcome {
    if let Some((tool, line)) = find_sanitizer(stderr).or_else(|| find_sanitizer(stdout)) {
        return Outcome::Sanitizer { tool, line };
    }
    if timed_out {
        return Outcome::Hang {
            limit_secs: limit.as_secs_f64(),
        };
    }
    let Some(status) = status else {
        return Outcome::Hang {
            limit_secs: limit.as_secs_f64(),
        };
    };
    if let Some(signal) = status.signal() {
        return Outcome::Crash {
            signal,
            name: signal_name(signal),
        };
    }
    let code = status.code().unwrap_or(-1);
    // `sh -c 'a; b'` reports a crash of `a` as exit status 128 + signal.
    if let Some((signal, name)) = CRASH_SIGNALS.iter().find(|(s, _)| code == 128 + s) {
        return Outcome::Crash {
            signal: *signal,
            name: format!("{name}, exit status {code} from the shell"),
        };
    }
    if code == 0 {
        Outcome::CleanExit
    } else {
        Outcome::CleanError { code }
    }
}

/// Runs `command` through `sh -c` in its own process group, kills the
/// whole group at `limit`, and classifies the result.
pub async fn run(command: &str, limit: Duration) -> Result<ClientRun, HostileError> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HostileError::Spawn { source })?;
    let pid = child.id();
    let out = child.stdout.take().map(|s| tokio::spawn(keep(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(keep(s)));

    let (status, timed_out) = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => (status.ok(), false),
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            (None, true)
        }
    };
    // Whatever the shell left behind in its group goes too, so that the
    // pipes close and nothing outlives the scenario.
    kill_group(pid);
    let stdout = collect(out).await;
    let stderr = collect(err).await;
    let outcome = classify(status, timed_out, limit, &stdout, &stderr);
    Ok(ClientRun {
        command: command.to_owned(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        stdout_tail: tail(&stdout),
        stderr_tail: tail(&stderr),
    })
}

fn kill_group(pid: Option<u32>) {
    let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group the
    // child leads (`process_group(0)` above); it touches no memory of ours.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

async fn keep<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
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

fn tail(s: &str) -> String {
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

    fn outcome(cmd: &str, limit_ms: u64) -> Outcome {
        rt().block_on(run(cmd, Duration::from_millis(limit_ms)))
            .unwrap()
            .outcome
    }

    #[test]
    fn exits_are_classified() {
        assert_eq!(outcome("true", 5000), Outcome::CleanExit);
        assert_eq!(outcome("exit 3", 5000), Outcome::CleanError { code: 3 });
    }

    #[test]
    fn a_signal_is_a_crash_directly_or_through_the_shell() {
        let direct = outcome("kill -SEGV $$", 5000);
        assert!(
            matches!(direct, Outcome::Crash { signal, .. } if signal == libc::SIGSEGV),
            "{direct:?}"
        );
        let via_shell = outcome("sh -c 'kill -ABRT $$'; exit $?", 5000);
        assert!(
            matches!(via_shell, Outcome::Crash { signal, .. } if signal == libc::SIGABRT),
            "{via_shell:?}"
        );
    }

    #[test]
    fn sanitizer_text_wins_over_the_exit_status() {
        let o = outcome(
            "echo '==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1' >&2; exit 1",
            5000,
        );
        assert!(
            matches!(&o, Outcome::Sanitizer { tool, .. } if tool == "AddressSanitizer"),
            "{o:?}"
        );
        let o = outcome(
            "echo 'x.c:3:5: runtime error: signed integer overflow'",
            5000,
        );
        assert!(
            matches!(&o, Outcome::Sanitizer { tool, .. } if tool == "UndefinedBehaviorSanitizer"),
            "{o:?}"
        );
    }

    #[test]
    fn a_hang_is_killed_with_its_whole_group() {
        let started = Instant::now();
        // The background sleep would keep the pipes open if only the shell died.
        let o = outcome("sleep 30 & sleep 30", 300);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
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
