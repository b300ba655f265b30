//! Stage kind `rlhf`: R1's second RL phase — the GRPO machinery with rule rewards for
//! reasoning prompts (those with a reference answer) and a reward model for general ones.

use indexmap::IndexMap;

use super::grpo::policy_defaults;
use super::kind_config::kind_config;
use super::{FieldChecks, InputField, KindChecks, Need, Output, RewardRole};

kind_config! {
    kind = "rlhf", implementation = 5, trains, output = Output::Model, defaults = policy_defaults();

    /// `kind: rlhf` — GRPO whose reward depends on the prompt's type: a prompt with a
    /// reference answer (reasoning) is scored by `rewards`; one without (general) by the
    /// reward model plus `general_rewards`. Logs `reward/reasoning`, `reward/general` and
    /// each kind's rewards as `reward/KIND/NAME`.
    pub struct RlhfStage {
        /// The policy to train.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// The prompts: those with a reference answer are reasoning prompts, the rest
        /// general prompts.
        #[input(InputField::Prompts, Need::Prompts)]
        pub prompts: String,
        /// Rewards (name → weight) for reasoning prompts: the rule rewards.
        #[rewards(RewardRole::Weights)]
        pub rewards: IndexMap<String, f64>,
        /// The `reward_model` stage that scores general prompts (weight 1; logged as
        /// `reward/general/reward_model`).
        #[input(InputField::RewardModel, Need::RewardModel)]
        pub reward_model: String,
        /// Extra rewards (name → weight) added to the reward model's score on general
        /// prompts, e.g. `format` or `language`. A `model` reward of the same
        /// `reward_model` stage listed here replaces the weight-1 term with its weight.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        #[rewards(RewardRole::OptionalWeights)]
        pub general_rewards: IndexMap<String, f64>,
        /// The frozen reference model for the KL term; defaults to `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[input(InputField::Reference, Need::Model)]
        pub reference: Option<String>,
        /// Seed of sampling and data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, generation, policy, resources]

    /// A checked `rlhf` stage; its reward model is input `reward_model`.
    resolved pub struct Rlhf;
}

impl KindChecks for RlhfStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            !self.rewards.is_empty(),
            "rewards",
            "an rlhf stage needs rule rewards for its reasoning prompts",
            "add e.g. `rewards: {accuracy: 1.0, format: 1.0}`",
        );
    }
}
