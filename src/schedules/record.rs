//! Schedules as text: a scheduler wrapper that writes down every choice
//! shuttle's scheduler makes, and the encoding that replays it.
//!
//! A schedule is its random seed and the task chosen at each step (or `r`
//! where the program asked for a random value). The text form is the seed in
//! hex, a colon, then runs of `task*count` separated by dots, e.g.
//! `9c0f3e21:0*12.3.1*4.r.0*7`: short enough for a regression file line.

use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One choice of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Task(usize),
    Random,
}

/// A schedule written down: enough to replay one execution exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    seed: u64,
    steps: Vec<Step>,
}

impl Recorded {
    /// The text form.
    pub fn encode(&self) -> String {
        let mut out = format!("{:x}:", self.seed);
        let mut i = 0;
        let mut first = true;
        while i < self.steps.len() {
            let s = self.steps[i];
            let run = self.steps[i..].iter().take_while(|x| **x == s).count();
            if !first {
                out.push('.');
            }
            first = false;
            match s {
                Step::Random => {
                    out.push('r');
                    if run > 1 {
                        out.push_str(&format!("*{run}"));
                    }
                }
                Step::Task(t) if run > 1 => out.push_str(&format!("{t}*{run}")),
                Step::Task(t) => out.push_str(&t.to_string()),
            }
            i += run;
        }
        out
    }

    /// Parses the text form; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Recorded> {
        let (seed, rest) = text.trim().split_once(':')?;
        let seed = u64::from_str_radix(seed, 16).ok()?;
        let mut steps = Vec::new();
        for tok in rest.split('.').filter(|t| !t.is_empty()) {
            let (what, n) = match tok.split_once('*') {
                Some((w, n)) => (w, n.parse::<usize>().ok()?),
                None => (tok, 1),
            };
            let step = if what == "r" {
                Step::Random
            } else {
                Step::Task(what.parse().ok()?)
            };
            steps.extend(std::iter::repeat_n(step, n));
        }
        Some(Recorded { seed, steps })
    }

    /// Steps in the schedule.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True for the empty schedule.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What the explorer and its recording scheduler share (one OS thread).
#[derive(Debug, Default)]
pub struct Shared {
    /// The schedule of the execution running (or last run).
    pub current: Recorded,
    /// Set by the explorer when an execution failed: no new one starts.
    pub stop: bool,
    /// Executions started.
    pub started: usize,
}

/// Wraps a scheduler, writes down its choices, and stops at a failure or
/// when the time budget is spent (checked between executions, so the last
/// schedule is always complete).
pub struct Recording<S> {
    inner: S,
    shared: Rc<RefCell<Shared>>,
    deadline: Option<Instant>,
    stop: Option<Box<dyn Fn() -> bool>>,
}

impl<S: Scheduler> Recording<S> {
    /// Wraps `inner`; `budget` bounds the whole exploration.
    pub fn new(inner: S, shared: Rc<RefCell<Shared>>, budget: Option<Duration>) -> Self {
        Recording {
            inner,
            shared,
            deadline: budget.map(|b| Instant::now() + b),
            stop: None,
        }
    }

    /// Starts no new execution once `stop` says so (a failure was seen).
    pub fn stopping_when(mut self, stop: impl Fn() -> bool + 'static) -> Self {
        self.stop = Some(Box::new(stop));
        self
    }
}

impl<S: Scheduler> Scheduler for Recording<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        {
            let sh = self.shared.borrow();
            let failed = self.stop.as_ref().is_some_and(|f| f());
            if sh.stop || failed || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
        }
        let schedule = self.inner.new_execution()?;
        let mut sh = self.shared.borrow_mut();
        sh.current = Recorded {
            seed: schedule.seed,
            steps: Vec::new(),
        };
        sh.started += 1;
        Some(schedule)
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let t = self.inner.next_task(runnable, current, is_yielding)?;
        self.shared
            .borrow_mut()
            .current
            .steps
            .push(Step::Task(usize::from(t)));
        Some(t)
    }

    fn next_u64(&mut self) -> u64 {
        self.shared.borrow_mut().current.steps.push(Step::Random);
        self.inner.next_u64()
    }
}

/// Replays a recorded schedule without ever panicking: it follows the
/// recorded choices while they are possible, and once one is not (the
/// kernels changed their locking since it was recorded) it notes the
/// divergence and lets the first runnable thread go, so the execution still
/// ends and the explorer's thread stays usable.
pub struct Following {
    recorded: Recorded,
    pos: usize,
    started: bool,
    diverged: Rc<RefCell<Option<usize>>>,
}

impl Following {
    /// Follows `recorded`; `diverged` gets the step where it could not.
    pub fn new(recorded: Recorded, diverged: Rc<RefCell<Option<usize>>>) -> Self {
        Following {
            recorded,
            pos: 0,
            started: false,
            diverged,
        }
    }

    fn diverge(&mut self) {
        let mut d = self.diverged.borrow_mut();
        if d.is_none() {
            *d = Some(self.pos);
        }
    }
}

impl Scheduler for Following {
    fn new_execution(&mut self) -> Option<Schedule> {
        if std::mem::replace(&mut self.started, true) {
            return None;
        }
        Some(Schedule::new(self.recorded.seed))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        _current: Option<TaskId>,
        _is_yielding: bool,
    ) -> Option<TaskId> {
        if let Some(Step::Task(t)) = self.recorded.steps.get(self.pos).copied()
            && let Some(task) = runnable.iter().find(|r| usize::from(r.id()) == t)
        {
            self.pos += 1;
            return Some(task.id());
        }
        self.diverge();
        runnable.first().map(|t| t.id())
    }

    fn next_u64(&mut self) -> u64 {
        if self.recorded.steps.get(self.pos) == Some(&Step::Random) {
            self.pos += 1;
        } else {
            self.diverge();
        }
        // The scenarios ask for no random values; shuttle's own requests
        // get a fixed one.
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let r = Recorded {
            seed: 0xdead_beef,
            steps: vec![
                Step::Task(0),
                Step::Task(0),
                Step::Task(3),
                Step::Random,
                Step::Random,
                Step::Task(12),
            ],
        };
        let text = r.encode();
        assert_eq!(text, "deadbeef:0*2.3.r*2.12");
        assert_eq!(Recorded::decode(&text), Some(r));
        assert_eq!(Recorded::decode("zz:0"), None);
        assert_eq!(Recorded::decode("1f:0.x"), None);
    }
}
