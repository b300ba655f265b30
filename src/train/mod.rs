//! Execute (training): what the stage kinds that compute with a model run — one training
//! loop (`training_loop`: optimizer, schedule, logging, checkpoints and resume) driving
//! supervised training (`pretrain`, `sft`, `distill`), GRPO (`grpo`, `rlhf`) and the
//! reward model (`reward_model`), plus evaluation (`eval`) and rejection sampling —
//! generic over the burn backend. With `model`, the only code that names burn.

mod bradley_terry;
mod chunked_logprobs;
mod clip;
mod distill_kl;
mod dynamic_sampling;
mod eval;
mod export;
mod grpo;
mod grpo_loss;
mod lora;
mod loss_mask;
pub mod loss_scale;
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
mod stage_job;
mod state;
mod supervised;
mod training_loop;
mod update;

pub use bradley_terry::{bradley_terry_loss, pair_stats, PairStats};
pub use clip::{clip_global_norm, unscale_and_clip};
pub use distill_kl::token_kl;
pub use eval::EvalJob;
pub use export::ExportTask;
pub use grpo::GrpoJob;
pub use grpo_loss::{group_advantages, policy_loss, LossSettings, PolicyLoss};
pub use models::{
    load_input, model_files, preset_config, StageModel, MODEL_FILE, TOKENIZER_FILE,
    TOKENIZER_SETTINGS_FILE,
};
pub use policy_rewards::{PolicyRewards, REWARD_MODEL_TERM};
pub use rejection::RejectionJob;
pub use reward_model::{
    load_reward_model, scored_sequence, PreferencePair, RewardModelJob, StoredRewardModel,
    REWARD_METRICS_FILE, REWARD_MODEL_FILE,
};
pub use reward_scoring::RewardModels;
pub use sampling::{sample_records, PromptSample};
pub use schedule::learning_rate;
pub use stage_job::{run_job, JobResult, StageJob};
pub use state::LoopState;
pub use supervised::{Objective, SequenceMode, SupervisedJob};

use crate::check::numerics::native_machine;
use crate::exec::{StageContext, StageError, StageOutput};
use crate::manifest::{Backend, Dtype, Numerics};
use crate::model::kernels::{precision, profile};
use crate::model::{BackendKind, BackendTask, SamplingParams, TrainBackend};
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

/// Where and how the running stage computes, read before a task borrows the context.
#[derive(Debug, Clone)]
pub struct StageNumerics {
    backend: Backend,
    dtype: Dtype,
    numerics: Numerics,
    /// The machine a native CPU key was planned for, for a kind whose key names it.
    machine: Option<String>,
}

/// The backend, dtype and numeric profile of the running stage.
pub fn stage_numerics(context: &StageContext<'_>) -> StageNumerics {
    let spec = context.spec();
    StageNumerics {
        backend: spec.backend,
        dtype: spec.dtype,
        numerics: spec.numerics,
        machine: spec
            .config
            .stage_kind()
            .runs_model()
            .then(|| spec.machine.clone())
            .flatten(),
    }
}

/// Runs `task` on its backend, in the stage's numeric profile and compute precision
/// (`dtype:`, which the backend and its device must support). A native
/// stage planned for another machine is refused: its bits would not be the ones its key
/// promises (a Slurm node of another CPU type than the machine that planned the run).
pub fn run_on_backend<T: BackendTask<Output = Result<StageOutput, StageError>>>(
    numerics: StageNumerics,
    task: T,
) -> Result<StageOutput, StageError> {
    let StageNumerics {
        backend,
        dtype,
        numerics,
        machine,
    } = numerics;
    if !crate::model::trains_in(backend).contains(&dtype) {
        // `check` refuses it at `dtype:`; this is a spec written otherwise (a job file).
        return Err(StageError::Failed(format!(
            "backend `{}` cannot train in `{}`; it trains in {}",
            backend.as_str(),
            dtype.as_str(),
            dtype_list(crate::model::trains_in(backend))
        )));
    }
    if let Some(planned) = machine {
        let here = native_machine();
        if planned != here {
            return Err(StageError::Failed(format!(
                "this stage runs in the native numeric profile, whose bits depend on the \
                 machine: its key was planned on `{planned}`, but this machine is `{here}`, \
                 so it would store other bits under that key; run the pipeline with \
                 `numerics: portable` (the same bits everywhere), or plan it where it runs \
                 (on a cluster: nodes of one CPU type)"
            )));
        }
    }
    BackendKind::from(backend)
        .run(Profiled {
            backend,
            numerics,
            dtype,
            task,
        })
        .map_err(|e| StageError::Failed(e.to_string()))?
}

/// `` `f32` ``, `` `f32` and `f16` ``, ….
fn dtype_list(dtypes: &[Dtype]) -> String {
    let ticked: Vec<String> = dtypes.iter().map(|d| format!("`{}`", d.as_str())).collect();
    match ticked.split_last() {
        Some((last, init)) if !init.is_empty() => format!("{} and {last}", init.join(", ")),
        _ => ticked.concat(),
    }
}

/// A stage's task run inside its numeric profile and compute precision, on the thread
/// that runs it.
struct Profiled<T> {
    backend: Backend,
    numerics: Numerics,
    dtype: Dtype,
    task: T,
}

impl<T: BackendTask<Output = Result<StageOutput, StageError>>> BackendTask for Profiled<T> {
    type Output = T::Output;

    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output {
        if !precision::device_supports::<B>(&device, self.dtype) {
            return Err(StageError::Failed(format!(
                "this `{}` device cannot compute in `{}` (a wgpu adapter needs the \
                 `shader-f16` feature for f16); use `dtype: f32`",
                self.backend.as_str(),
                self.dtype.as_str()
            )));
        }
        let _profile = profile::scoped(self.numerics);
        let _precision = precision::scoped(self.dtype);
        self.task.run::<B>(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports the numeric profile it ran in, as an error (a stage output is not needed).
    struct ReportProfile;

    impl BackendTask for ReportProfile {
        type Output = Result<StageOutput, StageError>;

        fn run<B: TrainBackend>(self, _: B::Device) -> Self::Output {
            Err(StageError::Failed(format!(
                "ran in {}",
                profile::numerics().as_str()
            )))
        }
    }

    fn numerics(numerics: Numerics, machine: Option<String>) -> StageNumerics {
        StageNumerics {
            backend: Backend::Cpu,
            dtype: Dtype::F32,
            numerics,
            machine,
        }
    }

    fn outcome(n: StageNumerics) -> String {
        match run_on_backend(n, ReportProfile) {
            Err(e) => e.to_string(),
            Ok(_) => "an output".to_string(),
        }
    }

    /// A stage runs in its spec's profile; a native one planned for another machine (a
    /// forged spec, as a Slurm node of another CPU type would receive) does not run.
    #[test]
    fn a_native_stage_planned_on_another_machine_is_refused() {
        assert!(outcome(numerics(Numerics::Portable, None)).ends_with("ran in portable"));
        let here = Some(native_machine());
        assert!(outcome(numerics(Numerics::Native, here)).ends_with("ran in native"));
        let forged = Some("x86-64-v4 L1d 48K/12 L2 2048K/16".to_string());
        let refused = outcome(numerics(Numerics::Native, forged));
        assert!(
            refused.contains("its key was planned on `x86-64-v4 L1d 48K/12 L2 2048K/16`")
                && refused.contains(&format!("but this machine is `{}`", native_machine()))
                && refused.contains("`numerics: portable`"),
            "{refused}"
        );
        assert!(!refused.contains("ran in"), "{refused}");
    }
}
