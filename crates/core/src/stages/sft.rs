//! Stage kind `sft`: supervised fine-tuning on (prompt, completion) pairs, the loss on
//! completion tokens only — R1's cold start and its round-2 SFT.

use super::kind_config::{default_true, default_usize, kind_config};
use super::{FieldChecks, InputField, KindChecks, Need, Output};
use crate::manifest::Defaults;

kind_config! {
    kind = "sft", implementation = 3, trains, output = Output::Model, defaults = sft_defaults();

    /// `kind: sft` — fine-tune a model on completions.
    pub struct SftStage {
        /// The model to fine-tune.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// The (prompt, completion) data: a dataset stage or a `rejection_sampling` stage.
        #[input(InputField::Data, Need::Completions)]
        pub data: String,
        /// Training sequence length in tokens (prompt + completion). Default 1024.
        #[serde(default = "default_usize::<1024>")]
        #[sequences(window)]
        pub max_seq_length: usize,
        /// Compute the loss on completion tokens only (TRL `completion_only_loss`).
        /// Default true.
        #[serde(default = "default_true")]
        pub completion_only_loss: bool,
        /// Pack several short examples into one sequence. Default false.
        #[serde(default)]
        pub packing: bool,
        /// Seed of data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, resources]

    /// A checked `sft` stage: fine-tuning on the data's (prompt, completion) pairs, the loss
    /// on completion tokens only unless `completion_only_loss` is off.
    resolved pub struct Sft;
}

impl KindChecks for SftStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.sequence_length(
            self.max_seq_length,
            "a training sequence needs two tokens or more",
        );
    }
}

/// TRL `SFTConfig`'s defaults: transformers' training defaults (the declared ones) at
/// 2e-5; shared by `sft` and `distill`, which fine-tunes on a teacher's traces as R1 did.
pub(super) fn sft_defaults() -> Defaults {
    Defaults {
        learning_rate: Some(2e-5),
        ..Defaults::default()
    }
}
