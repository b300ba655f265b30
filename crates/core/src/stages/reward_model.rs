//! Stage kind `reward_model`: a scalar-head model trained on preference pairs with the
//! Bradley–Terry loss, for the `model` reward of RLHF.

use super::kind_config::{default_usize, kind_config};
use super::{FieldChecks, InputField, KindChecks, Need, Output};
use crate::manifest::Defaults;

kind_config! {
    kind = "reward_model", implementation = 4, trains, output = Output::RewardModel, defaults = reward_defaults();

    /// `kind: reward_model` — a backbone with a scalar head on the last token's final
    /// hidden state, trained with the Bradley–Terry loss −log σ(score(chosen) −
    /// score(rejected)) (TRL's `RewardTrainer`); reports pair accuracy and mean margin on
    /// the data's test split (`eval_accuracy`, `eval_margin`, also in `metrics.json`).
    pub struct RewardModelStage {
        /// The backbone: any model (a stage's, a checkpoint, or a preset with fresh
        /// weights).
        #[input(InputField::From, Need::ModelInit)]
        pub from: String,
        /// Preference pairs (prompt, chosen, rejected): a JSONL `preferences` dataset or a
        /// `rejection_sampling` stage with `emit: preferences`. Trained on the train
        /// split; the test split is held out for `eval_accuracy`.
        #[input(InputField::Data, Need::Preferences)]
        pub data: String,
        /// Training sequence length in tokens (prompt + completion + EOS); longer texts
        /// lose tokens from their start, so the completion's end is always scored.
        /// Default 1024 (TRL's `max_length`).
        #[serde(default = "default_usize::<1024>")]
        #[sequences(window)]
        pub max_seq_length: usize,
        /// Adds `coefficient · mean((score(chosen) + score(rejected))²)` to the loss to keep
        /// scores centred on zero (TRL's `center_rewards_coefficient`; 0.01 is the
        /// suggested value). Default 0 (off); 0 written and left out are the same stage.
        #[serde(
            default = "RewardModelStage::off",
            skip_serializing_if = "RewardModelStage::is_off"
        )]
        pub center_rewards_coefficient: f64,
        /// Seed of the head's initialisation and data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, resources]

    /// A checked `reward_model` stage: trains on the data's train pairs, scores its test pairs.
    resolved pub struct RewardModel;
}

impl RewardModelStage {
    fn off() -> f64 {
        0.0
    }

    fn is_off(coefficient: &f64) -> bool {
        *coefficient == 0.0
    }
}

impl KindChecks for RewardModelStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.refuse_lora(
            self.lora.is_some(),
            "`lora:` is not implemented for reward models",
            "the reward model's scalar head is trained from scratch and PEFT would train it beside the adapters (`modules_to_save`), which r1flow does not do yet",
        );
        checks.ensure(
            self.gradient_checkpointing != Some(true),
            "gradient_checkpointing",
            "`gradient_checkpointing` is not implemented for reward models",
            "remove it: reward models score one position per sequence and keep little activation memory at the sizes r1flow trains them",
        );
        checks.sequence_length(
            self.max_seq_length,
            "a scored sequence needs two tokens or more",
        );
        {
            let coefficient = self.center_rewards_coefficient;
            checks.ensure(
                coefficient.is_finite() && coefficient >= 0.0,
                "center_rewards_coefficient",
                format!(
                    "`center_rewards_coefficient` must be a finite number ≥ 0, not {coefficient}"
                ),
                "0.01 is the usual value; leave it out to train without the centring term",
            );
        }
    }
}

/// TRL `RewardConfig` (transformers `TrainingArguments`) defaults: one epoch at
/// transformers' 5e-5.
fn reward_defaults() -> Defaults {
    Defaults {
        learning_rate: Some(5e-5),
        num_train_epochs: Some(1.0),
        ..Defaults::default()
    }
}
