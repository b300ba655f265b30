//! Stage kind `pretrain`: a base model from scratch (or continued from a checkpoint) on the
//! text of a dataset — next-token prediction over prompts and solutions alike.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InputField;
use super::{FieldChecks, Input, Need, Output, Sequences, StageConfig, TrainingSettings, Unset};
use crate::manifest::params::{stage_config, LrScheduler};
use crate::manifest::Defaults;

stage_config! {
    /// `kind: pretrain` — next-token training of a model declared under `models:`.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PretrainStage {
        /// The model to train: an entry of `models:` (a preset starts from fresh weights).
        pub from: String,
        /// The corpus: a dataset stage (its prompts and completions are the text).
        pub data: String,
        /// Training sequence length in tokens. Default 256.
        #[serde(default = "PretrainStage::default_max_seq_length")]
        pub max_seq_length: usize,
        /// Seed of initialisation and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
    }
    [training, resources]
}

impl PretrainStage {
    fn default_max_seq_length() -> usize {
        256
    }
}

impl StageConfig for PretrainStage {
    const KIND: &'static str = "pretrain";
    const IMPLEMENTATION: u32 = 2;
    const TRAINS: bool = true;
    type Resolved = Pretrain;

    fn sequences(resolved: &Pretrain) -> Option<Sequences<'_>> {
        Some(Sequences::Window(resolved.max_seq_length))
    }

    fn inputs(&self) -> Vec<Input<'_>> {
        vec![
            Input::new(InputField::From, &self.from, Need::ModelInit),
            Input::new(InputField::Data, &self.data, Need::Completions),
        ]
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::Model
    }

    /// Small models from scratch tolerate high rates; these suit the built-in presets.
    fn builtin_defaults() -> Defaults {
        Defaults {
            learning_rate: Some(1e-3),
            lr_scheduler_type: Some(LrScheduler::Cosine),
            warmup_ratio: Some(0.05),
            weight_decay: Some(0.1),
            adam_beta2: Some(0.95),
            per_device_train_batch_size: Some(16),
            num_train_epochs: Some(1.0),
            save_steps: Some(100),
            ..Defaults::default()
        }
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            self.lora.is_none(),
            "lora",
            "`lora:` does not apply to pretraining",
            "pretraining trains every weight, often from fresh ones, which low-rank adapters on a frozen base cannot; remove `lora:` (a `defaults:` entry reaches every training stage: set it on the stages instead)",
        );
        checks.sequence_length(
            self.max_seq_length,
            "next-token training needs two tokens or more",
        );
    }

    fn resolve(&self) -> Result<Pretrain, Unset> {
        Ok(Pretrain {
            max_seq_length: self.max_seq_length,
            training: self.shared().training()?,
            seed: super::required(self.seed, "seed")?,
        })
    }
}

/// A checked `pretrain` stage: next-token training on the data's full texts (prompt and
/// completion), packed into `max_seq_length` windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pretrain {
    pub max_seq_length: usize,
    pub training: TrainingSettings,
    pub seed: u64,
}
