//! How a client under test fared in a scenario, judged against what a
//! correct client does, and the findings of the run.
//!
//! After a scenario misbehaves, the hostile broker serves every later
//! connection as a plain broker and delivers one message on the client's
//! topic. A correct client either reconnects, resubscribes and receives it
//! ([`Outcome::Recovered`]), or exits with an error ([`Outcome::GaveUp`]):
//! both pass. A client that does neither within the limit is
//! [`Outcome::Stuck`] (its waiter hangs: the nanonng-1578 class), one that
//! dies is [`Outcome::Crashed`]; both are findings, and so is every
//! sanitizer report, leak and broken protocol rule, whatever the outcome
//! (a client can recover and still leak).

use super::finding::{Finding, FindingKind, FrameFilter, Signature};
use super::runner::{CRASH_SIGNALS, ClientRun, Exit, StopReason};
use super::sanitizer;
use super::scenario::Scenario;
use super::stuck;
use serde::{Deserialize, Serialize};

/// LeakSanitizer's exit status when it found leaks at exit.
const LSAN_EXIT: i32 = 23;

/// How the client ended, judged against a correct client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// It received the message of the plain broker after the misbehaviour
    /// (and was then stopped, or exited on its own). A pass.
    Recovered,
    /// It exited by itself without crashing and without the message: it
    /// noticed the problem and said so. A pass.
    GaveUp {
        /// Its exit status.
        code: i32,
    },
    /// It neither recovered nor exited within the limit. A finding.
    Stuck {
        /// The limit in seconds.
        limit_secs: u64,
    },
    /// It died: of a signal it did not ask for, or aborted by a sanitizer.
    /// The sanitizer report, when there is one, is the finding; a crash
    /// without one is a finding of its own.
    Crashed {
        /// How, e.g. `SIGSEGV` or `AddressSanitizer, exit status 1`.
        how: String,
    },
}

impl Outcome {
    /// The label of tables: `RECOVERED`, `GAVE UP`, `STUCK`, `CRASHED`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Recovered => "RECOVERED",
            Outcome::GaveUp { .. } => "GAVE UP",
            Outcome::Stuck { .. } => "STUCK",
            Outcome::Crashed { .. } => "CRASHED",
        }
    }

    /// The label with its detail: `GAVE UP (exit 1)`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Recovered => "RECOVERED".to_owned(),
            Outcome::GaveUp { code } if *code == LSAN_EXIT => {
                format!("GAVE UP (exit {code}: LeakSanitizer found leaks at exit)")
            }
            Outcome::GaveUp { code } => format!("GAVE UP (exit {code})"),
            Outcome::Stuck { limit_secs } => format!("STUCK (stopped after {limit_secs} s)"),
            Outcome::Crashed { how } => format!("CRASHED ({how})"),
        }
    }

    /// True for the outcomes a correct client has.
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Recovered | Outcome::GaveUp { .. })
    }
}

/// What one run of the client came to.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// How it ended.
    pub outcome: Outcome,
    /// Everything it did that a correct client never does.
    pub findings: Vec<Finding>,
}

/// Judges `run`: `delivered` says whether the plain broker's message
/// reached the client, `violations` are the protocol rules it broke on the
/// wire, `limit` the time limit it had.
pub fn judge(
    scenario: Scenario,
    run: &ClientRun,
    delivered: bool,
    violations: Vec<Finding>,
    limit: std::time::Duration,
    filter: &FrameFilter,
) -> Judgement {
    let mut findings = sanitizer::findings(&run.stderr, filter);
    findings.extend(sanitizer::findings(&run.stdout, filter));
    // A sanitizer that halts the program on its first error (ASan, TSan
    // with halt_on_error, MSan) explains a non-zero exit; UBSan reports and
    // leaks do not.
    let halting = findings.iter().find(|f| {
        f.kind == FindingKind::Sanitizer
            && f.tool.as_deref() != Some("UndefinedBehaviorSanitizer")
            && f.tool.as_deref() != Some("mqtls ledger")
    });
    let outcome = match (run.stopped, &run.exit) {
        (Some(StopReason::Recovered), _) => Outcome::Recovered,
        (Some(StopReason::TimeLimit), _) if delivered => Outcome::Recovered,
        (Some(StopReason::TimeLimit), _) => Outcome::Stuck {
            limit_secs: limit.as_secs(),
        },
        (None, Exit::Signaled { name, .. }) => Outcome::Crashed { how: name.clone() },
        (None, Exit::Exited { code }) => {
            let via_shell = CRASH_SIGNALS.iter().find(|(s, _)| *code == 128 + s);
            match (via_shell, halting) {
                (Some((_, name)), _) => Outcome::Crashed {
                    how: format!("{name}, exit status {code} from the shell"),
                },
                (None, Some(f)) if *code != 0 => Outcome::Crashed {
                    how: format!(
                        "{}, exit status {code}",
                        f.tool.as_deref().unwrap_or("sanitizer")
                    ),
                },
                (None, _) if delivered => {
                    if *code == 0 || *code == LSAN_EXIT {
                        Outcome::Recovered
                    } else {
                        Outcome::GaveUp { code: *code }
                    }
                }
                (None, _) => Outcome::GaveUp { code: *code },
            }
        }
        (None, Exit::Unknown) => Outcome::Crashed {
            how: "exit status unknown".to_owned(),
        },
    };
    match &outcome {
        Outcome::Stuck { limit_secs } => findings.push(stuck_finding(
            scenario,
            *limit_secs,
            run,
            filter,
            format!(
                "$ {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}{}",
                run.command,
                run.stdout_tail,
                run.stderr_tail,
                if run.stuck_evidence.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n--- when stuck (--on-stuck) ---\n{}",
                        run.stuck_evidence.trim_end()
                    )
                }
            ),
        )),
        Outcome::Crashed { how } if halting.is_none() => findings.push(Finding::plain(
            FindingKind::Crash,
            format!("{} after {scenario}", how.split(',').next().unwrap_or(how)),
            format!("died ({how}) after {scenario}, without a sanitizer report"),
            format!(
                "$ {}\n--- stderr (end) ---\n{}",
                run.command, run.stderr_tail
            ),
        )),
        _ => {}
    }
    findings.extend(violations);
    Judgement { outcome, findings }
}

/// The STUCK finding: named by where the client's threads wait when the
/// `--on-stuck` evidence holds debugger stacks (the same hang reached by
/// several scenarios is then one finding), else by the scenario.
fn stuck_finding(
    scenario: Scenario,
    limit_secs: u64,
    run: &ClientRun,
    filter: &FrameFilter,
    report: String,
) -> Finding {
    let mut threads = stuck::waiting_threads(&run.stuck_evidence);
    let Some((index, waiter)) = stuck::waiter(&threads, filter, sanitizer::SIGNATURE_FRAMES) else {
        return Finding::plain(
            FindingKind::Stuck,
            format!("stuck after {scenario}"),
            format!(
                "neither recovered nor gave up within {limit_secs} s after {scenario} (a waiter that never wakes?)"
            ),
            report,
        );
    };
    // The waiter first, then the other threads that were waiting.
    let first = threads.remove(index);
    threads.insert(0, first);
    let others = stuck::describe(
        threads.get(1..).unwrap_or_default(),
        filter,
        sanitizer::SIGNATURE_FRAMES,
    );
    let mut f = Finding::plain(
        FindingKind::Stuck,
        "stuck",
        format!(
            "stuck waiting in {waiter}{} (after {scenario}, stopped at {limit_secs} s)",
            if others.is_empty() {
                String::new()
            } else {
                format!("; also waiting: {}", others.join("; "))
            }
        ),
        report,
    );
    f.signature = Signature::from_parts(FindingKind::Stuck, "stuck", &[("waiting", vec![waiter])]);
    f.stacks = threads;
    f
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(exit: Exit, stopped: Option<StopReason>, stderr: &str) -> ClientRun {
        ClientRun {
            command: "client".into(),
            exit,
            stopped,
            killed: false,
            seconds: 1.0,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            stderr: stderr.into(),
            stdout: String::new(),
            stuck_evidence: String::new(),
        }
    }

    fn outcome(r: &ClientRun, delivered: bool) -> (Outcome, Vec<FindingKind>) {
        let j = judge(
            Scenario::CloseBeforeSuback,
            r,
            delivered,
            Vec::new(),
            Duration::from_secs(10),
            &FrameFilter::default(),
        );
        (j.outcome, j.findings.iter().map(|f| f.kind).collect())
    }

    const ASAN: &str = "==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n    #0 0x1 in f a.c:1\nSUMMARY: AddressSanitizer: heap-use-after-free a.c:1 in f\n";
    const LSAN: &str = "==1==ERROR: LeakSanitizer: detected memory leaks\n\nDirect leak of 8 byte(s) in 1 object(s) allocated from:\n    #0 0x1 in malloc x.c:1\n    #1 0x2 in g b.c:2\n\nSUMMARY: AddressSanitizer: 8 byte(s) leaked in 1 allocation(s).\n";

    #[test]
    fn recovering_and_giving_up_pass_stuck_and_crashed_are_findings() {
        let term = Exit::Signaled {
            signal: libc::SIGTERM,
            name: "SIGTERM".into(),
        };
        assert_eq!(
            outcome(&run(term.clone(), Some(StopReason::Recovered), ""), true),
            (Outcome::Recovered, vec![])
        );
        assert_eq!(
            outcome(&run(Exit::Exited { code: 0 }, None, ""), true),
            (Outcome::Recovered, vec![])
        );
        assert_eq!(
            outcome(&run(Exit::Exited { code: 3 }, None, ""), false),
            (Outcome::GaveUp { code: 3 }, vec![])
        );
        assert_eq!(
            outcome(&run(term.clone(), Some(StopReason::TimeLimit), ""), false),
            (Outcome::Stuck { limit_secs: 10 }, vec![FindingKind::Stuck])
        );
        let segv = Exit::Signaled {
            signal: libc::SIGSEGV,
            name: "SIGSEGV".into(),
        };
        assert_eq!(
            outcome(&run(segv, None, ""), false),
            (
                Outcome::Crashed {
                    how: "SIGSEGV".into()
                },
                vec![FindingKind::Crash]
            )
        );
        assert!(!Outcome::Stuck { limit_secs: 1 }.is_pass());
        assert!(Outcome::GaveUp { code: 1 }.is_pass());
    }

    #[test]
    fn a_sanitizer_abort_is_a_crash_explained_by_its_report() {
        let (o, kinds) = outcome(&run(Exit::Exited { code: 1 }, None, ASAN), false);
        assert_eq!(
            o,
            Outcome::Crashed {
                how: "AddressSanitizer, exit status 1".into()
            }
        );
        assert_eq!(kinds, vec![FindingKind::Sanitizer]);
        // Through the shell's 128 + signal status too.
        let (o, _) = outcome(&run(Exit::Exited { code: 134 }, None, ""), false);
        assert!(matches!(o, Outcome::Crashed { how } if how.starts_with("SIGABRT")));
    }

    #[test]
    fn a_stuck_client_is_named_by_where_it_waits_when_its_stacks_are_known() {
        let term = Exit::Signaled {
            signal: libc::SIGTERM,
            name: "SIGTERM".into(),
        };
        let mut r = run(term, Some(StopReason::TimeLimit), "");
        let plain = judge(
            Scenario::CutMidRecord,
            &r,
            false,
            Vec::new(),
            Duration::from_secs(10),
            &FrameFilter::default(),
        );
        assert_eq!(
            plain.findings[0].signature.text,
            "STUCK stuck after cut-mid-record"
        );
        r.stuck_evidence = "Thread 2 (Thread 0x1 (LWP 7) \"nng:task\"):\n\
            #0  __futex_abstimed_wait_common64 (private=0) at ./nptl/futex-internal.c:57\n\
            #1  0x1 in nni_cv_wait (cv=0x2) at /n/thread.c:51\n\
            #2  0x2 in nng_aio_wait (aio=0x3) at /n/nng.c:2105\n\
            #3  0x3 in nng_mqtt_subscribe (sock=...) at /n/mqtt_public.c:1031\n\
            #4  0x4 in connect_cb (p=...) at /c/client.c:1681\n"
            .into();
        let named = judge(
            Scenario::CutMidRecord,
            &r,
            false,
            Vec::new(),
            Duration::from_secs(10),
            &FrameFilter::default(),
        );
        let f = &named.findings[0];
        assert_eq!(
            f.signature.text,
            "STUCK stuck | waiting: nng_mqtt_subscribe > connect_cb"
        );
        assert!(f.title.contains("after cut-mid-record"), "{}", f.title);
        assert_eq!(f.stacks.len(), 1);
    }

    #[test]
    fn a_leak_on_the_stop_signal_does_not_spoil_a_recovery() {
        let term = Exit::Signaled {
            signal: libc::SIGTERM,
            name: "SIGTERM".into(),
        };
        assert_eq!(
            outcome(&run(term, Some(StopReason::Recovered), LSAN), true),
            (Outcome::Recovered, vec![FindingKind::Leak])
        );
        assert_eq!(
            outcome(&run(Exit::Exited { code: 23 }, None, LSAN), true),
            (Outcome::Recovered, vec![FindingKind::Leak])
        );
    }
}
