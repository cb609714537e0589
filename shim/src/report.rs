//! The shim's report: the ledger's violations with symbolised sites, judged
//! for a process that was stopped while running.
//!
//! Every violation the ledger recorded while the target ran is a finding.
//! The audit at the end adds two kinds that need judging, because a client
//! such as `nanomq_cli sub` is stopped by a signal with all its state live:
//! - references still held: listed, grouped by allocation site
//!   (`held_at_stop`), not findings: a running client holds its receive
//!   buffer, its CONNECT, its queued messages;
//! - operations never finished: a finding when the process would hang on
//!   it (a waiter is blocked in `nni_aio_wait` past the operation's own
//!   timeout: nanonng-1578), or when it was begun again while open (nobody
//!   will finish the first one); otherwise listed (`open_at_stop`: a
//!   receive waiting for the next PUBLISH is what a running client does).

use crate::config::Config;
use crate::sites::{self, Resolved};
use crate::tracker::{Counters, OpenOp, Tracker, now_ms};
use mqtls_harness::ledger::{Action, Mode, Stats, Subject, Violation, ViolationKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A waiter blocked this long past an operation's timeout is stuck.
const STUCK_GRACE_MS: i64 = 1_000;

/// What the shim writes.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `mqtls-shim`.
    pub tool: &'static str,
    /// The shim's version.
    pub version: &'static str,
    /// The target program.
    pub program: String,
    /// Its process id.
    pub pid: u32,
    /// What made the report be written: `exit`, `signal 15`, `sanitizer
    /// report`, or `test`.
    pub trigger: String,
    /// The ledger's mode (`full`: histories; `counting`: counts only).
    pub mode: Mode,
    /// The ledger's counts when the report was written.
    pub stats: Stats,
    /// How the mirror kept up, and what it forgave.
    pub counters: Counters,
    /// Violations: each a defect in the target unless explained.
    pub findings: Vec<Finding>,
    /// References held when the report was written, by allocation site.
    pub held_at_stop: Vec<Group>,
    /// Operations open when the report was written, by where they were
    /// begun.
    pub open_at_stop: Vec<Group>,
    /// Distinct call stacks seen.
    pub call_sites: usize,
}

/// One violation as a finding: the ledger's own JSON plus the diagnosis,
/// the timeline and a signature.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// The violation, as the Rust side serialises it.
    #[serde(flatten)]
    pub violation: Violation,
    /// The diagnosis paragraph.
    pub diagnosis: String,
    /// The history, one step a line.
    pub timeline: String,
    /// Stable across runs and builds: the kind and the functions involved
    /// (no line numbers), so that one mistake found by several runs is
    /// counted once.
    pub signature: String,
    /// The functions the signature is made of.
    pub functions: Functions,
}

/// The functions of a finding, by role.
#[derive(Debug, Default, Serialize)]
pub struct Functions {
    /// Where the message was allocated or the operation begun.
    pub origin: Option<String>,
    /// Where it was put somewhere without a reference.
    pub aliased: Vec<String>,
    /// Where it was freed or finished before the offending step.
    pub released: Vec<String>,
    /// The offending step.
    pub at: String,
}

/// Subjects sharing one site.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Allocation site (references) or begin site (operations).
    pub site: String,
    /// How many.
    pub count: usize,
    /// How many of each kind.
    pub kinds: BTreeMap<String, usize>,
    /// The subjects (`msg #12 PUBLISH`), at most ten.
    pub examples: Vec<String>,
}

impl Report {
    /// Builds the report of `tracker` now. `resolve` symbolises a return
    /// address ([`sites::resolve_here`] in the target).
    pub fn build(
        tracker: &Tracker,
        trigger: &str,
        resolve: &dyn Fn(usize) -> sites::Frame,
    ) -> Report {
        Report::build_at(tracker, trigger, resolve, now_ms())
    }

    /// [`Report::build`] as of `now` (the target's monotonic clock, ms),
    /// which decides whether a waiter is stuck past its timeout.
    pub fn build_at(
        tracker: &Tracker,
        trigger: &str,
        resolve: &dyn Fn(usize) -> sites::Frame,
        now: i64,
    ) -> Report {
        tracker.confirm_all_dangling();
        tracker.refresh_kinds();
        let audit = tracker.ledger().audit();
        let resolved = tracker.sites().resolve_all(resolve);
        let labels: HashMap<&'static str, &'static str> = resolved
            .iter()
            .map(|r| (r.placeholder, &*Box::leak(r.label.clone().into_boxed_str())))
            .collect();
        let functions: HashMap<&str, &Resolved> =
            resolved.iter().map(|r| (r.placeholder, r)).collect();
        let open = tracker.open_ops();

        let mut findings = Vec::new();
        let mut held: Vec<Violation> = Vec::new();
        let mut open_at_stop: Vec<Violation> = Vec::new();
        for mut v in audit.violations {
            if let Subject::Msg { serial, kind } = &mut v.subject
                && let Some(k) = tracker.kind_of_serial(*serial)
            {
                *kind = k;
            }
            match v.kind {
                ViolationKind::Leak => {
                    held.push(relabel(v, &labels));
                    continue;
                }
                ViolationKind::OpNeverFinished => {
                    let id = match v.subject {
                        Subject::Op { id, .. } => id,
                        Subject::Msg { .. } => 0,
                    };
                    match hang(tracker, id, open.get(&id), now) {
                        Some(why) => v.detail = format!("{}; {why}", v.detail),
                        None => {
                            open_at_stop.push(relabel(v, &labels));
                            continue;
                        }
                    }
                }
                _ => {}
            }
            let (signature, functions) = signature(&v, &functions);
            let v = relabel(v, &labels);
            findings.push(Finding {
                diagnosis: v.diagnosis(),
                timeline: v.timeline(),
                signature,
                functions,
                violation: v,
            });
        }
        let mut counters = tracker.counters();
        counters.finished_unbegun = relabel_keys(counters.finished_unbegun, &labels);
        counters.scheduled_unbegun = relabel_keys(counters.scheduled_unbegun, &labels);
        Report {
            tool: "mqtls-shim",
            version: env!("CARGO_PKG_VERSION"),
            program: program(),
            pid: std::process::id(),
            trigger: trigger.to_string(),
            mode: tracker.ledger().mode(),
            stats: audit.stats,
            counters,
            findings,
            held_at_stop: group(&held),
            open_at_stop: group(&open_at_stop),
            call_sites: resolved.len(),
        }
    }

    /// One line for stderr.
    pub fn summary(&self) -> String {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for f in &self.findings {
            *kinds.entry(f.violation.kind.to_string()).or_insert(0) += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let held: usize = self.held_at_stop.iter().map(|g| g.count).sum();
        let open: usize = self.open_at_stop.iter().map(|g| g.count).sum();
        format!(
            "mqtls-shim ({}): {} finding(s){}; {} message(s) still referenced, {} operation(s) open; {} message(s), {} aio(s) seen",
            self.trigger,
            self.findings.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            held,
            open,
            self.counters.messages,
            self.counters.aios,
        )
    }

    /// The findings' timelines as an HTML page (the Rust side's page).
    pub fn html(&self) -> String {
        let named: Vec<(String, Violation)> = self
            .findings
            .iter()
            .map(|f| (f.signature.clone(), f.violation.clone()))
            .collect();
        mqtls_harness::report::timeline::html(
            &format!("mqtls-shim: {} ({})", self.program, self.trigger),
            &named,
        )
    }
}

/// Why an open operation is a hang, if it is one.
fn hang(tracker: &Tracker, id: u64, open: Option<&OpenOp>, now: i64) -> Option<String> {
    if let Some(site) = tracker.abandoned_site(id) {
        return Some(format!(
            "its aio was begun again at `{site}` while it was open: nobody will finish it"
        ));
    }
    let o = open?;
    if o.waiters == 0 || o.timeout_ms <= 0 {
        return None;
    }
    let late = now - (o.begun_ms + o.timeout_ms);
    if late < STUCK_GRACE_MS {
        return None;
    }
    let armed = match o.deadline_ms {
        Some(_) => format!(
            "its {} ms timeout passed {late} ms ago and the expiry's cancel did not finish it",
            o.timeout_ms
        ),
        None => format!(
            "its {} ms timeout was never armed (not scheduled with a cancel function) and passed {late} ms ago",
            o.timeout_ms
        ),
    };
    Some(format!(
        "{armed}; {} waiter(s) blocked in nni_aio_wait (aio allocated at `{}`)",
        o.waiters, o.aio_site
    ))
}

/// The signature and functions of a violation, from its placeholders.
fn signature(v: &Violation, functions: &HashMap<&str, &Resolved>) -> (String, Functions) {
    let name = |site: &str| -> String {
        functions
            .get(site)
            .map_or_else(|| site.to_string(), |r| r.function.clone())
    };
    let mut f = Functions {
        at: name(v.at.site),
        ..Functions::default()
    };
    for e in &v.history {
        match &e.action {
            Action::Alloc | Action::OpBegin if f.origin.is_none() => f.origin = Some(name(e.site)),
            Action::Alias => push_once(&mut f.aliased, name(e.site)),
            Action::Free | Action::OpFinish { .. } if e.seq < v.at.seq => {
                push_once(&mut f.released, name(e.site))
            }
            _ => {}
        }
    }
    let subject_kind = match v.subject {
        Subject::Msg { kind, .. } => kind.to_string(),
        Subject::Op { kind, .. } => kind.to_string(),
    };
    let mut parts = vec![format!("{} {subject_kind}", v.kind)];
    if let Some(o) = &f.origin {
        parts.push(format!("from {o}"));
    }
    if !f.aliased.is_empty() {
        parts.push(format!("aliased in {}", f.aliased.join(", ")));
    }
    if !f.released.is_empty() {
        parts.push(format!("released in {}", f.released.join(", ")));
    }
    parts.push(format!("at {}", f.at));
    (parts.join("; "), f)
}

fn push_once(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// The violation with every placeholder site replaced by its label.
fn relabel(mut v: Violation, labels: &HashMap<&'static str, &'static str>) -> Violation {
    let label = |s: &'static str| labels.get(s).copied().unwrap_or(s);
    v.at.site = label(v.at.site);
    for e in &mut v.history {
        e.site = label(e.site);
    }
    v.detail = sites::relabel_text(&v.detail, labels);
    v
}

fn relabel_keys(
    m: BTreeMap<String, u64>,
    labels: &HashMap<&'static str, &'static str>,
) -> BTreeMap<String, u64> {
    m.into_iter()
        .map(|(k, n)| (sites::relabel_text(&k, labels), n))
        .collect()
}

/// Groups subjects by their first site (allocation or begin).
fn group(vs: &[Violation]) -> Vec<Group> {
    let mut by_site: BTreeMap<String, Group> = BTreeMap::new();
    for v in vs {
        let site = v
            .history
            .iter()
            .find(|e| matches!(e.action, Action::Alloc | Action::OpBegin))
            .map_or("unknown (counting mode)", |e| e.site)
            .to_string();
        let g = by_site.entry(site.clone()).or_insert_with(|| Group {
            site,
            count: 0,
            kinds: BTreeMap::new(),
            examples: Vec::new(),
        });
        g.count += 1;
        let kind = match v.subject {
            Subject::Msg { kind, .. } => kind.to_string(),
            Subject::Op { kind, .. } => kind.to_string(),
        };
        *g.kinds.entry(kind).or_insert(0) += 1;
        if g.examples.len() < 10 {
            g.examples.push(v.subject.to_string());
        }
    }
    let mut groups: Vec<Group> = by_site.into_values().collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.site.cmp(&b.site)));
    groups
}

fn program() -> String {
    std::env::args().next().unwrap_or_else(|| "?".into())
}

/// Writes `report` where `cfg` says (atomically: a reader never sees half a
/// report) and its summary line on stderr.
pub fn write(cfg: &Config, report: &Report) {
    let mut line = report.summary();
    if let Some(path) = &cfg.report {
        match write_files(path, report) {
            Ok(()) => line.push_str(&format!("; report in {}", path.display())),
            Err(e) => line.push_str(&format!("; could not write {}: {e}", path.display())),
        }
    } else {
        for f in &report.findings {
            line.push_str(&format!("\n  {}", f.diagnosis));
        }
        if !report.findings.is_empty() {
            line.push_str("\n  (set MQTLS_SHIM_REPORT=FILE for the histories)");
        }
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn write_files(path: &Path, report: &Report) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    write_atomic(path, &json)?;
    write_atomic(&path.with_extension("html"), report.html().as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
