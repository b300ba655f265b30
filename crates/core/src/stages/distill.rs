//! Stage kind `distill`: train a student on a teacher's reasoning — plain SFT on the
//! teacher's samples as R1 did, or token-level KL to the teacher's distribution.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind_config::{default_usize, kind_config};
use super::sft::sft_defaults;
use super::{FieldChecks, InputField, KindChecks, Need, Output};

/// How the student learns from the teacher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DistillMode {
    /// Cross-entropy on the teacher's sampled completions (what R1 did).
    #[default]
    Sft,
    /// Token-level KL divergence to the teacher's next-token distributions on the
    /// teacher's samples, at the completion tokens only (direction: `kl`). Teacher and
    /// student may differ in size but must share the tokenizer and vocabulary.
    Logits,
}

/// Direction of the KL divergence in `logits` mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KlDirection {
    /// KL(teacher ‖ student): mass-covering.
    #[default]
    Forward,
    /// KL(student ‖ teacher): mode-seeking.
    Reverse,
}

kind_config! {
    // As `sft`'s defaults: R1 distilled with plain SFT.
    kind = "distill", implementation = 3, trains, output = Output::Model, defaults = sft_defaults();

    /// `kind: distill` — one student learns from a teacher's samples: by SFT on them, or by
    /// matching the teacher's token distributions on them. Several students are several
    /// stages, or one stage with an ablation axis over `student` (variants share every
    /// teacher stage, which runs once).
    pub struct DistillStage {
        /// The student's starting point: an entry of `models:` (any size, same tokenizer)
        /// or a model-producing stage.
        #[input(InputField::Student, Need::ModelInit)]
        pub student: String,
        /// The teacher's samples: usually a `rejection_sampling` stage on the teacher.
        #[input(InputField::Data, Need::Completions)]
        pub data: String,
        /// The teacher model; required in `logits` mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[input(InputField::Teacher, Need::Model)]
        pub teacher: Option<String>,
        /// `sft` (default) or `logits`.
        #[serde(default)]
        #[resolved(objective: DistillObjective = DistillStage::objective)]
        pub mode: DistillMode,
        /// KL direction in `logits` mode. Default `forward`.
        #[serde(default)]
        #[resolved(skip)]
        pub kl: KlDirection,
        /// Training sequence length in tokens. Default 1024.
        #[serde(default = "default_usize::<1024>")]
        #[sequences(window)]
        pub max_seq_length: usize,
        /// Seed of data order; defaults to the manifest's `seed`.
        seed,
    }
    [training, resources]

    /// A checked `distill` stage.
    resolved pub struct Distill;
}

impl DistillStage {
    /// What the student learns: `mode`, with `kl` in `logits` mode.
    fn objective(&self) -> DistillObjective {
        match self.mode {
            DistillMode::Sft => DistillObjective::Sft,
            DistillMode::Logits => DistillObjective::Logits { kl: self.kl },
        }
    }
}

impl KindChecks for DistillStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.ensure(
            self.mode != DistillMode::Logits || self.gradient_checkpointing != Some(true),
            "gradient_checkpointing",
            "`gradient_checkpointing` is not implemented for `mode: logits`",
            "remove it, or distil with `mode: sft`",
        );
        checks.ensure(
            self.mode != DistillMode::Logits || self.teacher.is_some(),
            "mode",
            "`mode: logits` needs the teacher model",
            "add `teacher: STAGE` naming the teacher, or use `mode: sft`",
        );
        checks.sequence_length(
            self.max_seq_length,
            "a training sequence needs two tokens or more",
        );
    }
}

/// What a distilled student learns from the teacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillObjective {
    /// SFT on the teacher's completions, as R1 distilled.
    Sft,
    /// Token-level KL to the teacher's distributions (input `teacher`) on those tokens.
    Logits { kl: KlDirection },
}
