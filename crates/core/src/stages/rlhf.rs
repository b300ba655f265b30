//! Stage kind `rlhf`: R1's second RL phase — the GRPO machinery with rule rewards for
//! reasoning prompts (those with a reference answer) and a reward model for general ones.

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
    /// `kind: rlhf` — GRPO whose reward depends on the prompt's type: a prompt with a
    /// reference answer (reasoning) is scored by `rewards`; one without (general) by the
    /// reward model plus `general_rewards`. Logs `reward/reasoning`, `reward/general` and
    /// each kind's rewards as `reward/KIND/NAME`.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RlhfStage {
        /// The policy to train.
        pub from: String,
        /// The prompts: those with a reference answer are reasoning prompts, the rest
        /// general prompts.
        pub prompts: String,
        /// Rewards (name → weight) for reasoning prompts: the rule rewards.
        pub rewards: IndexMap<String, f64>,
        /// The `reward_model` stage that scores general prompts (weight 1; logged as
        /// `reward/general/reward_model`).
        pub reward_model: String,
        /// Extra rewards (name → weight) added to the reward model's score on general
        /// prompts, e.g. `format` or `language`. A `model` reward of the same
        /// `reward_model` stage listed here replaces the weight-1 term with its weight.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        pub general_rewards: IndexMap<String, f64>,
        /// The frozen reference model for the KL term; defaults to `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<String>,
        /// Seed of sampling and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
    }
    [training, generation, policy, resources]
}

impl StageConfig for RlhfStage {
    const KIND: &'static str = "rlhf";
    const IMPLEMENTATION: u32 = 3;
    const TRAINS: bool = true;
    type Resolved = Rlhf;

    fn sequences(resolved: &Rlhf) -> Option<Sequences<'_>> {
        Some(Sequences::Generated(&resolved.generation))
    }

    fn inputs(&self) -> Vec<Input<'_>> {
        let mut inputs = Input::sampling(&self.from, &self.prompts);
        inputs.push(Input::new(
            InputField::RewardModel,
            &self.reward_model,
            Need::RewardModel,
        ));
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
        vec![
            RewardRefs::new("rewards", &self.rewards, RewardRole::Weights),
            RewardRefs::new(
                "general_rewards",
                &self.general_rewards,
                RewardRole::OptionalWeights,
            ),
        ]
    }

    fn builtin_defaults() -> Defaults {
        super::grpo::policy_defaults()
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            !self.rewards.is_empty(),
            "rewards",
            "an rlhf stage needs rule rewards for its reasoning prompts",
            "add e.g. `rewards: {accuracy: 1.0, format: 1.0}`",
        );
    }

    fn resolve(&self) -> Result<Rlhf, Unset> {
        let shared = self.shared();
        Ok(Rlhf {
            rewards: self.rewards.clone(),
            general_rewards: self.general_rewards.clone(),
            training: shared.training()?,
            generation: shared.generation()?,
            policy: shared.policy()?,
            seed: super::required(self.seed, "seed")?,
        })
    }
}

/// A checked `rlhf` stage; its reward model is input `reward_model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlhf {
    /// Rule rewards (name → weight) of reasoning prompts.
    pub rewards: IndexMap<String, f64>,
    /// Rewards added to the reward model's score on general prompts.
    pub general_rewards: IndexMap<String, f64>,
    pub training: TrainingSettings,
    pub generation: GenerationSettings,
    pub policy: PolicySettings,
    pub seed: u64,
}
