//! Execute: the in-process executor — each stage runs in this process, one at a time, on
//! the store itself (a training stage already uses every CPU core). What `r1flow run` uses
//! unless told otherwise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::context::{Cancel, Progress, StageContext, StageError};
use super::executor::{Event, Executor, Finished, Launch, Outcome};
use super::provenance::here;
use super::{ExecError, StageRunner};
use crate::store::Store;

/// Runs stages in this process with `runner`.
pub struct InProcess<'r> {
    runner: &'r dyn StageRunner,
    finished: Vec<Finished>,
}

impl<'r> InProcess<'r> {
    pub fn new(runner: &'r dyn StageRunner) -> Self {
        Self {
            runner,
            finished: Vec::new(),
        }
    }
}

impl Executor for InProcess<'_> {
    fn capacity(&self) -> usize {
        1
    }

    fn launch(
        &mut self,
        launch: Launch,
        store: &Store,
        cancel: &Cancel,
        progress: &mut dyn Progress,
    ) -> Result<(), ExecError> {
        let resumed_from_step = launch.resume.as_ref().map(|c| c.step);
        let started = Instant::now();
        let result = {
            let mut context =
                StageContext::new(store, &launch.spec, cancel, progress, launch.resume);
            self.runner.run(&mut context)
        };
        let outcome = match result {
            Ok(output) => {
                let mut outputs = BTreeMap::new();
                for (name, bytes) in &output.files {
                    outputs.insert(name.clone(), store.blobs().put(bytes)?);
                }
                Outcome::Succeeded {
                    outputs,
                    metrics: output.metrics,
                    produced: Some(here(launch.spec.backend)),
                }
            }
            Err(StageError::Cancelled { step }) => Outcome::Interrupted { step },
            Err(StageError::Store(error)) => return Err(error.into()),
            Err(error) => Outcome::Failed {
                error: error.to_string(),
            },
        };
        self.finished.push(Finished {
            index: launch.index,
            outcome,
            duration_s: started.elapsed().as_secs_f64(),
            resumed_from_step,
        });
        Ok(())
    }

    fn poll(&mut self, _store: &Store, _wait: Duration) -> Result<Vec<Event>, ExecError> {
        Ok(self.finished.drain(..).map(Event::Finished).collect())
    }

    fn stop(&mut self, _hard: bool) -> Result<(), ExecError> {
        // A stage in this process sees the cancellation itself, between steps.
        Ok(())
    }

    fn idle(&self) -> bool {
        self.finished.is_empty()
    }

    fn in_process(&self) -> bool {
        true
    }
}
