//! Exploring schedules: run a scenario under shuttle's random or PCT
//! scheduler until the ledger or an oracle objects, then keep the schedule
//! that did it, replayable.

use super::record::{Following, Recorded, Recording, Shared};
use super::scenario::Scenario;
use super::world::World;
use crate::faults::FaultSet;
use crate::ledger::{Mode, Violation};
use crate::sync::{Arc, StdArc, StdMutex};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, FailurePersistence, Runner};
use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How schedules are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly random at every step.
    Random,
    /// Probabilistic Concurrency Testing: random priorities with `depth`
    /// priority changes, which finds bugs of that depth with a known
    /// probability per schedule.
    Pct {
        /// Bug depth aimed at (number of ordering constraints).
        depth: usize,
    },
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Random => f.write_str("random"),
            Strategy::Pct { depth } => write!(f, "pct{depth}"),
        }
    }
}

/// What one failing execution showed.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The scenario.
    pub scenario: Scenario,
    /// The ledger's first violation, if it was the ledger that objected.
    pub violation: Option<Violation>,
    /// The broken promise (an oracle) or the panic, otherwise.
    pub failure: Option<String>,
    /// The schedule, in the regression file's text form.
    pub schedule: String,
}

impl Finding {
    /// One line: what broke.
    pub fn summary(&self) -> String {
        match (&self.violation, &self.failure) {
            (Some(v), _) => v.diagnosis(),
            (None, Some(f)) => f.clone(),
            (None, None) => "nothing".into(),
        }
    }
}

/// What an exploration did.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Schedules run (the failing one included).
    pub schedules: usize,
    /// Wall time.
    pub seconds: f64,
    /// The first failing schedule, if any.
    pub finding: Option<Finding>,
}

/// What one execution reported back from inside the schedule.
type Report = Option<(Option<Violation>, Option<String>)>;

fn config() -> Config {
    let mut c = Config::new();
    // We print and keep schedules ourselves (the regression file).
    c.failure_persistence = FailurePersistence::None;
    // Shuttle warns that its atomics are sequentially consistent only; the
    // kernels' atomics are flags and counters read under locks.
    c.silence_warnings = true;
    c
}

/// The body of one execution: the scenario on a fresh world, audited.
fn body(
    scenario: Scenario,
    faults: FaultSet,
    mode: Mode,
    report: StdArc<StdMutex<Report>>,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        let world = Arc::new(World::new(faults, mode));
        scenario.play(&world);
        let (audit, broken) = world.finish();
        let v = audit.violations.into_iter().next();
        let b = broken.into_iter().next();
        if v.is_some() || b.is_some() {
            let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_none() {
                *r = Some((v, b));
            }
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a thread panicked".into())
}

/// Explores up to `schedules` schedules of `scenario` with `faults` on,
/// within `budget` if given, stopping at the first failure.
pub fn explore(
    scenario: Scenario,
    faults: FaultSet,
    strategy: Strategy,
    seed: u64,
    schedules: usize,
    budget: Option<Duration>,
) -> Exploration {
    let started = Instant::now();
    let shared = Rc::new(RefCell::new(Shared::default()));
    let report: StdArc<StdMutex<Report>> = StdArc::new(StdMutex::new(None));
    let f = body(scenario, faults, Mode::Full, report.clone());
    let stop = {
        let report = report.clone();
        move || report.lock().map(|r| r.is_some()).unwrap_or(true)
    };
    let run = |sched| {
        let rec = Recording::new(sched, shared.clone(), budget).stopping_when(stop.clone());
        catch_unwind(AssertUnwindSafe(|| Runner::new(rec, config()).run(f)))
    };
    let outcome = match strategy {
        Strategy::Random => run(Box::new(RandomScheduler::new_from_seed(seed, schedules))
            as Box<dyn shuttle::scheduler::Scheduler + Send>),
        Strategy::Pct { depth } => run(Box::new(PctScheduler::new_from_seed(
            seed,
            depth.max(1),
            schedules,
        ))),
    };
    let sh = shared.borrow();
    let reported = report.lock().ok().and_then(|mut r| r.take());
    let finding = match (outcome, reported) {
        (Err(p), _) => Some(Finding {
            scenario,
            violation: None,
            failure: Some(format!("panic: {}", panic_text(p))),
            schedule: sh.current.encode(),
        }),
        (Ok(_), Some((violation, failure))) => Some(Finding {
            scenario,
            violation,
            failure,
            schedule: sh.current.encode(),
        }),
        (Ok(_), None) => None,
    };
    Exploration {
        schedules: sh.started,
        seconds: started.elapsed().as_secs_f64(),
        finding,
    }
}

/// Replays one schedule (text form) of `scenario` with `faults` on. `Err`
/// when the text is not a schedule or the program no longer follows it (a
/// change to the kernels' locking since it was recorded).
pub fn replay(
    scenario: Scenario,
    faults: FaultSet,
    schedule: &str,
) -> Result<Option<Finding>, String> {
    let rec = Recorded::decode(schedule).ok_or_else(|| format!("not a schedule: {schedule:?}"))?;
    let steps = rec.len();
    let report: StdArc<StdMutex<Report>> = StdArc::new(StdMutex::new(None));
    let f = body(scenario, faults, Mode::Full, report.clone());
    let diverged = Rc::new(RefCell::new(None));
    let sched = Following::new(rec, diverged.clone());
    let ran = catch_unwind(AssertUnwindSafe(|| Runner::new(sched, config()).run(f)));
    if let Some(at) = *diverged.borrow() {
        return Err(format!(
            "the program no longer follows the schedule (step {at} of {steps})"
        ));
    }
    let reported = report.lock().ok().and_then(|mut r| r.take());
    let failure = ran.err().map(|p| format!("panic: {}", panic_text(p)));
    Ok(match (reported, failure) {
        (Some((violation, failure)), _) => Some(Finding {
            scenario,
            violation,
            failure,
            schedule: schedule.to_string(),
        }),
        (None, Some(p)) => Some(Finding {
            scenario,
            violation: None,
            failure: Some(p),
            schedule: schedule.to_string(),
        }),
        (None, None) => None,
    })
}
