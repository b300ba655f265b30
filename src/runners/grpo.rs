//! Execute (stage kind `grpo`): Group Relative Policy Optimization with the stage's
//! weighted rewards on every prompt — R1-Zero's RL and R1's reasoning RL.

use crate::exec::StageContext;
use crate::stages::Grpo;
use crate::train::{self, GrpoJob, JobResult, PolicyRewards};

pub(super) fn run(settings: Grpo, context: &mut StageContext<'_>) -> JobResult {
    let job = GrpoJob {
        training: settings.training,
        generation: settings.generation,
        policy: settings.policy,
        rewards: PolicyRewards::Same(settings.rewards),
        seed: settings.seed,
    };
    train::run_job(context, job)
}
