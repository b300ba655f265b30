//! Stage kind `pretrain`: a base model from scratch (or continued from a checkpoint) on the
//! text of a dataset — next-token prediction over prompts and solutions alike.

use super::kind_config::{default_usize, kind_config};
use super::{FieldChecks, InputField, KindChecks, Need, Output};
use crate::manifest::params::LrScheduler;
use crate::manifest::Defaults;

kind_config! {
    kind = "pretrain", implementation = 2, trains, output = Output::Model, defaults = pretrain_defaults();

    /// `kind: pretrain` — next-token training of a model declared under `models:`.
    pub struct PretrainStage {
        /// The model to train: an entry of `models:` (a preset starts from fresh weights).
        #[input(InputField::From, Need::ModelInit)]
        pub from: String,
        /// The corpus: a dataset stage (its prompts and completions are the text).
        #[input(InputField::Data, Need::Completions)]
        pub data: String,
        /// Training sequence length in tokens. Default 256.
        #[serde(default = "default_usize::<256>")]
        #[sequences(window)]
        pub max_seq_length: usize,
        /// Seed of initialisation and data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, resources]

    /// A checked `pretrain` stage: next-token training on the data's full texts (prompt and
    /// completion), packed into `max_seq_length` windows.
    resolved pub struct Pretrain;
}

impl KindChecks for PretrainStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.refuse_lora(
            self.lora.is_some(),
            "`lora:` does not apply to pretraining",
            "pretraining trains every weight, often from fresh ones, which low-rank adapters on a frozen base cannot",
        );
        checks.sequence_length(
            self.max_seq_length,
            "next-token training needs two tokens or more",
        );
    }
}

/// Small models from scratch tolerate high rates; these suit the built-in presets.
fn pretrain_defaults() -> Defaults {
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
