//! One module per runtime operation, each callable as a library function; main.rs maps the
//! command line onto them.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

/// Settings every operation shares (the global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Directory holding one state directory per container.
    pub root: PathBuf,
    /// `--systemd-cgroup`: cgroupsPath is in systemd's "slice:prefix:name" form.
    pub systemd_cgroup: bool,
}

pub const DEFAULT_ROOT: &str = "/run/berth-oci";

/// Undo steps of a multi-step operation, run last-in first-out unless the operation succeeds.
type UndoStep = (&'static str, Box<dyn FnOnce()>);

#[derive(Default)]
pub struct Cleanup {
    steps: Vec<UndoStep>,
}

impl Cleanup {
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() + 'static) {
        self.steps.push((what, Box::new(undo)));
    }
    /// The operation succeeded: keep everything.
    pub fn disarm(mut self) {
        self.steps.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.steps.pop() {
            tracing::debug!(step = what, "undoing");
            undo();
        }
    }
}
