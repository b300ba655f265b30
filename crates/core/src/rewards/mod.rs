//! Execute: the reward functions of the `grpo`, `rejection_sampling` and `eval` stages —
//! each built from a `rewards:` declaration ([`RewardDecl`]) and scoring a batch of
//! samples `(prompt, completion, answer)` — and their weighted combination.
//!
//! One file per reward kind: [`accuracy`], [`format`], [`language`], [`length`],
//! [`command`], [`code`] (with its [`sandbox`]); `model` rewards are scored by a trained reward model that the running
//! stage loads and lends through [`ModelScorer`]. The parsing they share lives in
//! [`expr`], [`number`], [`rational`] and [`answer`], and the math grader of the accuracy
//! reward's `mode: math` in [`math`]; [`combine`] sums weighted rewards
//! and computes their metrics; [`routing`] gives reasoning and general prompts their own
//! rewards (RLHF).

pub mod accuracy;
pub mod answer;
pub mod code;
pub mod combine;
pub mod command;
pub mod error;
pub mod expr;
pub mod format;
pub mod language;
pub mod length;
pub mod math;
pub mod number;
pub mod rational;
pub mod routing;
pub mod sample;
pub mod sandbox;

#[cfg(test)]
mod adversarial_tests;
#[cfg(test)]
mod code_tests;

use std::path::Path;

use crate::manifest::{FormatMode, RewardDecl};

pub use accuracy::{AccuracyVerifier, Verdict};
pub use code::{CodeOutcome, CodeVerifier};
pub use combine::{RewardSet, ScoredBatch};
pub use command::CommandVerifier;
pub use error::{RewardError, RewardErrorKind};
pub use language::LanguageConsistency;
pub use length::OverlongPenalty;
pub use routing::{PromptKind, RoutedRewards, RoutedScores};
pub use sample::{RewardOutcome, Sample};

/// Scores samples with the trained reward model of a `reward_model` stage: what a running
/// stage lends its rewards so that `kind: model` rewards can score (the rewards module
/// itself never loads a model).
pub trait ModelScorer {
    /// One score per sample from the reward model of stage `stage`.
    fn score(&mut self, stage: &str, samples: &[Sample<'_>]) -> Result<Vec<f64>, String>;
}

/// A reward function ready to score, under its manifest name.
#[derive(Debug, Clone, PartialEq)]
pub struct Reward {
    name: String,
    kind: RewardKind,
}

/// The scoring rule of a [`Reward`].
#[derive(Debug, Clone, PartialEq)]
pub enum RewardKind {
    Accuracy(AccuracyVerifier),
    Format(FormatMode),
    Language(LanguageConsistency),
    Length(OverlongPenalty),
    Command(CommandVerifier),
    /// Programs run against their tests in a sandbox.
    Code(CodeVerifier),
    /// Scored by the reward model of the named `reward_model` stage.
    Model(String),
}

impl Reward {
    /// Builds the reward `name` from its declaration; files it names (word lists,
    /// verifier programs) are found relative to `base_dir`, the manifest's directory.
    pub fn from_decl(name: &str, decl: &RewardDecl, base_dir: &Path) -> Result<Self, RewardError> {
        let error = |kind| RewardError::new(name, kind);
        let kind = match decl {
            RewardDecl::Accuracy(d) => RewardKind::Accuracy(AccuracyVerifier::new(d)),
            RewardDecl::Format(d) => RewardKind::Format(d.mode),
            RewardDecl::Language(d) => {
                RewardKind::Language(LanguageConsistency::new(d, base_dir).map_err(error)?)
            }
            RewardDecl::Length(d) => RewardKind::Length(OverlongPenalty::new(d)),
            RewardDecl::Command(d) => {
                RewardKind::Command(CommandVerifier::new(d, base_dir).map_err(error)?)
            }
            RewardDecl::Model(d) => RewardKind::Model(d.model.clone()),
            RewardDecl::Code(d) => RewardKind::Code(CodeVerifier::new(d).map_err(error)?),
        };
        Ok(Self {
            name: name.to_string(),
            kind,
        })
    }

    /// A built-in reward by its bare name (`accuracy`, `format`, `tag_count`,
    /// `language`, `length`) with default settings; `None` for other names.
    pub fn builtin(name: &str) -> Option<Self> {
        let decl = RewardDecl::builtin(name)?;
        // Built-ins read no files, so building them cannot fail.
        Self::from_decl(name, &decl, Path::new(".")).ok()
    }

    /// The reward's name in the manifest (and in its `reward/NAME` metric).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> &RewardKind {
        &self.kind
    }

    /// Scores every sample; the result has one outcome per sample, in order. Rule-based
    /// rewards never fail; a `command` reward fails on a misbehaving verifier and a `model`
    /// reward fails, as it needs a [`ModelScorer`] (see [`Reward::score_batch_with`]).
    pub fn score_batch(&self, samples: &[Sample<'_>]) -> Result<Vec<RewardOutcome>, RewardError> {
        self.score_batch_with(samples, None)
    }

    /// Like [`Reward::score_batch`], with the reward models of `models` for `model`
    /// rewards.
    pub fn score_batch_with(
        &self,
        samples: &[Sample<'_>],
        models: Option<&mut (dyn ModelScorer + '_)>,
    ) -> Result<Vec<RewardOutcome>, RewardError> {
        let each = |f: &dyn Fn(&Sample<'_>) -> RewardOutcome| samples.iter().map(f).collect();
        Ok(match &self.kind {
            RewardKind::Accuracy(v) => each(&|s| v.score(&v.verdict(s.completion, s.answer))),
            RewardKind::Format(mode) => {
                each(&|s| RewardOutcome::Score(format::format_score(*mode, s.completion)))
            }
            RewardKind::Language(l) => each(&|s| RewardOutcome::Score(l.score(s.completion))),
            RewardKind::Length(p) => each(&|s| RewardOutcome::Score(p.score(s.length()))),
            RewardKind::Command(c) => c
                .score_batch(samples)
                .map_err(|kind| RewardError::new(&self.name, kind))?
                .into_iter()
                .map(RewardOutcome::Score)
                .collect(),
            RewardKind::Code(c) => c
                .score_batch(samples)
                .map_err(|kind| RewardError::new(&self.name, kind))?,
            RewardKind::Model(model) => {
                let Some(models) = models else {
                    return Err(RewardError::new(
                        &self.name,
                        RewardErrorKind::NeedsRewardModel {
                            model: model.clone(),
                        },
                    ));
                };
                let scores = models.score(model, samples).map_err(|message| {
                    RewardError::new(&self.name, RewardErrorKind::Model(message))
                })?;
                if scores.len() != samples.len() {
                    return Err(RewardError::new(
                        &self.name,
                        RewardErrorKind::WrongCount {
                            expected: samples.len(),
                            got: scores.len(),
                        },
                    ));
                }
                scores.into_iter().map(RewardOutcome::Score).collect()
            }
        })
    }
}
