//! Stage kind `reward_model`: a scalar-head model trained on preference pairs with the
//! Bradley–Terry loss, for the `model` reward of RLHF.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Input, Need, Output, StageConfig};
use crate::check::FieldChecks;
use crate::manifest::params::stage_config;
use crate::manifest::Defaults;

stage_config! {
    /// `kind: reward_model` — a backbone with a scalar head, trained so that
    /// score(chosen) > score(rejected); reports pair accuracy on the test split.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RewardModelStage {
        /// The backbone: any model.
        pub from: String,
        /// Preference pairs (prompt, chosen, rejected).
        pub data: String,
        /// Training sequence length in tokens (prompt + completion). Default 1024.
        #[serde(default = "RewardModelStage::default_max_seq_length")]
        pub max_seq_length: usize,
        /// Seed of the head's initialisation and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
    }
    [training]
}

impl RewardModelStage {
    fn default_max_seq_length() -> usize {
        1024
    }
}

impl StageConfig for RewardModelStage {
    const KIND: &'static str = "reward_model";
    const IMPLEMENTATION: u32 = 1;

    fn inputs(&self) -> Vec<Input<'_>> {
        vec![
            Input {
                field: "from",
                name: &self.from,
                need: Need::ModelInit,
            },
            Input {
                field: "data",
                name: &self.data,
                need: Need::Preferences,
            },
        ]
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::RewardModel
    }

    /// TRL `RewardConfig` (transformers `TrainingArguments`) defaults.
    fn builtin_defaults() -> Defaults {
        Defaults::trl_training(5e-5, 1.0)
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            self.max_seq_length >= 2,
            "max_seq_length",
            "`max_seq_length` must be at least 2",
            "a scored sequence needs two tokens or more",
        );
    }
}
