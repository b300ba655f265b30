//! Stage kind `eval`: sample n completions per held-out prompt and compute pass@1, pass@k,
//! cons@k, format rate, language consistency, lengths and each reward; samples are kept.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind_config::{default_usize, kind_config};
use super::rejection_sampling::sampling_defaults;
use super::{FieldChecks, InputField, KindChecks, Need, Output, RewardRole};

/// Which split of the prompts to evaluate on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    Train,
    #[default]
    Test,
}

kind_config! {
    kind = "eval", implementation = 2, runs_model, output = Output::Metrics, defaults = sampling_defaults();

    /// `kind: eval` — metrics of a model on prompts.
    pub struct EvalStage {
        /// The model to evaluate.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// The prompts.
        #[input(InputField::Prompts, Need::Prompts)]
        pub prompts: String,
        /// `test` (default, held out) or `train`.
        #[serde(default)]
        pub split: EvalSplit,
        /// Samples per prompt (n): pass@1 is the mean correctness over them. Default 8.
        #[serde(default = "default_usize::<8>")]
        pub num_samples: usize,
        /// The k of pass@k and cons@k (each ≤ `num_samples`). Default: `num_samples`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[resolved(ks: Vec<usize> = EvalStage::ks)]
        pub k: Vec<usize>,
        /// Rewards reported as `reward/NAME` (name → weight of the reported total).
        /// Default `{accuracy: 1.0, format: 1.0}`.
        #[serde(default = "EvalStage::default_rewards")]
        #[rewards(RewardRole::Weights)]
        pub rewards: IndexMap<String, f64>,
        /// Evaluate at most this many prompts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<usize>,
        /// Seed of sampling; defaults to the manifest's `seed`.
        seed,
    }
    [generation, resources]

    /// A checked `eval` stage.
    resolved pub struct Eval;
}

impl EvalStage {
    fn default_rewards() -> IndexMap<String, f64> {
        IndexMap::from([("accuracy".to_string(), 1.0), ("format".to_string(), 1.0)])
    }

    /// The k of pass@k and cons@k: those written, else `num_samples`.
    fn ks(&self) -> Vec<usize> {
        if self.k.is_empty() {
            vec![self.num_samples]
        } else {
            self.k.clone()
        }
    }
}

impl KindChecks for EvalStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.samples_per_prompt(
            self.num_samples,
            "pass@1 averages over one sample or more per prompt",
            "pass@k is usually measured with up to 64 samples per prompt",
        );
        for (i, k) in self.k.iter().enumerate() {
            checks.ensure(
                *k >= 1 && *k <= self.num_samples,
                &format!("k[{i}]"),
                format!(
                    "k = {k} is outside 1..={} (`num_samples`)",
                    self.num_samples
                ),
                "pass@k and cons@k need k samples per prompt: raise `num_samples` or lower k",
            );
        }
        checks.limit_at_least_one(self.limit, "remove `limit` to evaluate every prompt");
    }
}
