//! Parse: the parameter groups several stage kinds share (training, generation, policy
//! optimisation), written once and spliced into each kind's flat config struct so that
//! manifests keep TRL's flat names (`learning_rate`, `num_generations`, …).
//!
//! serde's `flatten` would do the same but loses error paths and cannot deny unknown
//! fields, so the groups are spliced by a macro instead. Every field is optional: `check`
//! fills what the stage leaves out from the manifest's `defaults:` and then from the
//! kind's built-in defaults, so a checked stage has every field set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Learning-rate schedule after warm-up (TRL/transformers `lr_scheduler_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduler {
    Constant,
    Linear,
    Cosine,
}

/// How group rewards are scaled into advantages (TRL `scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the standard deviation of the prompt's group (GRPO).
    Group,
    /// Divide by the standard deviation of the whole batch.
    Batch,
    /// Only subtract the group mean (Dr. GRPO).
    None,
}

/// How per-token losses are aggregated (TRL `loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each sequence's tokens, then over sequences.
    Grpo,
    /// Sum over tokens divided by batch × `max_completion_length`.
    DrGrpo,
    /// Mean over all tokens of the batch (DAPO).
    Dapo,
    /// Mean over all tokens of the batch, per local batch (BNPO).
    Bnpo,
}

/// Where the policy ratio π_θ/π_old is taken and clipped (TRL `importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSamplingLevel {
    /// One ratio per token (GRPO, PPO).
    #[default]
    Token,
    /// One ratio per completion, exp of the mean per-token log-ratio over its tokens,
    /// clipped as a whole (GSPO).
    Sequence,
}

/// Splices the shared parameter groups into a stage config struct.
///
/// `stage_config! { #[attrs] pub struct X { own fields, } [training, generation, policy] }`
macro_rules! stage_config {
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* } [$($group:ident),*]) => {
        $crate::manifest::params::stage_config!(@splice [$(#[$meta])*] $name [$($own)*] [$($group)*]);
    };
    (@splice $meta:tt $name:ident [$($fields:tt)*] [training $($rest:ident)*]) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            /// Peak learning rate of AdamW.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub learning_rate: Option<f64>,
            /// Schedule after warm-up: `constant`, `linear` or `cosine`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub lr_scheduler_type: Option<$crate::manifest::params::LrScheduler>,
            /// Fraction of the steps spent warming the learning rate up from 0, in [0, 1].
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub warmup_ratio: Option<f64>,
            /// AdamW decoupled weight decay.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub weight_decay: Option<f64>,
            /// AdamW β1, in [0, 1).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub adam_beta1: Option<f64>,
            /// AdamW β2, in [0, 1).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub adam_beta2: Option<f64>,
            /// Clip the global gradient norm to this value (as PyTorch's
            /// `clip_grad_norm_`); 0 disables clipping.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_grad_norm: Option<f64>,
            /// Sequences per micro-batch (for GRPO: completions, as in TRL).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub per_device_train_batch_size: Option<usize>,
            /// Micro-batches accumulated per optimizer step.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub gradient_accumulation_steps: Option<usize>,
            /// Optimizer steps to run; when set it wins over `num_train_epochs`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_steps: Option<u64>,
            /// Passes over the training data when `max_steps` is not set.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub num_train_epochs: Option<f64>,
            /// Record metrics every this many steps.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub logging_steps: Option<u64>,
            /// Write a resumable checkpoint every this many steps. Does not change the
            /// stage's result, so it is not part of the cache key.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub save_steps: Option<u64>,
            /// Keep only each decoder layer's input during the forward pass and recompute
            /// the layer in the backward pass (transformers' `gradient_checkpointing`; on
            /// by default in TRL's GRPOConfig): activation memory of one layer instead of
            /// all, for about a third more compute in the update. Default false.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub gradient_checkpointing: Option<bool>,
        ] [$($rest)*]);
    };
    (@splice $meta:tt $name:ident [$($fields:tt)*] [generation $($rest:ident)*]) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            /// Sampling temperature; 0 samples greedily.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub temperature: Option<f64>,
            /// Nucleus sampling: keep the smallest set of tokens whose probability reaches
            /// this mass, in (0, 1]; 1 disables it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub top_p: Option<f64>,
            /// Keep only the k most likely tokens; 0 disables it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub top_k: Option<usize>,
            /// Prompts longer than this many tokens are truncated from the left.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_prompt_length: Option<usize>,
            /// Most tokens generated per completion.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub max_completion_length: Option<usize>,
            /// Generation stops at any of these strings (and at the end-of-sequence token).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stop: Option<Vec<String>>,
        ] [$($rest)*]);
    };
    (@splice $meta:tt $name:ident [$($fields:tt)*] [policy $($rest:ident)*]) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            /// Completions sampled per prompt (the group size G); at least 2.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub num_generations: Option<usize>,
            /// KL coefficient against the reference model (k3 estimator); 0 loads no
            /// reference model.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub beta: Option<f64>,
            /// Lower clipping range of the probability ratio: clip(ρ, 1 − epsilon, …).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub epsilon: Option<f64>,
            /// Upper clipping range (DAPO's clip-higher); defaults to `epsilon`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub epsilon_high: Option<f64>,
            /// Policy updates per generated batch (μ).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub num_iterations: Option<usize>,
            /// Advantage scaling: `group`, `batch` or `none`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub scale_rewards: Option<$crate::manifest::params::ScaleRewards>,
            /// Loss aggregation: `grpo`, `dr_grpo`, `dapo` or `bnpo`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub loss_type: Option<$crate::manifest::params::LossType>,
            /// Exclude completions cut off at `max_completion_length` from the loss.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub mask_truncated_completions: Option<bool>,
            /// Where the ratio is taken and clipped: `token` (GRPO) or `sequence` (GSPO: one
            /// length-normalised ratio per completion). GSPO's paper clips far tighter,
            /// e.g. `epsilon: 3e-4`, `epsilon_high: 4e-4`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub importance_sampling_level:
                Option<$crate::manifest::params::ImportanceSamplingLevel>,
            /// DAPO's dynamic sampling: drop the groups whose `metric` reward is the same for
            /// every completion (they have no advantage) and sample new prompts in their
            /// place, for at most `max_rounds` rounds per step.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dynamic_sampling: Option<$crate::manifest::DynamicSampling>,
            /// Mix the policy into the reference model every this many steps (TRL's
            /// `sync_ref_model` with `ref_model_sync_steps`): ref ← α·policy + (1 − α)·ref
            /// with α = `ref_model_mixup_alpha`; 0 never. Only matters when `beta` > 0.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sync_ref_model: Option<u64>,
            /// The policy's share α when the reference model is synced, in [0, 1] (TRL's
            /// default 0.6); 1 copies the policy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub ref_model_mixup_alpha: Option<f64>,
        ] [$($rest)*]);
    };
    (@splice $meta:tt $name:ident [$($fields:tt)*] [resources $($rest:ident)*]) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            /// What the stage's job asks a cluster for under `--executor slurm` (GPUs,
            /// CPUs, memory, time limit). Not part of the cache key.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub resources: Option<$crate::manifest::Resources>,
        ] [$($rest)*]);
    };
    (@splice [$($meta:tt)*] $name:ident [$($fields:tt)*] []) => {
        $($meta)*
        pub struct $name { $($fields)* }
    };
}
pub(crate) use stage_config;

stage_config! {
    /// Values for the shared parameters of every stage that has them and leaves them out.
    /// A stage's own value wins; a kind's built-in default applies when neither is set.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Defaults {}
    [training, generation, policy]
}

impl Defaults {
    /// transformers' `TrainingArguments` defaults (linear decay, AdamW β 0.9/0.999, clip
    /// 1.0, batch 8) with the given peak learning rate and epochs — the base of TRL's
    /// `SFTConfig` and `RewardConfig`.
    pub fn trl_training(learning_rate: f64, num_train_epochs: f64) -> Self {
        Self {
            learning_rate: Some(learning_rate),
            lr_scheduler_type: Some(LrScheduler::Linear),
            warmup_ratio: Some(0.0),
            weight_decay: Some(0.0),
            adam_beta1: Some(0.9),
            adam_beta2: Some(0.999),
            max_grad_norm: Some(1.0),
            per_device_train_batch_size: Some(8),
            gradient_accumulation_steps: Some(1),
            num_train_epochs: Some(num_train_epochs),
            logging_steps: Some(10),
            save_steps: Some(500),
            gradient_checkpointing: Some(false),
            ..Self::default()
        }
    }
}
