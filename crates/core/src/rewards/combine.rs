//! Execute (rewards): several rewards with weights — the combined reward is the weighted
//! sum (TRL's `reward_weights`), and every reward's mean and std is reported on its own
//! (`reward/NAME`, `reward/NAME/std`), since reward hacking shows up as one reward rising
//! while another stalls.
//!
//! Skipped outcomes are left out: a sample's total is the weighted sum of the rewards that
//! scored it, and `None` when none did; means and stds are over scored samples only.

use std::path::Path;

use indexmap::IndexMap;

use crate::manifest::RewardDecl;
use crate::metric_names as names;

use super::error::{RewardError, RewardErrorKind};
use super::sample::{RewardOutcome, Sample};
use super::{ModelScorer, Reward, RewardKind};

/// The rewards of a stage with their weights.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSet {
    rewards: Vec<(Reward, f64)>,
}

/// The outcomes of one batch: per reward, and combined.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredBatch {
    /// Reward name → one outcome per sample.
    pub per_reward: IndexMap<String, Vec<RewardOutcome>>,
    /// Per sample: the weighted sum, or `None` when every reward skipped it.
    pub total: Vec<Option<f64>>,
}

impl ScoredBatch {
    /// The samples `rows` picks out of `batches`, as (batch, sample) in that order — what
    /// a step keeps of several rounds of sampling. A reward one of the batches lacks is
    /// skipped on its samples.
    pub fn gather(batches: &[&ScoredBatch], rows: &[(usize, usize)]) -> ScoredBatch {
        let mut per_reward: IndexMap<String, Vec<RewardOutcome>> = IndexMap::new();
        for batch in batches {
            for name in batch.per_reward.keys() {
                per_reward.entry(name.clone()).or_default();
            }
        }
        for (name, outcomes) in &mut per_reward {
            outcomes.extend(rows.iter().map(|&(b, i)| {
                batches
                    .get(b)
                    .and_then(|batch| batch.per_reward.get(name))
                    .and_then(|scored| scored.get(i))
                    .cloned()
                    .unwrap_or_else(|| RewardOutcome::Skipped("not scored in its round".into()))
            }));
        }
        let total = rows
            .iter()
            .map(|&(b, i)| {
                batches
                    .get(b)
                    .and_then(|batch| batch.total.get(i))
                    .copied()
                    .flatten()
            })
            .collect();
        ScoredBatch { per_reward, total }
    }
}

impl RewardSet {
    /// `rewards` as `(reward, weight)`, in the order they are reported.
    pub fn new(rewards: Vec<(Reward, f64)>) -> Self {
        Self { rewards }
    }

    /// The rewards a stage names with weights (`rewards: {accuracy: 1.0, …}`), each
    /// built from its declaration in `declared` or, for an undeclared built-in name
    /// (`accuracy`, `format`, `tag_count`, `language`, `length`), with default settings.
    /// Files are found relative to `base_dir`, the manifest's directory.
    pub fn build(
        weights: &IndexMap<String, f64>,
        declared: &IndexMap<String, RewardDecl>,
        base_dir: &Path,
    ) -> Result<Self, RewardError> {
        let mut rewards = Vec::with_capacity(weights.len());
        for (name, &weight) in weights {
            let decl = match declared.get(name) {
                Some(decl) => decl.clone(),
                None => RewardDecl::builtin(name).ok_or_else(|| {
                    RewardError::new(
                        name,
                        RewardErrorKind::Config(format!(
                            "no reward is declared under this name, and the built-in ones are {}",
                            RewardDecl::BUILTIN_NAMES.join(", ")
                        )),
                    )
                })?,
            };
            rewards.push((Reward::from_decl(name, &decl, base_dir)?, weight));
        }
        Ok(Self { rewards })
    }

    pub fn rewards(&self) -> &[(Reward, f64)] {
        &self.rewards
    }

    /// The `reward_model` stages this set's `model` rewards read.
    pub fn reward_model_stages(&self) -> Vec<&str> {
        self.rewards
            .iter()
            .filter_map(|(reward, _)| match reward.kind() {
                RewardKind::Model(stage) => Some(stage.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Adds `reward` with `weight` after the others.
    pub fn push(&mut self, reward: Reward, weight: f64) {
        self.rewards.push((reward, weight));
    }

    /// Scores `samples` with every reward and combines them (`model` rewards fail: see
    /// [`RewardSet::score_with`]).
    pub fn score(&self, samples: &[Sample<'_>]) -> Result<ScoredBatch, RewardError> {
        self.score_with(samples, None)
    }

    /// Scores `samples` with every reward, `model` rewards with the reward models of
    /// `models`, and combines them.
    pub fn score_with(
        &self,
        samples: &[Sample<'_>],
        mut models: Option<&mut (dyn ModelScorer + '_)>,
    ) -> Result<ScoredBatch, RewardError> {
        let mut per_reward = IndexMap::new();
        let mut total: Vec<Option<f64>> = vec![None; samples.len()];
        for (reward, weight) in &self.rewards {
            let outcomes = reward.score_batch_with(samples, models.as_deref_mut())?;
            for (sum, outcome) in total.iter_mut().zip(&outcomes) {
                if let Some(score) = outcome.score() {
                    *sum = Some(sum.unwrap_or(0.0) + weight * score);
                }
            }
            per_reward.insert(reward.name().to_string(), outcomes);
        }
        Ok(ScoredBatch { per_reward, total })
    }
}

impl ScoredBatch {
    /// `reward`, `reward_std`, and per reward `reward/NAME`, `reward/NAME/std`,
    /// `reward/NAME/skipped` (the fraction of samples skipped). Means over no samples are
    /// reported as NaN rather than 0, so they cannot pass for a real score.
    pub fn metrics(&self) -> IndexMap<String, f64> {
        let mut metrics = IndexMap::new();
        let (mean, std) = mean_std(self.total.iter().flatten().copied());
        metrics.insert(names::REWARD.to_string(), mean);
        metrics.insert(names::REWARD_STD.to_string(), std);
        for (name, outcomes) in &self.per_reward {
            let (mean, std) = mean_std(outcomes.iter().filter_map(RewardOutcome::score));
            let skipped = outcomes.iter().filter(|o| o.score().is_none()).count();
            metrics.insert(names::reward_of(name), mean);
            metrics.insert(format!("{}/std", names::reward_of(name)), std);
            metrics.insert(
                format!("{}/skipped", names::reward_of(name)),
                ratio(skipped, outcomes.len()),
            );
        }
        metrics
    }

    /// The fraction of groups of `group_size` consecutive samples whose totals all agree
    /// (GRPO learns nothing from them). `None` when `group_size` is 0 or does not divide
    /// the batch.
    pub fn frac_reward_zero_std(&self, group_size: usize) -> Option<f64> {
        if group_size == 0 || !self.total.len().is_multiple_of(group_size) {
            return None;
        }
        let groups: Vec<&[Option<f64>]> = self.total.chunks(group_size).collect();
        let flat = groups
            .iter()
            .filter(|group| {
                let (_, std) = mean_std(group.iter().flatten().copied());
                std == 0.0 || std.is_nan()
            })
            .count();
        Some(ratio(flat, groups.len()))
    }
}

/// Mean and population standard deviation; NaN for no values.
pub fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    let variance = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    (mean, variance.sqrt())
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Answer;

    #[test]
    fn sums_with_weights_and_reports_each_reward() {
        let accuracy = Reward::builtin("accuracy").expect("built-in");
        let format = Reward::builtin("format").expect("built-in");
        let set = RewardSet::new(vec![(accuracy, 1.0), (format, 0.5)]);
        let gold = Answer::Text("(1 + 2) * 3".into());
        let right = "<think>ok</think> <answer>(2 + 1) * 3</answer>";
        let wrong = "<think>ok</think> <answer>1 + 2 * 3</answer>";
        let samples = [
            Sample::new("q", right, Some(&gold)),
            Sample::new("q", wrong, Some(&gold)),
            Sample::new("q", right, None),
            Sample::new("q", "nothing", Some(&gold)),
        ];
        let batch = set.score(&samples).expect("rule rewards do not fail");
        assert_eq!(
            batch.total,
            vec![Some(1.5), Some(0.6), Some(0.5), Some(0.0)]
        );
        let metrics = batch.metrics();
        let keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "reward",
                "reward_std",
                "reward/accuracy",
                "reward/accuracy/std",
                "reward/accuracy/skipped",
                "reward/format",
                "reward/format/std",
                "reward/format/skipped"
            ]
        );
        assert!((metrics["reward/accuracy"] - 1.1 / 3.0).abs() < 1e-12);
        assert_eq!(metrics["reward/accuracy/skipped"], 0.25);
        assert_eq!(metrics["reward/format"], 0.75);
        assert_eq!(batch.frac_reward_zero_std(2), Some(0.0));
        assert_eq!(batch.frac_reward_zero_std(3), None);
    }

    #[test]
    fn builds_declared_and_builtin_rewards_by_name() {
        let weights = IndexMap::from([("tag_count".to_string(), 0.5), ("strict".to_string(), 1.0)]);
        let declared = IndexMap::from([(
            "strict".to_string(),
            RewardDecl::builtin("format").expect("built-in"),
        )]);
        let set = RewardSet::build(&weights, &declared, Path::new(".")).expect("builds");
        let names: Vec<&str> = set.rewards().iter().map(|(r, _)| r.name()).collect();
        assert_eq!(names, ["tag_count", "strict"]);
        let unknown = IndexMap::from([("acuracy".to_string(), 1.0)]);
        let error = RewardSet::build(&unknown, &declared, Path::new(".")).expect_err("unknown");
        assert_eq!(error.reward(), "acuracy");
    }

    #[test]
    fn everything_skipped_is_none_not_zero() {
        let set = RewardSet::new(vec![(Reward::builtin("accuracy").expect("built-in"), 1.0)]);
        let batch = set
            .score(&[Sample::new("q", "<answer>1</answer>", None)])
            .expect("scores");
        assert_eq!(batch.total, vec![None]);
        assert!(batch.metrics()["reward"].is_nan());
        assert_eq!(batch.frac_reward_zero_std(1), Some(1.0));
    }
}
