//! `mqtls check`: the main job.
//!
//! It runs the ledger self-checks (a clean multi-threaded workload that must
//! audit clean, and every violation kind provoked on purpose, which must be
//! reported as that kind), then the end-to-end TLS scenarios of [`crate::e2e`]:
//! a PKI generated into a temporary directory, the reference broker on an
//! ephemeral loopback port, its clients, and the shared ledger audited after
//! each scenario. Then the detection matrix: every fault of the zoo against
//! every run-time engine (and every engine with all faults off), written to
//! detection.md, detection.svg, detection.json and violations.html.

use super::CliError;
use crate::e2e;
use crate::faults::Fault;
use crate::faults::FaultSet;
use crate::ledger::{self, Ledger, Mode, MsgKind, OpKind, Outcome, ViolationKind};
use crate::report::detection;
use crate::report::{Section, Summary};
use crate::sync::{Arc, thread};
use crate::zoo::matrix::{Matrix, Verdict};
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

/// Options of `mqtls check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write summary.json and summary.md.
    #[arg(long, default_value = "reports/latest")]
    pub report_dir: PathBuf,
    /// Messages each worker thread moves through the clean workload.
    #[arg(long, default_value_t = 20_000)]
    pub messages: u32,
    /// Time budget per detection-matrix cell, in seconds (the matrix has a
    /// row per fault plus a control row, a column per engine).
    #[arg(long, default_value_t = 4.0)]
    pub budget: f64,
    /// Output of `cargo test --features loom` to add as the loom column.
    #[arg(long, value_name = "FILE")]
    pub loom_output: Option<PathBuf>,
    /// Skip the detection matrix (ledger self-checks and end-to-end only).
    #[arg(long)]
    pub no_matrix: bool,
}

/// Runs the job; exit status 0 only when everything is clean.
pub fn run(args: Args) -> Result<i32, CliError> {
    let started = Instant::now();
    let mut sections = Vec::new();
    let mut unexpected = Vec::new();
    let mut totals = ledger::Stats::default();

    for mode in [Mode::Counting, Mode::Full] {
        eprintln!(
            "[check] ledger: clean workload, {mode:?} mode, 4 threads x {} messages",
            args.messages
        );
        let audit = clean_workload(mode, args.messages);
        let s = audit.stats;
        totals.allocated += s.allocated;
        totals.freed += s.freed;
        totals.live += s.live;
        totals.ops_begun += s.ops_begun;
        totals.ops_finished += s.ops_finished;
        sections.push(Section {
            name: format!("ledger clean workload ({mode:?})"),
            passed: audit.is_clean(),
            detail: format!(
                "{} messages allocated and freed, {} operations finished, {} violations",
                s.freed,
                s.ops_finished,
                audit.violations.len()
            ),
        });
        unexpected.extend(audit.violations);
    }

    for kind in ViolationKind::ALL {
        for mode in [Mode::Counting, Mode::Full] {
            let l = Ledger::new(mode);
            ledger::with_actor("self-check", || ledger::misuse::provoke(&l, kind));
            let audit = l.audit();
            let found = audit.violations.iter().find(|v| v.kind == kind);
            sections.push(Section {
                name: format!("ledger detects {kind} ({mode:?})"),
                passed: found.is_some(),
                detail: match found {
                    Some(v) => v.diagnosis(),
                    None => format!("NOT detected: the ledger missed a deliberate {kind}"),
                },
            });
        }
    }
    eprintln!(
        "[check] ledger: {} misuse kinds provoked in both modes",
        ViolationKind::ALL.len()
    );

    let moved = run_e2e(&mut sections, &mut unexpected, &mut totals)?;

    let mut matrix_files = Vec::new();
    let mut matrix_table = None;
    if !args.no_matrix {
        if !(args.budget > 0.0 && args.budget.is_finite()) {
            return Err(CliError::Usage(
                "--budget must be a positive number of seconds".into(),
            ));
        }
        eprintln!(
            "[check] detection matrix: every fault x every engine, {} s per cell",
            args.budget
        );
        let mut m = super::zoo::run_matrix(&Fault::ALL, Duration::from_secs_f64(args.budget));
        if let Some(path) = &args.loom_output {
            super::zoo::add_loom(&mut m, path)?;
        }
        matrix_sections(&m, &mut sections);
        matrix_files = detection::write(&m, &args.report_dir)?;
        matrix_table = Some(detection::markdown(&m));
    }

    let summary = Summary {
        job: "check".into(),
        seconds: started.elapsed().as_secs_f64(),
        ledger: totals,
        violations: unexpected.len(),
        violation_reports: unexpected,
        sections,
    };
    let written = summary.write(&args.report_dir)?;
    for sec in &summary.sections {
        println!(
            "{:<5} {:<44} {}",
            if sec.passed { "ok" } else { "FAIL" },
            sec.name,
            sec.detail
        );
    }
    println!(
        "\nmessages allocated {}, freed {}, live {}; operations begun {}, finished {}; violations {}",
        summary.ledger.allocated,
        summary.ledger.freed,
        summary.ledger.live,
        summary.ledger.ops_begun,
        summary.ledger.ops_finished,
        summary.violations
    );
    println!("end-to-end over TLS: {moved} application messages delivered");
    if let Some(t) = matrix_table {
        print!("\n{t}");
    }
    for p in written.into_iter().chain(matrix_files) {
        println!("wrote {}", p.display());
    }
    Ok(if summary.passed() { 0 } else { 1 })
}

/// One section per fault (detected by at least one engine) and one for the
/// control runs (no false positive).
fn matrix_sections(m: &Matrix, sections: &mut Vec<Section>) {
    for f in Fault::ALL {
        let by: Vec<String> = m
            .cells
            .iter()
            .filter(|c| c.fault == Some(f) && c.verdict == Verdict::Detected)
            .map(|c| match c.kind {
                Some(k) => format!("{} ({k})", c.engine.title()),
                None => c.engine.title().to_string(),
            })
            .collect();
        let missed: Vec<&str> = m
            .cells
            .iter()
            .filter(|c| c.fault == Some(f) && c.verdict == Verdict::Missed)
            .map(|c| c.engine.title())
            .collect();
        let missed = if missed.is_empty() {
            String::new()
        } else {
            format!("; miss (within the budget): {}", missed.join(", "))
        };
        sections.push(Section {
            name: format!("zoo: {f}"),
            passed: !by.is_empty(),
            detail: if by.is_empty() {
                format!("NOT detected by any engine{missed}")
            } else {
                format!("detected by {}{missed}", by.join(", "))
            },
        });
    }
    let fp = m.false_positives();
    sections.push(Section {
        name: "zoo: control runs (all faults off)".into(),
        passed: fp.is_empty(),
        detail: if fp.is_empty() {
            format!("no false positive in {} engines", m.engines.len())
        } else {
            fp.iter()
                .map(|c| format!("{}: {}", c.engine.title(), c.label()))
                .collect::<Vec<_>>()
                .join("; ")
        },
    });
}

/// The end-to-end TLS scenarios on the fixed protocol: each must behave and
/// audit clean.
fn run_e2e(
    sections: &mut Vec<Section>,
    unexpected: &mut Vec<ledger::Violation>,
    totals: &mut ledger::Stats,
) -> Result<u64, CliError> {
    eprintln!("[check] e2e: generating a PKI and starting the broker on 127.0.0.1 over TLS");
    let dir = tempfile::tempdir().map_err(|source| CliError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let pki = certs_gen::Pki::generate(&certs_gen::PkiOptions::default())?;
    pki.write_pem(dir.path(), false)?;
    let tls = e2e::Tls::from_dir(dir.path()).map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let outcomes = rt.block_on(e2e::all(&tls, FaultSet::NONE, |o| {
        eprintln!(
            "[check] e2e: {:<40} {}",
            o.name,
            if o.passed() { "ok" } else { "FAIL" }
        );
    }));
    let mut moved = 0;
    for o in outcomes {
        moved += o.messages;
        let s = o.audit.stats;
        totals.allocated += s.allocated;
        totals.freed += s.freed;
        totals.live += s.live;
        totals.ops_begun += s.ops_begun;
        totals.ops_finished += s.ops_finished;
        sections.push(Section {
            name: format!("e2e TLS: {}", o.name),
            passed: o.passed(),
            detail: format!(
                "{}; {} messages received; ledger: {} allocated, {} freed, {} operations finished, {} violations",
                o.detail,
                o.messages,
                s.allocated,
                s.freed,
                s.ops_finished,
                o.audit.violations.len()
            ),
        });
        unexpected.extend(o.audit.violations);
    }
    Ok(moved)
}

/// Four threads share messages the way a caller, a writer and a reader do:
/// allocate, retain for the wire, borrow for the write, release both, and
/// finish an operation per message. Must audit clean.
fn clean_workload(mode: Mode, per_thread: u32) -> ledger::Audit {
    let l = Ledger::new(mode);
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                ledger::set_actor(&format!("worker-{t}"));
                for i in 0..per_thread {
                    let op = l.begin_op(OpKind::Publish, "check::publish");
                    let m = l.alloc(MsgKind::Publish, vec![t as u8; 16].into(), "check::alloc");
                    let wire = m.retain("check::queue");
                    {
                        let w = wire.borrow("check::write");
                        if let Ok(w) = w {
                            let _ = w.data();
                        }
                    }
                    wire.release("check::write_done");
                    if let Some(old) = op.set_msg(m, "check::park") {
                        old.release("check::park (displaced)");
                    }
                    if let Some(m) = op.take_msg() {
                        m.release("check::ack");
                    }
                    let outcome = if i % 7 == 0 {
                        Outcome::Closed
                    } else {
                        Outcome::Success
                    };
                    op.finish(outcome, "check::ack");
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    l.audit()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::matrix_sections;
    use crate::faults::Fault;
    use crate::report::Summary;
    use crate::zoo::matrix::{Cell, Engine, EngineRun, Matrix};
    use std::time::Duration;

    /// summary.md for a fault the recipe detects and end-to-end TLS
    /// misses (NanoMQ 1329): `ok`, the miss named, no FAIL.
    #[test]
    fn summary_names_a_covered_miss_without_failing_it() {
        let cell = |fault, engine, found: bool| {
            let run = EngineRun {
                applicable: true,
                failure: found.then(|| "found".to_string()),
                ..EngineRun::default()
            };
            Cell::judge(fault, engine, run, Duration::ZERO)
        };
        let f = Some(Fault::Nanomq1329);
        let m = Matrix {
            engines: vec![Engine::Recipe, Engine::E2eTls],
            cells: vec![
                cell(f, Engine::Recipe, true),
                cell(f, Engine::E2eTls, false),
                cell(None, Engine::Recipe, false),
                cell(None, Engine::E2eTls, false),
            ],
        };
        let mut sections = Vec::new();
        matrix_sections(&m, &mut sections);
        sections.retain(|s| s.name == "zoo: nanomq-1329" || s.name.contains("control"));
        assert_eq!(sections.len(), 2);
        assert!(sections.iter().all(|s| s.passed), "{sections:?}");
        assert!(
            sections[0]
                .detail
                .contains("miss (within the budget): end-to-end TLS"),
            "{}",
            sections[0].detail
        );
        let md = Summary {
            job: "check".into(),
            seconds: 0.0,
            ledger: Default::default(),
            violations: 0,
            violation_reports: Vec::new(),
            sections,
        }
        .to_markdown();
        assert!(!md.contains("FAIL"), "{md}");
    }
}
