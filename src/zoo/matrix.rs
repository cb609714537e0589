//! The detection matrix: every fault against every engine that can reach
//! it, plus a control run of every engine with all faults off.

use crate::faults::{Fault, FaultSet};
use crate::ledger::{Violation, ViolationKind};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// An engine of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Engine {
    /// The fault's ZOO.md sequence, scripted over the in-memory transport.
    Recipe,
    /// Real threads racing over the kernels, many times.
    Stress,
    /// Random lifecycle sequences against the reference model (proptest).
    Sequences,
    /// Random inputs through the fuzzing entry points.
    FuzzRandom,
    /// End-to-end scenarios over real TLS.
    E2eTls,
    /// Loom models, from `cargo test --features loom` output.
    Loom,
    /// Shuttle's random and PCT schedules of whole scenarios.
    Schedules,
}

impl Engine {
    /// Column title.
    pub fn title(self) -> &'static str {
        match self {
            Engine::Recipe => "recipe (sim)",
            Engine::Stress => "stress (threads)",
            Engine::Sequences => "sequences (proptest)",
            Engine::FuzzRandom => "fuzz (random)",
            Engine::E2eTls => "end-to-end TLS",
            Engine::Loom => "loom",
            Engine::Schedules => "schedules (shuttle)",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// What one engine run found.
#[derive(Debug, Clone, Default)]
pub struct EngineRun {
    /// False when the engine cannot reach this fault (the cell is n/a).
    pub applicable: bool,
    /// The first violation found, if any.
    pub violation: Option<Violation>,
    /// The violation kind, when the engine knows it without a full
    /// violation (the fuzz engine's findings carry kinds only).
    pub kind: Option<ViolationKind>,
    /// A broken rule the engine saw besides the ledger's (a broken MQTT
    /// promise, an assertion), if any.
    pub failure: Option<String>,
    /// Cases, inputs or iterations run.
    pub iterations: u64,
    /// The shortest reproduction found, in words or steps.
    pub reproduction: Option<String>,
}

/// One engine that can be run with a fault set and a time budget.
pub trait DetectionEngine {
    /// Which engine this is.
    fn engine(&self) -> Engine;
    /// Runs with `faults` on (`target` is the one fault being looked for,
    /// `None` for the control run) within about `budget`.
    fn run(&self, faults: FaultSet, target: Option<Fault>, budget: Duration) -> EngineRun;
}

/// The verdict of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The fault was on and the ledger reported it.
    Detected,
    /// The fault was on and nothing was reported within the budget. Not a
    /// failure by itself: engines reach different faults, and the run fails
    /// only for a fault no engine detected ([`Matrix::undetected`]).
    Missed,
    /// Control run: nothing reported, as it must be.
    Clean,
    /// Control run: something was reported with every fault off.
    FalsePositive,
    /// The engine cannot reach this fault.
    NotApplicable,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The fault switched on (`None`: control run, all faults off).
    pub fault: Option<Fault>,
    /// The engine.
    pub engine: Engine,
    /// What came out.
    pub verdict: Verdict,
    /// The violation kind reported, if any.
    pub kind: Option<ViolationKind>,
    /// Time spent, seconds.
    pub seconds: f64,
    /// Iterations until detection (or in all).
    pub iterations: u64,
    /// The shortest reproduction found.
    pub reproduction: Option<String>,
    /// What the engine saw fail, in its words.
    pub failure: Option<String>,
    /// The violation, with its history.
    pub violation: Option<Violation>,
}

/// All cells.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Matrix {
    /// Engines in column order.
    pub engines: Vec<Engine>,
    /// Every cell, fault by fault, then the control runs.
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// Runs `engines` against every fault and once with none, giving each
    /// cell `budget`. `progress` is told about each cell as it finishes.
    pub fn run(
        engines: &[&dyn DetectionEngine],
        faults: &[Fault],
        budget: Duration,
        mut progress: impl FnMut(&Cell),
    ) -> Matrix {
        let mut m = Matrix {
            engines: engines.iter().map(|e| e.engine()).collect(),
            cells: Vec::new(),
        };
        let rows: Vec<Option<Fault>> = faults.iter().copied().map(Some).chain([None]).collect();
        for fault in rows {
            for e in engines {
                let set = fault.map_or(FaultSet::NONE, FaultSet::only);
                let started = Instant::now();
                let run = e.run(set, fault, budget);
                let cell = Cell::judge(fault, e.engine(), run, started.elapsed());
                progress(&cell);
                m.cells.push(cell);
            }
        }
        m
    }

    /// Adds cells found elsewhere (loom results parsed from test output).
    pub fn add(&mut self, engine: Engine, cells: Vec<Cell>) {
        if !self.engines.contains(&engine) {
            self.engines.push(engine);
        }
        self.cells.extend(cells);
    }

    /// The cell for `fault` and `engine`.
    pub fn cell(&self, fault: Option<Fault>, engine: Engine) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.fault == fault && c.engine == engine)
    }

    /// Faults no engine detected.
    pub fn undetected(&self) -> Vec<Fault> {
        let mut faults: Vec<Fault> = self.cells.iter().filter_map(|c| c.fault).collect();
        faults.sort();
        faults.dedup();
        faults
            .into_iter()
            .filter(|f| {
                !self
                    .cells
                    .iter()
                    .any(|c| c.fault == Some(*f) && c.verdict == Verdict::Detected)
            })
            .collect()
    }

    /// Control-run cells that reported something.
    pub fn false_positives(&self) -> Vec<&Cell> {
        self.cells
            .iter()
            .filter(|c| c.verdict == Verdict::FalsePositive)
            .collect()
    }

    /// True when every fault was detected by some engine and no control run
    /// reported anything.
    pub fn passed(&self) -> bool {
        self.undetected().is_empty() && self.false_positives().is_empty()
    }
}

impl Cell {
    /// Turns an engine run into a verdict.
    pub fn judge(fault: Option<Fault>, engine: Engine, run: EngineRun, took: Duration) -> Cell {
        let found = run.violation.is_some() || run.failure.is_some();
        let verdict = match (fault, run.applicable, found) {
            (_, false, _) => Verdict::NotApplicable,
            (Some(_), true, true) => Verdict::Detected,
            (Some(_), true, false) => Verdict::Missed,
            (None, true, true) => Verdict::FalsePositive,
            (None, true, false) => Verdict::Clean,
        };
        Cell {
            fault,
            engine,
            verdict,
            kind: run.violation.as_ref().map(|v| v.kind).or(run.kind),
            seconds: took.as_secs_f64(),
            iterations: run.iterations,
            reproduction: run.reproduction,
            failure: run.failure,
            violation: run.violation,
        }
    }

    /// A short text for tables: kind and time, or the verdict.
    pub fn label(&self) -> String {
        match (self.verdict, self.kind) {
            (Verdict::Detected, Some(k)) => {
                format!("{k} ({:.2} s, {} it.)", self.seconds, self.iterations)
            }
            (Verdict::Clean, _) => format!("clean ({} it.)", self.iterations),
            (Verdict::FalsePositive, Some(k)) => format!("FALSE POSITIVE: {k}"),
            (Verdict::FalsePositive, None) => "FALSE POSITIVE: model broken".into(),
            (Verdict::Missed, _) => {
                format!("miss ({:.1} s, {} it.)", self.seconds, self.iterations)
            }
            (Verdict::NotApplicable, _) => "n/a".into(),
            (v, _) => format!("{v:?}"),
        }
    }
}
