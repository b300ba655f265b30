//! Parse: the parameters several stage kinds share (training, generation, policy
//! optimisation, resources), each declared once — its type, doc, default, range, whether
//! it enters the cache key and its name in the resolved settings — and spliced into each
//! kind's flat config struct so that manifests keep TRL's flat names (`learning_rate`,
//! `num_generations`, …). The schema, the declared defaults, `check`'s range rules,
//! `plan`'s key rules and `stages::settings`' resolved structs are all generated from the
//! declarations below; nothing else names a shared parameter's properties.
//!
//! serde's `flatten` would do the same but loses error paths and cannot deny unknown
//! fields, so the groups are spliced by a macro instead. Every field is optional: `check`
//! fills what the stage leaves out from the manifest's `defaults:`, then from the kind's
//! built-in defaults, then from the declared ones, so a checked stage has every field set.

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

/// The range a shared numeric parameter must lie in (`check` reports a value outside it
/// at the field, with the declaration's hint).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// x > 0
    Positive,
    /// x ≥ 0
    NonNegative,
    /// 0 ≤ x ≤ 1
    Unit,
    /// 0 < x ≤ 1
    UnitOpenLow,
    /// 0 ≤ x < 1
    UnitOpenHigh,
    /// 0 < x < 1
    UnitOpen,
    /// x ≥ n
    AtLeast(f64),
}

impl Range {
    /// Whether `x` lies in the range (never for NaN or an infinity).
    pub fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Self::Positive => x > 0.0,
                Self::NonNegative => x >= 0.0,
                Self::Unit => (0.0..=1.0).contains(&x),
                Self::UnitOpenLow => x > 0.0 && x <= 1.0,
                Self::UnitOpenHigh => (0.0..1.0).contains(&x),
                Self::UnitOpen => x > 0.0 && x < 1.0,
                Self::AtLeast(n) => x >= n,
            }
    }

    /// The range in words, as an error message says it ("must be …").
    pub fn describe(self) -> String {
        match self {
            Self::Positive => "greater than 0".into(),
            Self::NonNegative => "0 or more".into(),
            Self::Unit => "in [0, 1]".into(),
            Self::UnitOpenLow => "in (0, 1]".into(),
            Self::UnitOpenHigh => "in [0, 1)".into(),
            Self::UnitOpen => "in (0, 1)".into(),
            Self::AtLeast(n) => format!("at least {n}"),
        }
    }
}

/// Whether a shared parameter enters a stage's cache key (`plan::key`).
#[derive(Debug, Clone, Copy)]
pub enum KeyRule {
    /// Always: it changes the stage's output.
    Always,
    /// Never: it does not change the output (checkpoint cadence, where a job runs).
    Never,
    /// Except at this value (as JSON text): how every stage ran before the parameter
    /// existed, so those stages keep their keys.
    OmittedAt(&'static str),
    /// Only when this holds of the stage's parameters (as JSON): the parameter acts only
    /// then.
    OnlyWhen(fn(&serde_json::Map<String, serde_json::Value>) -> bool),
}

/// Whether the reference model is synced and used: `sync_ref_model` > 0 and `beta` > 0.
/// The mixup weight acts only then.
pub fn reference_is_synced(params: &serde_json::Map<String, serde_json::Value>) -> bool {
    let number = |name: &str| params.get(name).and_then(serde_json::Value::as_f64);
    number("sync_ref_model").unwrap_or(0.0) > 0.0 && number("beta").unwrap_or(0.0) > 0.0
}

// The shared parameters, declared once. Each group is a macro that hands its
// declarations to a generator (`GROUP!(generator { context })` expands to
// `generator! { context DECLARATIONS }`); the generators make, from this one list:
// the manifest fields (`stage_config!`, so the JSON Schema), the declared defaults
// (`Defaults::declared`), the range checks (`check::fields`), the cache-key rules
// (`plan::key`) and the resolved settings (`stages::settings`). A declaration:
//
//     /// Doc: the schema's description of the field.
//     manifest_name: Type {
//         default: [value] or [] (each kind that has the group sets it),
//         range: [Range, "hint"] or [] (not a number, or any value),
//         key: KeyRule,
//         resolved: [name in the resolved settings], [name as optional] (an `Option`
//             there, `None` when no one sets it) or [] (resolved by hand),
//     }
//
// A kind's own defaults (`StageConfig::builtin_defaults`) override `default`. Types are
// written in full (the fields are made in every kind's file); defaults, ranges and key
// rules are read only here, by the generators below.

/// The training group: AdamW, schedule, batch and length (TRL's `TrainingArguments`).
macro_rules! training_params {
    ($generator:ident { $($context:tt)* }) => {
        $generator! { $($context)*
            /// Peak learning rate of AdamW.
            learning_rate: f64 {
                default: [],
                range: [
                    Range::Positive,
                    "typical values: 1e-6 (large models, RL) to 1e-3 (tiny models from scratch)"
                ],
                key: KeyRule::Always,
                resolved: [learning_rate],
            }
            /// Schedule after warm-up: `constant`, `linear` or `cosine`.
            lr_scheduler_type: $crate::manifest::params::LrScheduler {
                default: [LrScheduler::Linear],
                range: [],
                key: KeyRule::Always,
                resolved: [scheduler],
            }
            /// Fraction of the steps spent warming the learning rate up from 0, in [0, 1].
            warmup_ratio: f64 {
                default: [0.0],
                range: [Range::Unit, "a fraction of the training steps, e.g. 0.05"],
                key: KeyRule::Always,
                resolved: [warmup_ratio],
            }
            /// AdamW decoupled weight decay.
            weight_decay: f64 {
                default: [0.0],
                range: [Range::NonNegative, "0 disables weight decay"],
                key: KeyRule::Always,
                resolved: [weight_decay],
            }
            /// AdamW β1, in [0, 1).
            adam_beta1: f64 {
                default: [0.9],
                range: [Range::UnitOpenHigh, "the usual value is 0.9"],
                key: KeyRule::Always,
                resolved: [adam_beta1],
            }
            /// AdamW β2, in [0, 1).
            adam_beta2: f64 {
                default: [0.999],
                range: [Range::UnitOpenHigh, "usual values are 0.95 to 0.999"],
                key: KeyRule::Always,
                resolved: [adam_beta2],
            }
            /// Clip the global gradient norm to this value (as PyTorch's
            /// `clip_grad_norm_`); 0 disables clipping.
            max_grad_norm: f64 {
                default: [1.0],
                range: [Range::NonNegative, "0 disables clipping"],
                key: KeyRule::Always,
                resolved: [max_grad_norm],
            }
            /// Sequences per micro-batch (for GRPO: completions, as in TRL).
            per_device_train_batch_size: usize {
                default: [8],
                range: [Range::AtLeast(1.0), "sequences per micro-batch"],
                key: KeyRule::Always,
                resolved: [batch_size],
            }
            /// Micro-batches accumulated per optimizer step.
            gradient_accumulation_steps: usize {
                default: [1],
                range: [Range::AtLeast(1.0), "1 accumulates nothing"],
                key: KeyRule::Always,
                resolved: [accumulation],
            }
            /// Optimizer steps to run; when set it wins over `num_train_epochs`.
            max_steps: u64 {
                default: [],
                range: [Range::AtLeast(1.0), "remove `max_steps` to train for `num_train_epochs`"],
                key: KeyRule::Always,
                resolved: [],
            }
            /// Passes over the training data when `max_steps` is not set.
            num_train_epochs: f64 {
                default: [3.0],
                range: [Range::Positive, "e.g. 1 or 0.5"],
                key: KeyRule::Always,
                resolved: [],
            }
            /// Record metrics every this many steps.
            logging_steps: u64 {
                default: [10],
                range: [Range::AtLeast(1.0), "1 logs every step"],
                key: KeyRule::Always,
                resolved: [logging_steps],
            }
            /// Write a resumable checkpoint every this many steps. Does not change the
            /// stage's result, so it is not part of the cache key.
            save_steps: u64 {
                default: [500],
                range: [Range::AtLeast(1.0), "checkpoint interval in steps"],
                key: KeyRule::Never,
                resolved: [save_steps],
            }
            /// Keep only each decoder layer's input during the forward pass and recompute
            /// the layer in the backward pass (transformers' `gradient_checkpointing`; on
            /// by default in TRL's GRPOConfig): activation memory of one layer instead of
            /// all, for about a third more compute in the update. Default false.
            gradient_checkpointing: bool {
                default: [false],
                range: [],
                // Off is how every stage trained before the setting existed; on, the
                // backward pass sums gradients in another order.
                key: KeyRule::OmittedAt("false"),
                resolved: [gradient_checkpointing],
            }
            /// Train LoRA adapters instead of the weights (PEFT's `LoraConfig` names and
            /// defaults: `r` 8, `alpha` 8, `dropout` 0, `target_modules` `[q_proj, v_proj]`,
            /// `init` true); the base stays frozen and the stage stores the merged model
            /// with the adapter's PEFT files. Not for `pretrain` nor `reward_model`.
            lora: $crate::manifest::LoraSpec {
                default: [],
                range: [],
                // Absent is not serialised, so stages without it keep their keys.
                key: KeyRule::Always,
                // Specs stored before it existed have none.
                resolved: [
                    #[serde(default, skip_serializing_if = "Option::is_none")]
                    lora as optional
                ],
            }
        }
    };
}
pub(crate) use training_params;

/// The generation group: how a stage samples (transformers' `GenerationConfig` names).
macro_rules! generation_params {
    ($generator:ident { $($context:tt)* }) => {
        $generator! { $($context)*
            /// Sampling temperature; 0 samples greedily.
            temperature: f64 {
                default: [1.0],
                range: [Range::NonNegative, "0 samples greedily; 1.0 keeps RL groups diverse"],
                key: KeyRule::Always,
                resolved: [temperature],
            }
            /// Nucleus sampling: keep the smallest set of tokens whose probability reaches
            /// this mass, in (0, 1]; 1 disables it.
            top_p: f64 {
                default: [1.0],
                range: [Range::UnitOpenLow, "1.0 disables nucleus sampling"],
                key: KeyRule::Always,
                resolved: [top_p],
            }
            /// Keep only the k most likely tokens; 0 disables it.
            top_k: usize {
                default: [0],
                range: [],
                key: KeyRule::Always,
                resolved: [top_k],
            }
            /// Prompts longer than this many tokens are truncated from the left.
            max_prompt_length: usize {
                default: [512],
                range: [Range::AtLeast(1.0), "tokens"],
                key: KeyRule::Always,
                resolved: [max_prompt_length],
            }
            /// Most tokens generated per completion.
            max_completion_length: usize {
                default: [256],
                range: [Range::AtLeast(1.0), "tokens"],
                key: KeyRule::Always,
                resolved: [max_completion_length],
            }
            /// Generation stops at any of these strings (and at the end-of-sequence token).
            stop: Vec<String> {
                default: [Vec::new()],
                range: [],
                key: KeyRule::Always,
                resolved: [stop],
            }
        }
    };
}
pub(crate) use generation_params;

/// The policy group: GRPO and its variants (TRL's `GRPOConfig` names and defaults).
macro_rules! policy_params {
    ($generator:ident { $($context:tt)* }) => {
        $generator! { $($context)*
            /// Completions sampled per prompt (the group size G); at least 2.
            num_generations: usize {
                default: [8],
                range: [
                    Range::AtLeast(2.0),
                    "GRPO compares completions within a group: use 2 or more (TRL's default is 8)"
                ],
                key: KeyRule::Always,
                resolved: [num_generations],
            }
            /// KL coefficient against the reference model (k3 estimator); 0 loads no
            /// reference model.
            beta: f64 {
                default: [0.0],
                range: [
                    Range::NonNegative,
                    "0 disables the KL term (and loads no reference model)"
                ],
                key: KeyRule::Always,
                resolved: [beta],
            }
            /// Lower clipping range of the probability ratio: clip(ρ, 1 − epsilon, …).
            epsilon: f64 {
                default: [0.2],
                range: [Range::UnitOpen, "the usual clip range is 0.2"],
                key: KeyRule::Always,
                resolved: [epsilon],
            }
            /// Upper clipping range (DAPO's clip-higher); defaults to `epsilon`.
            epsilon_high: f64 {
                // Check copies `epsilon` into it when the stage leaves it out.
                default: [],
                range: [Range::UnitOpen, "DAPO uses 0.28"],
                key: KeyRule::Always,
                resolved: [epsilon_high],
            }
            /// Policy updates per generated batch (μ).
            num_iterations: usize {
                default: [1],
                range: [Range::AtLeast(1.0), "policy updates per generated batch; 1 is on-policy"],
                key: KeyRule::Always,
                resolved: [num_iterations],
            }
            /// Advantage scaling: `group`, `batch` or `none`.
            scale_rewards: $crate::manifest::params::ScaleRewards {
                default: [ScaleRewards::Group],
                range: [],
                key: KeyRule::Always,
                resolved: [scale_rewards],
            }
            /// Loss aggregation: `grpo`, `dr_grpo`, `dapo` or `bnpo`.
            loss_type: $crate::manifest::params::LossType {
                default: [LossType::Grpo],
                range: [],
                key: KeyRule::Always,
                resolved: [loss_type],
            }
            /// Exclude completions cut off at `max_completion_length` from the loss.
            mask_truncated_completions: bool {
                default: [false],
                range: [],
                key: KeyRule::Always,
                resolved: [mask_truncated_completions],
            }
            /// Where the ratio is taken and clipped: `token` (GRPO) or `sequence` (GSPO: one
            /// length-normalised ratio per completion). GSPO's paper clips far tighter,
            /// e.g. `epsilon: 3e-4`, `epsilon_high: 4e-4`.
            importance_sampling_level: $crate::manifest::params::ImportanceSamplingLevel {
                default: [ImportanceSamplingLevel::Token],
                range: [],
                // Token ratios are how every policy stage trained before GSPO's existed.
                key: KeyRule::OmittedAt("\"token\""),
                // Specs stored before it existed trained with token ratios.
                resolved: [#[serde(default)] importance_sampling_level],
            }
            /// DAPO's dynamic sampling: drop the groups whose `metric` reward is the same for
            /// every completion (they have no advantage) and sample new prompts in their
            /// place, for at most `max_rounds` rounds per step.
            dynamic_sampling: $crate::manifest::DynamicSampling {
                default: [],
                range: [],
                key: KeyRule::Always,
                // Specs stored before it existed have none.
                resolved: [
                    #[serde(default, skip_serializing_if = "Option::is_none")]
                    dynamic_sampling as optional
                ],
            }
            /// Mix the policy into the reference model every this many steps (TRL's
            /// `sync_ref_model` with `ref_model_sync_steps`): ref ← α·policy + (1 − α)·ref
            /// with α = `ref_model_mixup_alpha`; 0 never. Only matters when `beta` > 0.
            sync_ref_model: u64 {
                default: [0],
                range: [],
                key: KeyRule::Always,
                resolved: [sync_ref_model],
            }
            /// The policy's share α when the reference model is synced, in [0, 1] (TRL's
            /// default 0.6); 1 copies the policy.
            ref_model_mixup_alpha: f64 {
                default: [0.6],
                range: [
                    Range::Unit,
                    "TRL's default is 0.6; 1 copies the policy into the reference model"
                ],
                key: KeyRule::OnlyWhen(reference_is_synced),
                resolved: [ref_model_mixup_alpha],
            }
        }
    };
}
pub(crate) use policy_params;

/// The resources group: what a stage's job asks a cluster for.
macro_rules! resources_params {
    ($generator:ident { $($context:tt)* }) => {
        $generator! { $($context)*
            /// What the stage's job asks a cluster for under `--executor slurm` (GPUs,
            /// CPUs, memory, time limit). Not part of the cache key.
            resources: $crate::manifest::Resources {
                default: [],
                range: [],
                key: KeyRule::Never,
                resolved: [],
            }
        }
    };
}
pub(crate) use resources_params;

/// What `check` and `plan` read of a shared parameter's declaration.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    /// Its name in the manifest.
    pub name: &'static str,
    /// The range its value must lie in, and the hint an error gives, if it has one.
    pub range: Option<(Range, &'static str)>,
    /// Whether it enters the cache key.
    pub key: KeyRule,
}

/// `Some` of what it is given, or `None`.
macro_rules! optional {
    () => {
        None
    };
    ($($value:tt)+) => {
        Some(($($value)+))
    };
}

/// A group's declarations as `Declared` (generator of the group macros).
macro_rules! declared {
    ($(
        $(#[doc = $doc:literal])* $field:ident : $ty:ty {
            default: $default:tt,
            range: [$($range:expr, $hint:literal)?],
            key: $key:expr,
            resolved: $resolved:tt,
        }
    )*) => {
        &[$(
            Declared {
                name: stringify!($field),
                range: optional!($($range, $hint)?),
                key: $key,
            },
        )*]
    };
}

/// Every shared parameter, in declaration order.
pub fn declared_parameters() -> impl Iterator<Item = &'static Declared> {
    const GROUPS: [&[Declared]; 4] = [
        training_params!(declared {}),
        generation_params!(declared {}),
        policy_params!(declared {}),
        resources_params!(declared {}),
    ];
    GROUPS.into_iter().flatten()
}

/// Splices the shared parameter groups into a stage config struct, as optional fields
/// (`check` fills what the stage leaves out), and gives the struct `shared()`: those
/// fields as a `Defaults`, which `stages::settings` resolves.
///
/// `stage_config! { #[attrs] pub struct X { own fields, } [training, generation, policy, resources] }`
macro_rules! stage_config {
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* } [$($group:ident),*]) => {
        $crate::manifest::params::stage_config!(
            @splice [$(#[$meta])*] $name [$($own)*] [] [$($group)*]
        );
    };
    (@splice $meta:tt $name:ident $fields:tt $shared:tt [training $($rest:ident)*]) => {
        $crate::manifest::params::training_params!(
            stage_config { @group $meta $name $fields $shared [$($rest)*] shared }
        );
    };
    (@splice $meta:tt $name:ident $fields:tt $shared:tt [generation $($rest:ident)*]) => {
        $crate::manifest::params::generation_params!(
            stage_config { @group $meta $name $fields $shared [$($rest)*] shared }
        );
    };
    (@splice $meta:tt $name:ident $fields:tt $shared:tt [policy $($rest:ident)*]) => {
        $crate::manifest::params::policy_params!(
            stage_config { @group $meta $name $fields $shared [$($rest)*] shared }
        );
    };
    // Not a `Defaults` field: where a stage runs is set per stage.
    (@splice $meta:tt $name:ident $fields:tt $shared:tt [resources $($rest:ident)*]) => {
        $crate::manifest::params::resources_params!(
            stage_config { @group $meta $name $fields $shared [$($rest)*] own }
        );
    };
    // A `Defaults` group: its fields are also what `shared()` copies.
    (@group $meta:tt $name:ident [$($fields:tt)*] [$($shared:ident)*] $rest:tt shared
        $( $(#[doc = $doc:literal])* $field:ident : $ty:ty { $($declaration:tt)* } )*
    ) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        ] [$($shared)* $($field)*] $rest);
    };
    (@group $meta:tt $name:ident [$($fields:tt)*] $shared:tt $rest:tt own
        $( $(#[doc = $doc:literal])* $field:ident : $ty:ty { $($declaration:tt)* } )*
    ) => {
        $crate::manifest::params::stage_config!(@splice $meta $name [$($fields)*
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        ] $shared $rest);
    };
    (@splice [$($meta:tt)*] $name:ident [$($fields:tt)*] [$($shared:ident)*] []) => {
        $($meta)*
        pub struct $name { $($fields)* }

        impl $name {
            /// The shared parameters this config has (as `check` filled them), as
            /// `Defaults`: what `stages::settings` resolves.
            #[allow(clippy::needless_update)]
            pub fn shared(&self) -> $crate::manifest::Defaults {
                $crate::manifest::Defaults {
                    $($shared: self.$shared.clone(),)*
                    ..$crate::manifest::Defaults::default()
                }
            }
        }
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

/// Sets each declared default on `defaults` (generator of the group macros).
macro_rules! set_declared_defaults {
    ($defaults:ident
        $( $(#[doc = $doc:literal])* $field:ident : $ty:ty {
            default: [$($default:expr)?],
            $($declaration:tt)*
        } )*
    ) => {
        $( $( $defaults.$field = Some($default); )? )*
    };
}

/// Copies into `target` each parameter it leaves unset from `source` (generator of the
/// group macros).
macro_rules! fill_unset {
    ($target:ident $source:ident
        $( $(#[doc = $doc:literal])* $field:ident : $ty:ty { $($declaration:tt)* } )*
    ) => {
        $(
            if $target.$field.is_none() {
                $target.$field = $source.$field.clone();
            }
        )*
    };
}

impl Defaults {
    /// The declared default of every shared parameter that has one: the value a stage
    /// gets when neither it, the manifest's `defaults:` nor its kind sets the parameter.
    pub fn declared() -> Self {
        let mut defaults = Self::default();
        training_params!(set_declared_defaults { defaults });
        generation_params!(set_declared_defaults { defaults });
        policy_params!(set_declared_defaults { defaults });
        defaults
    }

    /// These values, with `fallback`'s for the parameters these leave unset.
    pub fn or(self, fallback: &Defaults) -> Self {
        let mut values = self;
        training_params!(fill_unset { values fallback });
        generation_params!(fill_unset { values fallback });
        policy_params!(fill_unset { values fallback });
        values
    }
}
