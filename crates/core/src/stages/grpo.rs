//! Stage kind `grpo`: Group Relative Policy Optimization with rule-based rewards — R1-Zero's
//! RL on a base model and R1's reasoning RL.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::settings::{generation_settings, policy_settings, training_settings};
use super::InputField;
use super::{
    FieldChecks, GenerationSettings, Input, Need, Output, PolicySettings, RewardRefs, RewardRole,
    Sequences, StageConfig, TrainingSettings, Unset,
};
use crate::manifest::params::{
    stage_config, ImportanceSamplingLevel, LossType, LrScheduler, ScaleRewards,
};
use crate::manifest::Defaults;

stage_config! {
    /// `kind: grpo` — sample `num_generations` completions per prompt, score them with the
    /// weighted rewards, and push the policy towards the better ones of each group.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct GrpoStage {
        /// The policy to train.
        pub from: String,
        /// The prompts to sample on (train split).
        pub prompts: String,
        /// Rewards by name with their weights (TRL `reward_funcs` + `reward_weights`); the
        /// reward is their weighted sum. Names are declared under `rewards:` or built in
        /// (`accuracy`, `format`, `tag_count`, `language`, `length`).
        pub rewards: IndexMap<String, f64>,
        /// The frozen reference model for the KL term; defaults to `from`. Unused when
        /// `beta` is 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<String>,
        /// Seed of sampling and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
    }
    [training, generation, policy, resources]
}

/// TRL `GRPOConfig` defaults, shared by `grpo` and `rlhf`.
pub(super) fn policy_defaults() -> Defaults {
    Defaults {
        learning_rate: Some(1e-6),
        lr_scheduler_type: Some(LrScheduler::Linear),
        warmup_ratio: Some(0.0),
        weight_decay: Some(0.0),
        adam_beta1: Some(0.9),
        adam_beta2: Some(0.999),
        max_grad_norm: Some(1.0),
        per_device_train_batch_size: Some(8),
        gradient_accumulation_steps: Some(1),
        num_train_epochs: Some(1.0),
        logging_steps: Some(1),
        save_steps: Some(50),
        gradient_checkpointing: Some(false),
        temperature: Some(1.0),
        top_p: Some(1.0),
        top_k: Some(0),
        max_prompt_length: Some(512),
        max_completion_length: Some(256),
        stop: Some(Vec::new()),
        num_generations: Some(8),
        beta: Some(0.0),
        epsilon: Some(0.2),
        num_iterations: Some(1),
        scale_rewards: Some(ScaleRewards::Group),
        loss_type: Some(LossType::Grpo),
        mask_truncated_completions: Some(false),
        importance_sampling_level: Some(ImportanceSamplingLevel::Token),
        sync_ref_model: Some(0),
        ref_model_mixup_alpha: Some(0.6),
        ..Defaults::default()
    }
}

impl StageConfig for GrpoStage {
    const KIND: &'static str = "grpo";
    const IMPLEMENTATION: u32 = 2;
    const TRAINS: bool = true;
    type Resolved = Grpo;

    fn sequences(resolved: &Grpo) -> Option<Sequences<'_>> {
        Some(Sequences::Generated(&resolved.generation))
    }

    fn inputs(&self) -> Vec<Input<'_>> {
        let mut inputs = vec![
            Input {
                field: InputField::From,
                name: &self.from,
                need: Need::Model,
            },
            Input {
                field: InputField::Prompts,
                name: &self.prompts,
                need: Need::Prompts,
            },
        ];
        if let Some(reference) = &self.reference {
            inputs.push(Input {
                field: InputField::Reference,
                name: reference,
                need: Need::Model,
            });
        }
        inputs
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::Model
    }

    fn rewards(&self) -> Vec<RewardRefs<'_>> {
        vec![RewardRefs {
            field: "rewards",
            rewards: &self.rewards,
            role: RewardRole::Weights,
        }]
    }

    fn builtin_defaults() -> Defaults {
        policy_defaults()
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            !self.rewards.is_empty(),
            "rewards",
            "a grpo stage needs at least one reward",
            "add e.g. `rewards: {accuracy: 1.0, format: 1.0}`",
        );
    }

    fn resolve(&self) -> Result<Grpo, Unset> {
        Ok(Grpo {
            rewards: self.rewards.clone(),
            training: training_settings!(self),
            generation: generation_settings!(self),
            policy: policy_settings!(self),
            seed: super::required(self.seed, "seed")?,
        })
    }
}

/// A checked `grpo` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grpo {
    /// Reward names → weights; the reward is their weighted sum.
    pub rewards: IndexMap<String, f64>,
    pub training: TrainingSettings,
    pub generation: GenerationSettings,
    pub policy: PolicySettings,
    pub seed: u64,
}
