//! Stage kind `rejection_sampling`: sample from a model, keep what passes the rules, and
//! emit an SFT dataset with provenance — how R1 built its 600k reasoning samples — or,
//! with `emit: preferences`, pair samples that pass with samples that fail, as preference
//! data for a `reward_model` stage.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind_config::{default_true, default_usize, kind_config};
use super::{FieldChecks, InputField, KindChecks, Need, Output, RewardRole};
use crate::manifest::{Defaults, RecordShape};

/// What a rejection-sampling stage writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionEmit {
    /// The samples that pass, as (prompt, completion) pairs for SFT.
    #[default]
    Completions,
    /// Preference pairs for a `reward_model` stage: per prompt, a sample that passes
    /// (chosen) with one that fails (rejected), at most `max_per_prompt` pairs. The
    /// prompts' test split is sampled too, for held-out pairs.
    Preferences,
}

impl RejectionEmit {
    fn is_completions(&self) -> bool {
        *self == Self::Completions
    }
}

kind_config! {
    kind = "rejection_sampling", implementation = 2, runs_model, output_of = Self::emitted, defaults = sampling_defaults();

    /// `kind: rejection_sampling` — n samples per prompt, filtered by reward thresholds,
    /// format and deduplication; emits the kept samples, or preference pairs of kept and
    /// rejected samples (`emit: preferences`).
    pub struct RejectionSamplingStage {
        /// The model to sample from.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// The prompts (train split).
        #[input(InputField::Prompts, Need::Prompts)]
        pub prompts: String,
        /// Samples drawn per prompt. Default 8.
        #[serde(default = "default_usize::<8>")]
        pub num_samples: usize,
        /// Minimum score per reward (name → threshold) a sample must reach to be kept,
        /// e.g. `{accuracy: 1.0}`.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        #[rewards(RewardRole::Thresholds)]
        pub thresholds: IndexMap<String, f64>,
        /// Keep only samples in the strict R1 format. Default true.
        #[serde(default = "default_true")]
        pub require_format: bool,
        /// Drop repeated completions of the same prompt. Default true.
        #[serde(default = "default_true")]
        pub dedup: bool,
        /// Keep at most this many samples (or pairs) per prompt. Default 1.
        #[serde(default = "default_usize::<1>")]
        pub max_per_prompt: usize,
        /// `completions` (default): an SFT dataset of the samples that pass.
        /// `preferences`: preference pairs, chosen = passes the thresholds and format
        /// (e.g. correct and readable), rejected = does not.
        #[serde(default, skip_serializing_if = "RejectionEmit::is_completions")]
        pub emit: RejectionEmit,
        /// Sample at most this many prompts: the first of the train split (already
        /// shuffled by the dataset stage). Default: all of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        // Absent from stored specs when unset, as they were written before it existed.
        #[resolved(serde(default, skip_serializing_if = "Option::is_none"))]
        pub limit: Option<usize>,
        /// Seed of sampling; defaults to the manifest's `seed`.
        seed,
    }
    [generation, resources]

    /// A checked `rejection_sampling` stage.
    resolved pub struct RejectionSampling;
}

impl RejectionSamplingStage {
    /// What it writes: the samples that pass, or preference pairs.
    fn emitted(&self, _inputs: &[Output]) -> Output {
        Output::Dataset(match self.emit {
            RejectionEmit::Completions => RecordShape::Completions,
            RejectionEmit::Preferences => RecordShape::Preferences,
        })
    }
}

impl KindChecks for RejectionSamplingStage {
    fn check(&self, checks: &mut FieldChecks<'_>) {
        checks.samples_per_prompt(
            self.num_samples,
            "draw one sample or more per prompt",
            "DeepSeek-R1 samples 16 to 64 completions per prompt",
        );
        checks.ensure(
            self.max_per_prompt >= 1,
            "max_per_prompt",
            "`max_per_prompt` must be at least 1",
            "keep one sample or more per prompt",
        );
        checks.ensure(
            self.limit != Some(0),
            "limit",
            "`limit: 0` samples no prompt",
            "remove `limit` to sample every prompt, or set it to 1 or more",
        );
        checks.ensure(
            !self.thresholds.is_empty() || self.require_format,
            "thresholds",
            "this stage keeps every sample: it has no thresholds and does not require the format",
            "add e.g. `thresholds: {accuracy: 1.0}` or `require_format: true`",
        );
    }
}

/// The sampling settings R1 and open-r1 use for evaluation and data generation (the
/// other generation defaults are the declared ones).
pub(super) fn sampling_defaults() -> Defaults {
    Defaults {
        temperature: Some(0.6),
        top_p: Some(0.95),
        ..Defaults::default()
    }
}
