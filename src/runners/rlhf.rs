//! Execute (stage kind `rlhf`): the GRPO loop with rewards by prompt type — rule rewards
//! for reasoning prompts, the reward model (input `reward_model`) plus `general_rewards`
//! for general ones.

use crate::exec::StageContext;
use crate::stages::InputField;
use crate::stages::Rlhf;
use crate::train::{self, GrpoJob, JobResult, PolicyRewards};

pub(super) fn run(settings: Rlhf, context: &mut StageContext<'_>) -> JobResult {
    let job = GrpoJob {
        training: settings.training,
        generation: settings.generation,
        policy: settings.policy,
        rewards: PolicyRewards::ByKind {
            reasoning: settings.rewards,
            general: settings.general_rewards,
            reward_model_field: InputField::RewardModel,
        },
        seed: settings.seed,
    };
    train::run_job(context, job)
}
