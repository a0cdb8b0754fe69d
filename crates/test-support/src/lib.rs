//! What berth's root integration tests share: the rule for a test that cannot run here.
//!
//! A suite that needs root, a tool or a kernel feature computes `missing` (None when it
//! can run, else the reason). Each test then runs; or, when something is missing, is
//! reported ignored with the reason; or, when the environment variable named by
//! `required_by` is set (`CI` for most suites), fails with the reason: CI runs as root on
//! a machine set up by hack/setup, so there a missing prerequisite is a defect, never a
//! pass.

pub mod node;

use libtest_mimic::{Completion, Failed, Trial};

/// A named test returning `Result`.
pub type Test<E> = (&'static str, fn() -> Result<(), E>);

/// Trials for tests returning `Result`.
pub fn trials<E: Into<Failed> + 'static>(
    tests: &[Test<E>],
    missing: Option<String>,
    required_by: &'static str,
) -> Vec<Trial> {
    tests
        .iter()
        .map(|&(name, f)| {
            trial(name, missing.clone(), required_by, move || {
                f().map_err(Into::into)
            })
        })
        .collect()
}

/// Trials for tests that fail by panicking (assert!-style).
pub fn panicking_trials(
    tests: &[(&'static str, fn())],
    missing: Option<String>,
    required_by: &'static str,
) -> Vec<Trial> {
    tests
        .iter()
        .map(|&(name, f)| {
            trial(name, missing.clone(), required_by, move || {
                f();
                Ok(())
            })
        })
        .collect()
}

/// One trial: `run`, or ignored with the reason, or failed when `required_by` is set.
pub fn trial(
    name: &'static str,
    missing: Option<String>,
    required_by: &'static str,
    run: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || match missing {
        None => run().map(|()| Completion::Completed),
        Some(reason) if std::env::var_os(required_by).is_some() => {
            Err(format!("prerequisite missing ({required_by} is set): {reason}").into())
        }
        Some(reason) => Ok(Completion::ignored_with(reason)),
    })
}

/// Runs `trials` with the command line's arguments and exits with the outcome.
pub fn run(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials).exit()
}
