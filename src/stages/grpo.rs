//! Stage kind `grpo`: Group Relative Policy Optimization with rule-based rewards — R1-Zero's
//! RL on a base model and R1's reasoning RL.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Input, Need, Output, RewardRefs, RewardRole, StageConfig};
use crate::check::FieldChecks;
use crate::exec::{StageContext, StageError, StageOutput};
use crate::manifest::params::{stage_config, LossType, LrScheduler, ScaleRewards};
use crate::manifest::Defaults;
use crate::train::{self, training_hyper, GrpoJob, GrpoTask, PolicyRewards};

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
    [training, generation, policy]
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
        sync_ref_model: Some(0),
        ..Defaults::default()
    }
}

impl StageConfig for GrpoStage {
    const KIND: &'static str = "grpo";
    const IMPLEMENTATION: u32 = 1;

    fn inputs(&self) -> Vec<Input<'_>> {
        let mut inputs = vec![
            Input {
                field: "from",
                name: &self.from,
                need: Need::Model,
            },
            Input {
                field: "prompts",
                name: &self.prompts,
                need: Need::Prompts,
            },
        ];
        if let Some(reference) = &self.reference {
            inputs.push(Input {
                field: "reference",
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

    fn runnable(&self) -> bool {
        true
    }

    fn run(&self, context: &mut StageContext<'_>) -> Result<StageOutput, StageError> {
        let job = grpo_job(
            policy_fields!(self),
            training_hyper!(self)?,
            PolicyRewards::Same(self.rewards.clone()),
            self.seed,
        )?;
        let numerics = train::stage_numerics(context);
        train::run_on_backend(numerics, GrpoTask { context, job })
    }
}

/// The policy-optimisation fields of a checked `grpo` or `rlhf` stage.
pub(super) struct PolicyFields {
    pub num_generations: Option<usize>,
    pub beta: Option<f64>,
    pub epsilon: Option<f64>,
    pub epsilon_high: Option<f64>,
    pub num_iterations: Option<usize>,
    pub scale_rewards: Option<ScaleRewards>,
    pub loss_type: Option<LossType>,
    pub mask_truncated_completions: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub max_prompt_length: Option<usize>,
    pub max_completion_length: Option<usize>,
    pub stop: Option<Vec<String>>,
}

/// The policy fields of a stage config that has the `generation` and `policy` groups.
macro_rules! policy_fields {
    ($config:expr) => {
        $crate::stages::grpo::PolicyFields {
            num_generations: $config.num_generations,
            beta: $config.beta,
            epsilon: $config.epsilon,
            epsilon_high: $config.epsilon_high,
            num_iterations: $config.num_iterations,
            scale_rewards: $config.scale_rewards,
            loss_type: $config.loss_type,
            mask_truncated_completions: $config.mask_truncated_completions,
            temperature: $config.temperature,
            top_p: $config.top_p,
            top_k: $config.top_k,
            max_prompt_length: $config.max_prompt_length,
            max_completion_length: $config.max_completion_length,
            stop: $config.stop.clone(),
        }
    };
}
pub(super) use policy_fields;

/// A GRPO job from resolved fields (check filled every default).
pub(super) fn grpo_job(
    p: PolicyFields,
    hyper: train::TrainingHyper,
    rewards: PolicyRewards,
    seed: Option<u64>,
) -> Result<GrpoJob, StageError> {
    let missing =
        |field: &str| StageError::Failed(format!("internal: `{field}` was not resolved by check"));
    let epsilon = p.epsilon.ok_or_else(|| missing("epsilon"))?;
    Ok(GrpoJob {
        hyper,
        rewards,
        num_generations: p
            .num_generations
            .ok_or_else(|| missing("num_generations"))?,
        beta: p.beta.ok_or_else(|| missing("beta"))?,
        epsilon,
        epsilon_high: p.epsilon_high.unwrap_or(epsilon),
        num_iterations: p.num_iterations.ok_or_else(|| missing("num_iterations"))?,
        scale_rewards: p.scale_rewards.ok_or_else(|| missing("scale_rewards"))?,
        loss_type: p.loss_type.ok_or_else(|| missing("loss_type"))?,
        mask_truncated_completions: p.mask_truncated_completions.unwrap_or(false),
        temperature: p.temperature.ok_or_else(|| missing("temperature"))?,
        top_p: p.top_p.ok_or_else(|| missing("top_p"))?,
        top_k: p.top_k.unwrap_or(0),
        max_prompt_length: p
            .max_prompt_length
            .ok_or_else(|| missing("max_prompt_length"))?,
        max_completion_length: p
            .max_completion_length
            .ok_or_else(|| missing("max_completion_length"))?,
        stop: p.stop.unwrap_or_default(),
        seed: seed.unwrap_or_default(),
    })
}
