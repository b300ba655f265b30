//! Stage kind `grpo`: Group Relative Policy Optimization with rule-based rewards — R1-Zero's
//! RL on a base model and R1's reasoning RL.

use indexmap::IndexMap;

use super::kind_config::kind_config;
use super::{FieldChecks, InputField, KindChecks, Need, Output, RewardRole};
use crate::manifest::Defaults;

kind_config! {
    kind = "grpo", implementation = 4, trains, output = Output::Model, defaults = policy_defaults();

    /// `kind: grpo` — sample `num_generations` completions per prompt, score them with the
    /// weighted rewards, and push the policy towards the better ones of each group.
    pub struct GrpoStage {
        /// The policy to train.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// The prompts to sample on (train split).
        #[input(InputField::Prompts, Need::Prompts)]
        pub prompts: String,
        /// Rewards by name with their weights (TRL `reward_funcs` + `reward_weights`); the
        /// reward is their weighted sum. Names are declared under `rewards:` or built in
        /// (`accuracy`, `format`, `tag_count`, `language`, `length`).
        #[rewards(RewardRole::Weights)]
        pub rewards: IndexMap<String, f64>,
        /// The frozen reference model for the KL term; defaults to `from`. Unused when
        /// `beta` is 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[input(InputField::Reference, Need::Model)]
        pub reference: Option<String>,
        /// Seed of sampling and data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, generation, policy, resources]

    /// A checked `grpo` stage.
    resolved pub struct Grpo;
}

impl KindChecks for GrpoStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            !self.rewards.is_empty(),
            "rewards",
            "a grpo stage needs at least one reward",
            "add e.g. `rewards: {accuracy: 1.0, format: 1.0}`",
        );
    }
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
