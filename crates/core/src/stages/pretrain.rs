//! Stage kind `pretrain`: a base model from scratch (or continued from a checkpoint) on the
//! text of a dataset — next-token prediction over prompts and solutions alike.

use super::kind_config::kind_config;
use super::{FieldChecks, InputField, Need, Output, StageConfig};
use crate::manifest::params::LrScheduler;
use crate::manifest::Defaults;

kind_config! {
    /// `kind: pretrain` — next-token training of a model declared under `models:`.
    pub struct PretrainStage {
        /// The model to train: an entry of `models:` (a preset starts from fresh weights).
        #[input(InputField::From, Need::ModelInit)]
        pub from: String,
        /// The corpus: a dataset stage (its prompts and completions are the text).
        #[input(InputField::Data, Need::Completions)]
        pub data: String,
        /// Training sequence length in tokens. Default 256.
        #[serde(default = "PretrainStage::default_max_seq_length")]
        #[sequences(window)]
        pub max_seq_length: usize,
        /// Seed of initialisation and data order; defaults to the manifest's `seed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[resolved(required)]
        pub seed: Option<u64>,
    }
    [training, resources]

    /// A checked `pretrain` stage: next-token training on the data's full texts (prompt and
    /// completion), packed into `max_seq_length` windows.
    resolved pub struct Pretrain;
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
}
