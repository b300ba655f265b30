//! Stage kind `rlhf`: R1's second RL phase — the GRPO machinery with rule rewards for
//! reasoning prompts (those with a reference answer) and a reward model for general ones.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Input, Need, Output, RewardRefs, RewardRole, StageConfig};
use crate::check::FieldChecks;
use crate::manifest::params::stage_config;
use crate::manifest::Defaults;

stage_config! {
    /// `kind: rlhf` — policy optimisation whose reward depends on the prompt's type.
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
        /// The `reward_model` stage that scores general prompts.
        pub reward_model: String,
        /// Extra rewards (name → weight) added to the reward model's score on general
        /// prompts, e.g. `format` or `language`.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        pub general_rewards: IndexMap<String, f64>,
        /// The frozen reference model for the KL term; defaults to `from`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<String>,
        /// Seed of sampling and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
    }
    [training, generation, policy]
}

impl StageConfig for RlhfStage {
    const KIND: &'static str = "rlhf";
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
            Input {
                field: "reward_model",
                name: &self.reward_model,
                need: Need::RewardModel,
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
        vec![
            RewardRefs {
                field: "rewards",
                rewards: &self.rewards,
                role: RewardRole::Weights,
            },
            RewardRefs {
                field: "general_rewards",
                rewards: &self.general_rewards,
                role: RewardRole::OptionalWeights,
            },
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
}
