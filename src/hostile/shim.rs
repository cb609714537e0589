//! The ledger inside the target: findings from the report `mqtls-shim`
//! writes when it is linked into the client or broker under test
//! (`docs/shim.md`, `targets/nanomq/build.sh --variant shim`).
//!
//! The hostile peers set `MQTLS_SHIM_REPORT` for every process they start;
//! a target built without the shim ignores it and writes nothing. After
//! the run the report's findings become findings of the run, next to the
//! sanitizer's: the ledger's violation kind is the bug type, the functions
//! of its call sites (where the message was allocated, put in a slot
//! without a reference, freed, and the offending step) make the signature,
//! so the same ownership mistake found by several scenarios, repeats or
//! builds is counted once. Findings the target's suppressions file explains
//! (`MQTLS_SHIM_SUPPRESSIONS`) stay in the shim's report and out of the
//! verdict.

use super::HostileError;
use super::finding::{Finding, FindingKind, Frame, Signature, Stack, StackRole};
use crate::report::shim::{ShimFinding, ShimReport, ShimSite};
use std::path::{Path, PathBuf};

/// The environment variable that names the shim's report file.
pub const REPORT_VAR: &str = "MQTLS_SHIM_REPORT";

/// Where each run's shim report goes: one file per run under a directory
/// (kept with the campaign's report: the `.html` timelines are next to
/// each).
#[derive(Debug, Clone)]
pub struct ShimReports {
    dir: PathBuf,
}

impl ShimReports {
    /// Reports under `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ShimReports { dir: dir.into() }
    }

    /// The report file of run `name` (a scenario and its repeat, or
    /// `broker`), emptied of any earlier run's report.
    pub fn prepare(&self, name: &str) -> Result<PathBuf, HostileError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| HostileError::File {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.dir.join(format!("{name}.json"));
        for stale in [path.clone(), path.with_extension("html")] {
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(HostileError::File {
                        path: stale,
                        source,
                    });
                }
            }
        }
        Ok(path)
    }
}

/// `env` plus the variable that sends the shim's report to `path`.
pub fn environment(env: &[(String, String)], path: &Path) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.push((REPORT_VAR.to_owned(), path.display().to_string()));
    env
}

/// The findings of the shim's report at `path`: none when there is no
/// report (a target built without the shim).
pub fn findings(path: &Path) -> Result<Vec<Finding>, HostileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HostileError::File {
                path: path.to_owned(),
                source,
            });
        }
    };
    let report = ShimReport::parse(&text).map_err(|reason| HostileError::ShimReport {
        path: path.to_owned(),
        reason,
    })?;
    Ok(report
        .findings
        .iter()
        .map(|f| finding(f, &report, path))
        .collect())
}

/// One shim finding as a finding of the run.
pub fn finding(f: &ShimFinding, report: &ShimReport, path: &Path) -> Finding {
    // A waiter blocked past its operation's timeout is a hang, named at its
    // sites; every other violation is a memory or lifecycle error.
    let kind = if f.kind == "OpNeverFinished" {
        FindingKind::Stuck
    } else {
        FindingKind::Sanitizer
    };
    let subject_kind = f.subject.rsplit(' ').next().unwrap_or("").to_owned();
    let names =
        |sites: &[ShimSite]| -> Vec<String> { sites.iter().map(|s| s.function.clone()).collect() };
    let parts: Vec<(&str, Vec<String>)> = vec![
        ("subject", vec![subject_kind.clone()]),
        (
            "origin",
            f.sites.origin.iter().map(|s| s.function.clone()).collect(),
        ),
        ("aliased", names(&f.sites.aliased)),
        ("released", names(&f.sites.released)),
        ("armed", names(&f.sites.armed)),
        ("waited", names(&f.sites.waited)),
        (
            "at",
            f.sites.at.iter().map(|s| s.function.clone()).collect(),
        ),
    ];
    let bug_type = format!("ledger {}", f.kind);
    let mut stacks = Vec::new();
    let mut push = |role: StackRole, heading: &str, site: &ShimSite| {
        stacks.push(Stack {
            role,
            heading: format!("{heading} {}", site.label),
            frames: site.frames.iter().map(frame).collect(),
        });
    };
    if let Some(at) = &f.sites.at {
        push(StackRole::Access, "the offending step:", at);
    }
    if let Some(freed) = f.sites.released.first() {
        push(StackRole::Freed, "freed (or finished) before:", freed);
    }
    if let Some(origin) = &f.sites.origin {
        push(StackRole::Allocated, "allocated (or begun):", origin);
    }
    for aliased in &f.sites.aliased {
        push(
            StackRole::Other,
            "put in a slot without a reference:",
            aliased,
        );
    }
    for armed in &f.sites.armed {
        push(StackRole::Other, "armed (its timeout and cancel):", armed);
    }
    for waited in &f.sites.waited {
        push(StackRole::Other, "a waiter blocks here:", waited);
    }
    let at = f.sites.at.as_ref().map_or("?", |s| s.label.as_str());
    let title = match &f.sites.origin {
        Some(o) => format!("{bug_type} ({}) at {at}, from {}", f.subject, o.label),
        None => format!("{bug_type} ({}) at {at}", f.subject),
    };
    Finding {
        kind,
        signature: Signature::from_parts(kind, &bug_type, &parts),
        title,
        tool: Some(crate::report::shim::TOOL.to_owned()),
        bug_type,
        access: None,
        stacks,
        rule: None,
        report: format!(
            "{}\n{}(mqtls-shim report of {} pid {} on {}: {})",
            f.diagnosis,
            f.timeline,
            report.program,
            report.pid,
            report.trigger,
            path.display()
        ),
    }
}

fn frame(f: &crate::report::shim::ShimFrame) -> Frame {
    Frame {
        function: f.function.clone().unwrap_or_else(|| "??".to_owned()),
        location: match (&f.file, f.line) {
            (Some(file), Some(line)) => Some(format!("{file}:{line}")),
            _ => None,
        },
        module: (f.file.is_none()).then(|| f.address.clone()),
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::report::shim::{ShimCounters, ShimFrame, ShimSites};

    fn site(function: &str, file: &str, line: u32) -> ShimSite {
        ShimSite {
            label: format!("{function} ({file}:{line})"),
            function: function.to_owned(),
            frames: vec![ShimFrame {
                function: Some(function.to_owned()),
                file: Some(file.to_owned()),
                line: Some(line),
                address: "0x1".to_owned(),
            }],
        }
    }

    /// The finding of NanoNNG 87253717b on an ordinary subscribe, as the
    /// shim writes it (sites from a real run).
    fn report(serial: u64, line: u32) -> ShimReport {
        ShimReport {
            tool: "mqtls-shim".into(),
            version: "0.1.0".into(),
            program: "nanomq_cli".into(),
            pid: 42,
            trigger: "signal 15".into(),
            mode: "full".into(),
            stats: Default::default(),
            counters: ShimCounters::default(),
            findings: vec![ShimFinding {
                kind: "FreedWhileInSlot".into(),
                subject: format!("msg #{serial} SUBSCRIBE"),
                diagnosis: format!("msg #{serial} SUBSCRIBE, allocated by ..."),
                timeline: "  #58 ...\n".into(),
                signature: String::new(),
                sites: ShimSites {
                    origin: Some(site("nng_mqtt_subscribe", "mqtt_public.c", 966)),
                    aliased: vec![site("mqtt_send_msg", "mqtt_client.c", 454)],
                    released: vec![site("mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", line)],
                    at: Some(site("mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", line)),
                    armed: Vec::new(),
                    waited: Vec::new(),
                },
                violation: serde_json::Value::Null,
            }],
            suppressed: Vec::new(),
            notes: Vec::new(),
            held_at_stop: Vec::new(),
            open_at_stop: Vec::new(),
            call_sites: 10,
        }
    }

    #[test]
    fn a_shim_finding_keeps_its_evidence_and_a_signature_without_serials_or_lines() {
        let r = report(4, 515);
        let f = finding(&r.findings[0], &r, Path::new("/tmp/r.json"));
        assert_eq!(f.kind, FindingKind::Sanitizer);
        assert_eq!(f.tool.as_deref(), Some("mqtls-shim"));
        assert_eq!(f.bug_type, "ledger FreedWhileInSlot");
        assert_eq!(
            f.signature.text,
            "SANITIZER ledger FreedWhileInSlot | subject: SUBSCRIBE | origin: nng_mqtt_subscribe \
             | aliased: mqtt_send_msg | released: mqtts_tcptran_pipe_send_cb | at: mqtts_tcptran_pipe_send_cb"
        );
        assert!(
            f.title
                .contains("at mqtts_tcptran_pipe_send_cb (mqtt_tls.c:515)"),
            "{}",
            f.title
        );
        assert_eq!(
            f.stack(StackRole::Freed)
                .map(|s| s.frames[0].function.as_str()),
            Some("mqtts_tcptran_pipe_send_cb")
        );
        assert_eq!(
            f.stack(StackRole::Allocated)
                .and_then(|s| s.frames[0].location.as_deref()),
            Some("mqtt_public.c:966")
        );
        assert!(
            f.report.contains("nanomq_cli pid 42 on signal 15"),
            "{}",
            f.report
        );
        // Another run (serial 9) of another build (the line moved): one bug.
        let other = report(9, 530);
        let g = finding(&other.findings[0], &other, Path::new("/tmp/s.json"));
        assert_eq!(f.signature, g.signature);
    }

    #[test]
    fn reports_are_read_back_and_a_missing_one_means_no_shim() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ShimReports::new(dir.path().join("shim"));
        let path = reports.prepare("close-before-suback-1").unwrap();
        assert!(findings(&path).unwrap().is_empty());
        std::fs::write(&path, serde_json::to_string(&report(4, 515)).unwrap()).unwrap();
        let found = findings(&path).unwrap();
        assert_eq!(found.len(), 1);
        // The next run starts without the last one's report.
        let again = reports.prepare("close-before-suback-1").unwrap();
        assert!(findings(&again).unwrap().is_empty());
        std::fs::write(&again, "{\"tool\": \"something else\"}").unwrap();
        let err = findings(&again).unwrap_err().to_string();
        assert!(err.contains("close-before-suback-1.json"), "{err}");
        let env = environment(&[("A".into(), "1".into())], &path);
        assert_eq!(env[1].0, "MQTLS_SHIM_REPORT");
    }

    /// The shim's reporter thread waits for a stop signal all the target's
    /// life; the stuck analysis must take it for the idle worker it is. It
    /// once named a stuck `nanomq_cli` (recent, suback-bad-codes) after it,
    /// `STUCK stuck | waiting: reporter`, instead of its main thread.
    #[test]
    fn the_shims_reporter_thread_is_idle_to_the_stuck_analysis() {
        use super::super::finding::FrameFilter;
        use super::super::stuck::{waiter, waiting_threads};
        let wraps = include_str!("../../shim/c/wraps.c");
        assert!(wraps.contains("\nmqtls_shim_reporter_thread(void *arg)\n"));
        // From that run's `thread apply all bt`, the reporter renamed.
        let bt = r#"Thread 3 (Thread 0x7f3c9a7fe6c0 (LWP 21595) "mqtls-shim"):
#0  __GI___libc_read (nbytes=1, buf=0x7f3c9a7fd9ff, fd=7) at ../sysdeps/unix/sysv/linux/read.c:26
#1  __GI___libc_read (fd=7, buf=0x7f3c9a7fd9ff, nbytes=1) at ../sysdeps/unix/sysv/linux/read.c:24
#2  0x00007f3c9da4bfef in __interceptor_read (fd=<optimized out>, ptr=0x7f3c9a7fd9ff, count=<optimized out>) at ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:1024
#3  0x0000564454ce4d24 in mqtls_shim_reporter_thread (arg=<optimized out>) at c/wraps.c:482
#4  0x00007f3c9d0a71f5 in start_thread (arg=<optimized out>) at ./nptl/pthread_create.c:442
#5  0x00007f3c9d1278ec in clone3 () at ../sysdeps/unix/sysv/linux/x86_64/clone3.S:81

Thread 1 (Thread 0x7f3c9d83efc0 (LWP 21593) "nanomq_cli"):
#0  0x00007f3c9d0ed545 in __GI___clock_nanosleep (clock_id=clock_id@entry=0, flags=flags@entry=0, req=0x7ffd349133d0, rem=0x7ffd349133d0) at ../sysdeps/unix/sysv/linux/clock_nanosleep.c:48
#1  0x00007f3c9d0f1e53 in __GI___nanosleep (req=<optimized out>, rem=<optimized out>) at ../sysdeps/unix/sysv/linux/nanosleep.c:25
#2  0x0000564454a86f5d in nni_msleep (ms=1000) at /src/nng/src/platform/posix/posix_clock.c:99
#3  0x0000564454a33328 in nng_msleep (dur=1000) at /src/nng/src/nng.c:2688
#4  0x0000564454a0567f in client (argc=11, argv=0x7ffd34913638, type=SUB) at /src/nanomq_cli/client.c:1908
#5  0x0000564454a056d7 in subscribe_start (argc=11, argv=0x7ffd34913638) at /src/nanomq_cli/client.c:1946
#6  0x0000564454a07039 in main (argc=11, argv=0x7ffd34913638) at /src/nanomq_cli/main.c:120
"#;
        let threads = waiting_threads(bt);
        assert_eq!(threads.len(), 1, "{threads:#?}");
        assert!(threads[0].heading.starts_with("Thread 1 "));
        let (_, names) = waiter(&threads, &FrameFilter::default(), 2).unwrap();
        assert_eq!(names, "client > subscribe_start");
        // The name it had before would have been taken for the waiter.
        let old = bt.replace("mqtls_shim_reporter_thread", "reporter");
        let (_, names) = waiter(&waiting_threads(&old), &FrameFilter::default(), 2).unwrap();
        assert_eq!(names, "reporter");
    }
}
