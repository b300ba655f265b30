//! Execute (training): the training loops behind the stage kinds — supervised
//! (`pretrain`, `sft`, `distill`), GRPO (`grpo`, `rlhf`), the reward model
//! (`reward_model`), and evaluation (`eval`) — written once,
//! generic over the burn backend, with checkpoints and resume. With `model`, the only
//! code that names burn.

mod bradley_terry;
mod chunked_logprobs;
mod clip;
mod distill_kl;
mod dynamic_sampling;
mod eval;
mod grpo;
mod grpo_loss;
mod loss_mask;
mod models;
mod policy_rewards;
mod policy_update;
mod reference_sync;
mod rejection;
mod reward_model;
mod reward_scoring;
mod rollout;
mod sampling;
mod schedule;
mod state;
mod supervised;
mod update;

pub use bradley_terry::{bradley_terry_loss, pair_stats, PairStats};
pub use clip::clip_global_norm;
pub use distill_kl::token_kl;
pub use eval::{EvalJob, EvalTask};
pub use grpo::{GrpoJob, GrpoTask};
pub use grpo_loss::{group_advantages, policy_loss, LossSettings, PolicyLoss};
pub use models::{
    load_input, model_files, preset_config, ExportTask, StageModel, MODEL_FILE, TOKENIZER_FILE,
    TOKENIZER_SETTINGS_FILE,
};
pub use policy_rewards::{PolicyRewards, REWARD_MODEL_TERM};
pub use rejection::{RejectionJob, RejectionTask};
pub use reward_model::{
    load_reward_model, scored_sequence, PreferencePair, RewardModelJob, RewardModelTask,
    StoredRewardModel, REWARD_METRICS_FILE, REWARD_MODEL_FILE,
};
pub use reward_scoring::RewardModels;
pub use sampling::{sample_records, PromptSample};
pub use schedule::learning_rate;
pub use state::LoopState;
pub use supervised::{Objective, SequenceMode, SupervisedJob, SupervisedTask};
pub use update::{apply_gradients, learning_rate_at};

use crate::exec::{StageContext, StageError, StageOutput};
use crate::manifest::{Backend, Dtype};
use crate::model::{BackendKind, BackendTask, SamplingParams};
use crate::stages::GenerationSettings;

/// The sampler's settings for a stage's resolved `generation` group, seeded.
pub fn sampling_params(generation: &GenerationSettings, seed: u64) -> SamplingParams {
    SamplingParams {
        max_new_tokens: generation.max_completion_length,
        temperature: generation.temperature as f32,
        top_p: generation.top_p as f32,
        top_k: generation.top_k,
        seed,
        stop: generation.stop.clone(),
    }
}

/// The backend and dtype of the running stage, read before a task borrows the context.
pub fn stage_numerics(context: &StageContext<'_>) -> (Backend, Dtype) {
    (context.spec().backend, context.spec().dtype)
}

/// Runs `task` on `backend` (f32 only for now).
pub fn run_on_backend<T: BackendTask<Output = Result<StageOutput, StageError>>>(
    (backend, dtype): (Backend, Dtype),
    task: T,
) -> Result<StageOutput, StageError> {
    if dtype != Dtype::F32 {
        return Err(StageError::Failed(format!(
            "training in {dtype:?} is not supported yet; use `dtype: f32`"
        )));
    }
    BackendKind::from(backend)
        .run(task)
        .map_err(|e| StageError::Failed(e.to_string()))?
}
