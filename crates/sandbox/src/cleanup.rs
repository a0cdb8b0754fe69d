//! A LIFO stack of undo steps for multi-step operations (RunPodSandbox, CreateContainer):
//! each step that makes something pushes how to unmake it; on failure the stack is run
//! in reverse, on success it is dismissed.

use std::future::Future;
use std::pin::Pin;

use tracing::{debug, warn};

type Undo = Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>;

#[derive(Default)]
pub struct Cleanup {
    steps: Vec<(&'static str, Undo)>,
}

impl Cleanup {
    pub fn new() -> Self {
        Cleanup::default()
    }

    /// Pushes the undo of a step that just succeeded.
    pub fn push(
        &mut self,
        what: &'static str,
        undo: impl Future<Output = crate::Result<()>> + Send + 'static,
    ) {
        self.steps.push((what, Box::pin(undo)));
    }

    /// Undoes every step, last first. A failing undo is logged and the rest still run.
    pub async fn run(mut self, object: &str) {
        while let Some((what, undo)) = self.steps.pop() {
            match undo.await {
                Ok(()) => debug!(object, step = what, "undone"),
                Err(e) => warn!(object, step = what, error = %e, "undo failed"),
            }
        }
    }

    /// The operation succeeded: nothing is undone.
    pub fn dismiss(mut self) {
        self.steps.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn undoes_in_reverse_and_survives_a_failing_step() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut c = Cleanup::new();
        for i in 0..3 {
            let log = log.clone();
            c.push("step", async move {
                log.lock().unwrap().push(i);
                if i == 1 {
                    return Err(crate::Error::Internal("boom".into()));
                }
                Ok(())
            });
        }
        c.run("x").await;
        assert_eq!(*log.lock().unwrap(), vec![2, 1, 0]);
    }
}
