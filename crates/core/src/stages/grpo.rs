//! Stage kind `grpo`: Group Relative Policy Optimization with rule-based rewards — R1-Zero's
//! RL on a base model and R1's reasoning RL.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InputField;
use super::{
    FieldChecks, GenerationSettings, Input, Need, Output, PolicySettings, RewardRefs, RewardRole,
    Sequences, StageConfig, TrainingSettings, Unset,
};
use crate::manifest::params::stage_config;
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

/// TRL `GRPOConfig`'s training defaults, shared by `grpo` and `rlhf` (its generation and
/// policy defaults are the declared ones).
pub(super) fn policy_defaults() -> Defaults {
    Defaults {
        learning_rate: Some(1e-6),
        num_train_epochs: Some(1.0),
        logging_steps: Some(1),
        save_steps: Some(50),
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
        let mut inputs = Input::sampling(&self.from, &self.prompts);
        inputs.extend(Input::optional(
            InputField::Reference,
            &self.reference,
            Need::Model,
        ));
        inputs
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::Model
    }

    fn rewards(&self) -> Vec<RewardRefs<'_>> {
        vec![RewardRefs::new(
            "rewards",
            &self.rewards,
            RewardRole::Weights,
        )]
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
        let shared = self.shared();
        Ok(Grpo {
            rewards: self.rewards.clone(),
            training: shared.training()?,
            generation: shared.generation()?,
            policy: shared.policy()?,
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
