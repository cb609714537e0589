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
use crate::tracker::{OpenOp, Tracker, now_ms};
use mqtls_harness::ledger::{Action, Subject, Violation, ViolationKind};
use mqtls_harness::report::shim::{
    ShimFinding, ShimGroup, ShimReport, ShimSite, ShimSites, ShimSuppressed, TOOL,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A waiter blocked this long past an operation's timeout is stuck.
const STUCK_GRACE_MS: i64 = 1_000;

/// The report of one target process, with the violations behind its
/// findings (for the timeline page).
#[derive(Debug)]
pub struct Report {
    /// What is written as JSON.
    pub shim: ShimReport,
    /// The findings' violations, sites resolved.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Builds the report of `tracker` now. `resolve` symbolises a return
    /// address ([`sites::resolve_here`] in the target).
    pub fn build(
        tracker: &Tracker,
        trigger: &str,
        resolve: &dyn Fn(usize) -> sites::Frame,
        cfg: &Config,
    ) -> Report {
        Report::build_at(tracker, trigger, resolve, cfg, now_ms())
    }

    /// [`Report::build`] as of `now` (the target's monotonic clock, ms),
    /// which decides whether a waiter is stuck past its timeout.
    pub fn build_at(
        tracker: &Tracker,
        trigger: &str,
        resolve: &dyn Fn(usize) -> sites::Frame,
        cfg: &Config,
        now: i64,
    ) -> Report {
        tracker.confirm_all_dangling();
        tracker.refresh_kinds();
        let audit = tracker.ledger().audit();
        let open = tracker.open_ops();
        // Judged first: a hang's explanation names sites that must be
        // resolved with the rest.
        let judged: Vec<(Violation, Class)> = audit
            .violations
            .into_iter()
            .map(|mut v| {
                if let Subject::Msg { serial, kind } = &mut v.subject
                    && let Some(k) = tracker.kind_of_serial(*serial)
                {
                    *kind = k;
                }
                let class = match v.kind {
                    ViolationKind::Leak => Class::Held,
                    ViolationKind::OpNeverFinished => {
                        let id = match v.subject {
                            Subject::Op { id, .. } => id,
                            Subject::Msg { .. } => 0,
                        };
                        match hang(tracker, id, open.get(&id), now) {
                            Some(why) => {
                                v.detail = format!("{}; {why}", v.detail);
                                Class::Finding
                            }
                            None => Class::Open,
                        }
                    }
                    _ => Class::Finding,
                };
                (v, class)
            })
            .collect();
        let mut counters = tracker.counters();
        let resolved = {
            let mut texts: Vec<&str> = Vec::new();
            for (v, _) in &judged {
                texts.push(v.at.site);
                texts.push(&v.detail);
                texts.extend(v.history.iter().map(|e| e.site));
            }
            texts.extend(counters.finished_unbegun.keys().map(String::as_str));
            texts.extend(counters.scheduled_unbegun.keys().map(String::as_str));
            tracker.sites().resolve_in(texts, resolve)
        };
        let labels: HashMap<&'static str, &'static str> =
            resolved.iter().map(|r| (r.placeholder, r.label)).collect();
        let by_placeholder: HashMap<&str, &Resolved> =
            resolved.iter().map(|r| (r.placeholder, r)).collect();

        let mut findings = Vec::new();
        let mut suppressed = Vec::new();
        let mut violations = Vec::new();
        let mut held: Vec<Violation> = Vec::new();
        let mut open_at_stop: Vec<Violation> = Vec::new();
        for (v, class) in judged {
            match class {
                Class::Held => {
                    held.push(relabel(v, &labels));
                    continue;
                }
                Class::Open => {
                    open_at_stop.push(relabel(v, &labels));
                    continue;
                }
                Class::Finding => {}
            }
            let sites = sites_of(&v, &by_placeholder);
            let v = relabel(v, &labels);
            let finding = ShimFinding {
                kind: v.kind.to_string(),
                subject: v.subject.to_string(),
                diagnosis: v.diagnosis(),
                timeline: v.timeline(),
                signature: signature(&v, &sites),
                sites,
                violation: serde_json::to_value(&v).unwrap_or_default(),
            };
            match cfg.suppressions.matching(&finding) {
                Some(rule) => suppressed.push(ShimSuppressed {
                    rule: rule.text.clone(),
                    reason: rule.reason.clone(),
                    finding,
                }),
                None => {
                    findings.push(finding);
                    violations.push(v);
                }
            }
        }
        counters.finished_unbegun = relabel_keys(counters.finished_unbegun, &labels);
        counters.scheduled_unbegun = relabel_keys(counters.scheduled_unbegun, &labels);
        let mode = serde_json::to_value(tracker.ledger().mode())
            .ok()
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_default();
        Report {
            shim: ShimReport {
                tool: TOOL.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                program: program(),
                pid: std::process::id(),
                trigger: trigger.to_string(),
                mode,
                stats: audit.stats,
                counters,
                findings,
                suppressed,
                notes: cfg.notes.clone(),
                held_at_stop: group(&held),
                open_at_stop: group(&open_at_stop),
                call_sites: tracker.sites().len(),
            },
            violations,
        }
    }

    /// The findings' timelines as an HTML page (the Rust side's page).
    pub fn html(&self) -> String {
        let named: Vec<(String, Violation)> = self
            .shim
            .findings
            .iter()
            .zip(&self.violations)
            .map(|(f, v)| (f.signature.clone(), v.clone()))
            .collect();
        mqtls_harness::report::timeline::html(
            &format!("mqtls-shim: {} ({})", self.shim.program, self.shim.trigger),
            &named,
        )
    }
}

/// What the end of the run makes of an audit finding.
enum Class {
    /// A violation of the target's.
    Finding,
    /// A reference still held: listed by allocation site.
    Held,
    /// An operation still open, no hang: listed by begin site.
    Open,
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

/// The call sites of a violation by role, from its placeholders.
fn sites_of(v: &Violation, resolved: &HashMap<&str, &Resolved>) -> ShimSites {
    let site = |placeholder: &str| -> ShimSite {
        match resolved.get(placeholder) {
            Some(r) => ShimSite {
                label: r.label.to_string(),
                function: r.function.clone(),
                frames: r.frames.clone(),
            },
            None => ShimSite {
                label: placeholder.to_string(),
                function: placeholder.to_string(),
                frames: Vec::new(),
            },
        }
    };
    let mut s = ShimSites {
        at: Some(site(v.at.site)),
        ..ShimSites::default()
    };
    for e in &v.history {
        match &e.action {
            Action::Alloc | Action::OpBegin if s.origin.is_none() => s.origin = Some(site(e.site)),
            Action::Alias => push_once(&mut s.aliased, site(e.site)),
            Action::Free | Action::OpFinish { .. } if e.seq < v.at.seq => {
                push_once(&mut s.released, site(e.site))
            }
            Action::OpTouch => push_once(&mut s.armed, site(e.site)),
            Action::OpWait => push_once(&mut s.waited, site(e.site)),
            _ => {}
        }
    }
    s
}

/// The kind, the subject's kind and the functions by role: no line
/// numbers, no serials.
fn signature(v: &Violation, s: &ShimSites) -> String {
    let subject_kind = match v.subject {
        Subject::Msg { kind, .. } => kind.to_string(),
        Subject::Op { kind, .. } => kind.to_string(),
    };
    let names = |sites: &[ShimSite]| -> String {
        sites
            .iter()
            .map(|s| s.function.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = vec![format!("{} {subject_kind}", v.kind)];
    if let Some(o) = &s.origin {
        parts.push(format!("from {}", o.function));
    }
    if !s.aliased.is_empty() {
        parts.push(format!("aliased in {}", names(&s.aliased)));
    }
    if !s.released.is_empty() {
        parts.push(format!("released in {}", names(&s.released)));
    }
    if !s.armed.is_empty() {
        parts.push(format!("armed in {}", names(&s.armed)));
    }
    if !s.waited.is_empty() {
        parts.push(format!("waited in {}", names(&s.waited)));
    }
    if let Some(at) = &s.at {
        parts.push(format!("at {}", at.function));
    }
    parts.join("; ")
}

fn push_once(v: &mut Vec<ShimSite>, s: ShimSite) {
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
fn group(vs: &[Violation]) -> Vec<ShimGroup> {
    let mut by_site: BTreeMap<String, ShimGroup> = BTreeMap::new();
    for v in vs {
        let site = v
            .history
            .iter()
            .find(|e| matches!(e.action, Action::Alloc | Action::OpBegin))
            .map_or("unknown (counting mode)", |e| e.site)
            .to_string();
        let g = by_site.entry(site.clone()).or_insert_with(|| ShimGroup {
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
    let mut groups: Vec<ShimGroup> = by_site.into_values().collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.site.cmp(&b.site)));
    groups
}

fn program() -> String {
    std::env::args().next().unwrap_or_else(|| "?".into())
}

/// Writes `report` where `cfg` says (atomically: a reader never sees half a
/// report) and its summary line on stderr.
pub fn write(cfg: &Config, report: &Report) {
    let mut line = report.shim.summary();
    if let Some(path) = &cfg.report {
        match write_files(path, report) {
            Ok(()) => line.push_str(&format!("; report in {}", path.display())),
            Err(e) => line.push_str(&format!("; could not write {}: {e}", path.display())),
        }
    } else {
        for f in &report.shim.findings {
            line.push_str(&format!("\n  {}", f.diagnosis));
        }
        if !report.shim.findings.is_empty() {
            line.push_str("\n  (set MQTLS_SHIM_REPORT=FILE for the histories)");
        }
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn write_files(path: &Path, report: &Report) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(&report.shim).map_err(std::io::Error::other)?;
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
