//! Searching for a failing sequence from a fixed seed, shrunk by proptest:
//! the detection tests over every driver use this.

use super::action::{Action, sequence};
use super::run::Failure;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Longest sequence the searches and the model tests generate.
pub const MAX_LEN: usize = 40;

/// Runs up to `cases` sequences from a fixed ChaCha seed through `run` and
/// returns the first failing one, shrunk (at most `max_shrink_iters`
/// steps of shrinking). `Ok(None)`: every case passed; `Err`: proptest
/// aborted the search.
pub fn find_failing_sequence(
    cases: u32,
    max_shrink_iters: u32,
    run: impl Fn(&[Action]) -> Result<(), Failure>,
) -> Result<Option<Vec<Action>>, String> {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&sequence(MAX_LEN), |actions| {
        run(&actions).map_err(TestCaseError::fail)
    }) {
        Ok(()) => Ok(None),
        Err(TestError::Fail(_, actions)) => Ok(Some(actions)),
        Err(TestError::Abort(why)) => Err(why.to_string()),
    }
}

/// The shrunk sequence and its failure, one step a line, for test output.
pub fn describe(title: &str, actions: &[Action], why: &str) -> String {
    let mut s = format!("{title}: shrunk to {} steps:\n", actions.len());
    for a in actions {
        s.push_str(&format!("  {a:?}\n"));
    }
    s.push_str(&format!("  => {why}"));
    s
}
