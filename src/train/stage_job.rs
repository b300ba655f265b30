//! Execute (training): a kind's job and the context of its stage as one backend task —
//! what every runner of a kind that computes with a model hands to the backend.

use super::{run_on_backend, stage_numerics};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::model::{BackendTask, TrainBackend};

/// What running a stage's job gives: the stage's output, or why it failed.
pub type JobResult = Result<StageOutput, StageError>;

/// The work of a kind that computes with a model: its settings, run on a backend with the
/// context of its stage.
pub trait StageJob: Send {
    /// Runs the job on backend `B` (autodiff; `B::InnerBackend` for forward-only work).
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult;
}

/// A job with the context of its stage: one backend task.
struct StageTask<'c, 'a, J> {
    context: &'c mut StageContext<'a>,
    job: J,
}

impl<J: StageJob> BackendTask for StageTask<'_, '_, J> {
    type Output = JobResult;

    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output {
        self.job.run::<B>(self.context, device)
    }
}

/// Runs `job` on the stage's backend, in the stage's numeric profile.
pub fn run_job<J: StageJob>(context: &mut StageContext<'_>, job: J) -> JobResult {
    let numerics = stage_numerics(context);
    run_on_backend(numerics, StageTask { context, job })
}
