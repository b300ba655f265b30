//! Check (resolved settings): the parameter groups several stage kinds share — training,
//! generation, policy optimisation — as `check` hands them to execution: plain values
//! with every default applied, no `Option` where the manifest had a default. A stage kind
//! resolves its config into these once, at check time; nothing below re-reads the
//! manifest's optional fields.

use serde::{Deserialize, Serialize};

use crate::manifest::{
    DynamicSampling, ImportanceSamplingLevel, LossType, LrScheduler, ScaleRewards,
};

/// A field that has no value after defaults were applied: neither the stage, nor
/// `defaults:`, nor the kind's built-in defaults set it. `check` reports it at the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unset {
    pub field: &'static str,
}

/// `value`, or the field it belongs to as `Unset`.
pub fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Unset> {
    value.ok_or(Unset { field })
}

/// How long a training stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingLength {
    /// `max_steps`: exactly this many optimizer steps.
    MaxSteps(u64),
    /// `num_train_epochs` passes over the training data.
    Epochs(f64),
}

/// AdamW, schedule, batch and length settings of a training stage (TRL's
/// `TrainingArguments` names in the manifest; short names here). Ranges are checked: batch
/// sizes, accumulation, logging and save intervals are at least 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSettings {
    pub learning_rate: f64,
    pub scheduler: LrScheduler,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    /// 0 disables clipping.
    pub max_grad_norm: f64,
    /// Sequences per micro-batch (`per_device_train_batch_size`; for GRPO, completions).
    pub batch_size: usize,
    /// Micro-batches per optimizer step (`gradient_accumulation_steps`).
    pub accumulation: usize,
    pub length: TrainingLength,
    pub logging_steps: u64,
    pub save_steps: u64,
    /// Recompute each decoder layer in the backward pass instead of keeping its
    /// activations.
    pub gradient_checkpointing: bool,
}

impl TrainingSettings {
    /// Optimizer steps for `units` training units (examples, or prompts for GRPO) of which
    /// a step consumes `per_step`: `max_steps`, else epochs over the units, at least 1.
    pub fn total_steps(&self, units: usize, per_step: usize) -> u64 {
        match self.length {
            TrainingLength::MaxSteps(steps) => steps,
            TrainingLength::Epochs(epochs) => ((units as f64 * epochs) / per_step.max(1) as f64)
                .ceil()
                .max(1.0) as u64,
        }
    }

    /// Sequences per optimizer step.
    pub fn sequences_per_step(&self) -> usize {
        self.batch_size * self.accumulation
    }
}

/// Sampling settings of a stage that generates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSettings {
    /// 0 samples greedily.
    pub temperature: f64,
    /// In (0, 1]; 1 disables nucleus sampling.
    pub top_p: f64,
    /// 0 disables top-k.
    pub top_k: usize,
    pub max_prompt_length: usize,
    pub max_completion_length: usize,
    pub stop: Vec<String>,
}

/// Policy-optimisation settings of `grpo` and `rlhf` (TRL's `GRPOConfig` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySettings {
    /// The group size G, at least 2.
    pub num_generations: usize,
    pub beta: f64,
    pub epsilon: f64,
    /// `epsilon` unless the stage sets it.
    pub epsilon_high: f64,
    /// At least 1.
    pub num_iterations: usize,
    pub scale_rewards: ScaleRewards,
    pub loss_type: LossType,
    pub mask_truncated_completions: bool,
    /// Token (GRPO) or sequence (GSPO) ratios. Specs stored before it existed trained
    /// with token ratios.
    #[serde(default)]
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// DAPO's dynamic sampling, when the stage asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_sampling: Option<DynamicSampling>,
    /// Mix the policy into the reference model every this many steps; 0 never.
    pub sync_ref_model: u64,
    /// The policy's share in that mix: ref ← α·policy + (1 − α)·ref.
    pub ref_model_mixup_alpha: f64,
}

/// Resolves the `training` group of a stage config (spliced by `stage_config!`).
macro_rules! training_settings {
    ($config:expr) => {{
        use $crate::stages::settings::required;
        $crate::stages::TrainingSettings {
            learning_rate: required($config.learning_rate, "learning_rate")?,
            scheduler: required($config.lr_scheduler_type, "lr_scheduler_type")?,
            warmup_ratio: required($config.warmup_ratio, "warmup_ratio")?,
            weight_decay: required($config.weight_decay, "weight_decay")?,
            adam_beta1: required($config.adam_beta1, "adam_beta1")?,
            adam_beta2: required($config.adam_beta2, "adam_beta2")?,
            max_grad_norm: required($config.max_grad_norm, "max_grad_norm")?,
            batch_size: required(
                $config.per_device_train_batch_size,
                "per_device_train_batch_size",
            )?,
            accumulation: required(
                $config.gradient_accumulation_steps,
                "gradient_accumulation_steps",
            )?,
            length: match $config.max_steps {
                Some(steps) => $crate::stages::TrainingLength::MaxSteps(steps),
                None => $crate::stages::TrainingLength::Epochs(required(
                    $config.num_train_epochs,
                    "num_train_epochs",
                )?),
            },
            logging_steps: required($config.logging_steps, "logging_steps")?,
            save_steps: required($config.save_steps, "save_steps")?,
            gradient_checkpointing: required(
                $config.gradient_checkpointing,
                "gradient_checkpointing",
            )?,
        }
    }};
}
pub(crate) use training_settings;

/// Resolves the `generation` group of a stage config.
macro_rules! generation_settings {
    ($config:expr) => {{
        use $crate::stages::settings::required;
        $crate::stages::GenerationSettings {
            temperature: required($config.temperature, "temperature")?,
            top_p: required($config.top_p, "top_p")?,
            top_k: required($config.top_k, "top_k")?,
            max_prompt_length: required($config.max_prompt_length, "max_prompt_length")?,
            max_completion_length: required(
                $config.max_completion_length,
                "max_completion_length",
            )?,
            stop: required($config.stop.clone(), "stop")?,
        }
    }};
}
pub(crate) use generation_settings;

/// Resolves the `policy` group of a stage config.
macro_rules! policy_settings {
    ($config:expr) => {{
        use $crate::stages::settings::required;
        $crate::stages::PolicySettings {
            num_generations: required($config.num_generations, "num_generations")?,
            beta: required($config.beta, "beta")?,
            epsilon: required($config.epsilon, "epsilon")?,
            // Check fills it from `epsilon` when the stage leaves it out.
            epsilon_high: required($config.epsilon_high, "epsilon_high")?,
            num_iterations: required($config.num_iterations, "num_iterations")?,
            scale_rewards: required($config.scale_rewards, "scale_rewards")?,
            loss_type: required($config.loss_type, "loss_type")?,
            mask_truncated_completions: required(
                $config.mask_truncated_completions,
                "mask_truncated_completions",
            )?,
            importance_sampling_level: required(
                $config.importance_sampling_level,
                "importance_sampling_level",
            )?,
            dynamic_sampling: $config.dynamic_sampling.clone(),
            sync_ref_model: required($config.sync_ref_model, "sync_ref_model")?,
            ref_model_mixup_alpha: required(
                $config.ref_model_mixup_alpha,
                "ref_model_mixup_alpha",
            )?,
        }
    }};
}
pub(crate) use policy_settings;

#[cfg(test)]
mod tests {
    use crate::check::{check_document, Capabilities};
    use crate::diag::{render_all, SourceFile};
    use crate::stages::ResolvedStage;
    use crate::syntax::parse;

    /// Every kind, written with only its required fields: the built-in defaults must
    /// leave no setting unresolved.
    const EVERY_KIND: &str = r#"
name: every-kind
models:
  tiny: {preset: tiny}
datasets:
  arith: {kind: arithmetic}
  prefs: {kind: jsonl, path: prefs.jsonl, format: preferences}
stages:
  tasks: {kind: dataset, source: arith}
  base: {kind: pretrain, from: tiny, data: tasks}
  tuned: {kind: sft, from: base, data: tasks}
  rl: {kind: grpo, from: tuned, prompts: tasks, rewards: {accuracy: 1.0}}
  kept: {kind: rejection_sampling, from: rl, prompts: tasks, thresholds: {accuracy: 1.0}}
  judge: {kind: reward_model, from: base, data: prefs}
  human: {kind: rlhf, from: rl, prompts: tasks, rewards: {accuracy: 1.0}, reward_model: judge}
  student: {kind: distill, student: tiny, data: kept}
  scores: {kind: eval, from: human, prompts: tasks}
  out: {kind: export, from: student}
"#;

    #[test]
    fn every_kind_resolves_from_its_built_in_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("prefs.jsonl"),
            "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n",
        )
        .expect("write");
        let path = dir.path().join("m.yaml");
        let doc = parse(SourceFile::new(path.display().to_string(), EVERY_KIND))
            .unwrap_or_else(|d| panic!("{}", render_all(&d)));
        let checked = check_document(&doc, &Capabilities::any());
        assert!(
            !checked.has_errors(),
            "{}",
            render_all(&checked.diagnostics)
        );
        let stages = &checked.pipelines[0].stages;
        // Ten declared, and the implicit dataset stage of `prefs`.
        assert_eq!(stages.len(), 11);
        let ResolvedStage::Grpo(rl) = &stages["rl"].resolved else {
            panic!("rl is a grpo stage");
        };
        // TRL's GRPOConfig defaults, and clip-higher defaulting to a symmetric range.
        assert_eq!(rl.policy.num_generations, 8);
        assert_eq!(rl.policy.epsilon_high, rl.policy.epsilon);
        assert_eq!(rl.policy.sync_ref_model, 0);
        assert_eq!(rl.generation.top_k, 0);
    }
}
