//! Execute (rewards): which rewards score which prompt. GRPO scores every prompt with the
//! same rewards; R1's second RL phase (`rlhf`) gives reasoning prompts — those with a
//! reference answer — the rule rewards, and general prompts — without one — a reward
//! model's score plus extra rewards. Each kind's rewards are reported on their own
//! (`reward/reasoning/NAME`, `reward/general/NAME`) with the kind's mean reward
//! (`reward/reasoning`, `reward/general`), since the two scales differ.

use crate::metric_names as names;
use indexmap::IndexMap;

use super::combine::{mean_std, RewardSet, ScoredBatch};
use super::error::RewardError;
use super::sample::{RewardOutcome, Sample};
use super::ModelScorer;

/// The type of a prompt, from whether it has a reference answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// Has a reference answer: rule rewards can verify it.
    Reasoning,
    /// Has none (helpfulness, writing …): a reward model judges it.
    General,
}

impl PromptKind {
    pub fn of(sample: &Sample<'_>) -> Self {
        if sample.answer.is_some() {
            Self::Reasoning
        } else {
            Self::General
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Reasoning => "reasoning",
            Self::General => "general",
        }
    }
}

/// The rewards of a policy-optimisation stage.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutedRewards {
    /// Every prompt gets these (`grpo`).
    Same(RewardSet),
    /// Reasoning prompts get `reasoning`, general prompts `general` (`rlhf`).
    ByKind {
        reasoning: RewardSet,
        general: RewardSet,
    },
}

/// The outcome of scoring one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedScores {
    /// Totals per sample, and every reward's outcomes (for `ByKind`, named `KIND/NAME`
    /// and skipped on the other kind's samples).
    pub batch: ScoredBatch,
    /// For `ByKind`: each kind with its own samples' scores.
    parts: Vec<(PromptKind, ScoredBatch)>,
    /// For `ByKind`: each sample's kind.
    kinds: Vec<PromptKind>,
}

impl RoutedRewards {
    /// The `reward_model` stages any of the rewards read.
    pub fn reward_model_stages(&self) -> Vec<&str> {
        let mut stages = match self {
            Self::Same(set) => set.reward_model_stages(),
            Self::ByKind { reasoning, general } => {
                let mut stages = reasoning.reward_model_stages();
                stages.extend(general.reward_model_stages());
                stages
            }
        };
        stages.sort_unstable();
        stages.dedup();
        stages
    }

    /// Scores `samples`, each with the rewards of its kind.
    pub fn score(
        &self,
        samples: &[Sample<'_>],
        mut models: Option<&mut (dyn ModelScorer + '_)>,
    ) -> Result<RoutedScores, RewardError> {
        let (reasoning, general) = match self {
            Self::Same(set) => {
                return Ok(RoutedScores {
                    batch: set.score_with(samples, models)?,
                    parts: Vec::new(),
                    kinds: Vec::new(),
                })
            }
            Self::ByKind { reasoning, general } => (reasoning, general),
        };
        let mut total = vec![None; samples.len()];
        let mut per_reward = IndexMap::new();
        let mut parts = Vec::new();
        for (kind, set) in [
            (PromptKind::Reasoning, reasoning),
            (PromptKind::General, general),
        ] {
            let indices: Vec<usize> = (0..samples.len())
                .filter(|&i| PromptKind::of(&samples[i]) == kind)
                .collect();
            let subset: Vec<Sample<'_>> = indices.iter().map(|&i| samples[i]).collect();
            let scored = set.score_with(&subset, models.as_deref_mut())?;
            for (&i, value) in indices.iter().zip(&scored.total) {
                total[i] = *value;
            }
            for (name, outcomes) in &scored.per_reward {
                let mut all = vec![
                    RewardOutcome::Skipped(format!("not a {} prompt", kind.name()));
                    samples.len()
                ];
                for (&i, outcome) in indices.iter().zip(outcomes) {
                    all[i] = outcome.clone();
                }
                per_reward.insert(format!("{}/{name}", kind.name()), all);
            }
            parts.push((kind, scored));
        }
        Ok(RoutedScores {
            batch: ScoredBatch { per_reward, total },
            parts,
            kinds: samples.iter().map(PromptKind::of).collect(),
        })
    }
}

impl RoutedScores {
    /// The samples `rows` picks out of `batches`, as (batch, sample) in that order, with
    /// each kind's scores kept apart as [`RoutedRewards::score`] keeps them.
    pub fn gather(batches: &[&RoutedScores], rows: &[(usize, usize)]) -> RoutedScores {
        let whole: Vec<&ScoredBatch> = batches.iter().map(|b| &b.batch).collect();
        let batch = ScoredBatch::gather(&whole, rows);
        if batches.iter().all(|b| b.parts.is_empty()) {
            return RoutedScores {
                batch,
                parts: Vec::new(),
                kinds: Vec::new(),
            };
        }
        let empty = ScoredBatch {
            per_reward: IndexMap::new(),
            total: Vec::new(),
        };
        let kind_of = |b: usize, i: usize| batches.get(b).and_then(|s| s.kinds.get(i)).copied();
        let mut parts = Vec::new();
        for kind in [PromptKind::Reasoning, PromptKind::General] {
            // A sample's place in its own batch's part of this kind.
            let picked: Vec<(usize, usize)> = rows
                .iter()
                .filter(|&&(b, i)| kind_of(b, i) == Some(kind))
                .map(|&(b, i)| {
                    (
                        b,
                        batches[b].kinds[..i].iter().filter(|k| **k == kind).count(),
                    )
                })
                .collect();
            let sources: Vec<&ScoredBatch> = batches
                .iter()
                .map(|b| {
                    b.parts
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map_or(&empty, |(_, part)| part)
                })
                .collect();
            parts.push((kind, ScoredBatch::gather(&sources, &picked)));
        }
        let kinds = rows
            .iter()
            .map(|&(b, i)| kind_of(b, i).unwrap_or(PromptKind::General))
            .collect();
        RoutedScores {
            batch,
            parts,
            kinds,
        }
    }

    /// The metrics of [`ScoredBatch::metrics`]; for `ByKind`, `reward` and `reward_std`
    /// over every sample, then per kind the share of the batch `prompts/KIND` and, when
    /// the batch has prompts of that kind, `reward/KIND`, `reward_std/KIND` and each of
    /// its rewards as `reward/KIND/NAME` (with `/std` and `/skipped`) over that kind's
    /// samples only.
    pub fn metrics(&self) -> IndexMap<String, f64> {
        if self.parts.is_empty() {
            return self.batch.metrics();
        }
        let mut metrics = IndexMap::new();
        let (mean, std) = mean_std(self.batch.total.iter().flatten().copied());
        metrics.insert(names::REWARD.to_string(), mean);
        metrics.insert(names::REWARD_STD.to_string(), std);
        let samples = self.batch.total.len().max(1) as f64;
        for (kind, part) in &self.parts {
            let kind = kind.name();
            metrics.insert(format!("prompts/{kind}"), part.total.len() as f64 / samples);
            if part.total.is_empty() {
                // No prompt of this kind in the batch: nothing to report but its share.
                continue;
            }
            for (name, value) in part.metrics() {
                let renamed = match name.as_str() {
                    names::REWARD => names::reward_of(kind),
                    names::REWARD_STD => format!("reward_std/{kind}"),
                    other => match other.strip_prefix(names::REWARD_PREFIX) {
                        Some(rest) => format!("{}/{rest}", names::reward_of(kind)),
                        None => format!("{other}/{kind}"),
                    },
                };
                metrics.insert(renamed, value);
            }
        }
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ModelReward, RewardDecl};
    use crate::records::Answer;
    use crate::rewards::Reward;
    use std::path::Path;

    /// A reward model that scores the length of what was generated, and records what it
    /// was asked to score.
    struct LengthModel {
        asked: Vec<(String, String)>,
    }

    impl ModelScorer for LengthModel {
        fn score(&mut self, stage: &str, samples: &[Sample<'_>]) -> Result<Vec<f64>, String> {
            Ok(samples
                .iter()
                .map(|s| {
                    self.asked
                        .push((stage.to_string(), s.generated().to_string()));
                    s.generated().len() as f64
                })
                .collect())
        }
    }

    #[test]
    fn reasoning_prompts_get_rule_rewards_and_general_prompts_the_reward_model() {
        let model = RewardDecl::Model(ModelReward {
            model: "rm".to_string(),
        });
        let mut general = RewardSet::new(vec![(
            Reward::from_decl("helpfulness", &model, Path::new(".")).expect("model reward"),
            2.0,
        )]);
        general.push(Reward::builtin("format").expect("built-in"), 0.5);
        let routed = RoutedRewards::ByKind {
            reasoning: RewardSet::new(vec![(Reward::builtin("accuracy").expect("built-in"), 1.0)]),
            general,
        };
        assert_eq!(routed.reward_model_stages(), ["rm"]);
        let gold = Answer::Text("4".into());
        let right = "<think>2+2</think> <answer>4</answer>";
        let plain = "<think>x</think> <answer>hello there</answer>";
        let samples = [
            Sample::new("2+2?", right, Some(&gold)),
            Sample::new("say hi <think>", plain, None).with_response_prefix("<think>"),
            Sample::new("2+2?", "no answer", Some(&gold)),
        ];
        let mut scorer = LengthModel { asked: Vec::new() };
        let scores = routed.score(&samples, Some(&mut scorer)).expect("scores");
        // The reward model saw only the general prompt, without the pre-filled `<think>`.
        let generated = "x</think> <answer>hello there</answer>";
        assert_eq!(scorer.asked, [("rm".to_string(), generated.to_string())]);
        let general_total = 2.0 * generated.len() as f64 + 0.5;
        assert_eq!(
            scores.batch.total,
            vec![Some(1.0), Some(general_total), Some(0.0)]
        );
        let keys: Vec<&str> = scores.batch.per_reward.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "reasoning/accuracy",
                "general/helpfulness",
                "general/format"
            ]
        );
        assert_eq!(
            scores.batch.per_reward["reasoning/accuracy"][1].score(),
            None,
            "rule rewards skip general prompts"
        );
        let metrics = scores.metrics();
        assert_eq!(metrics["reward/reasoning"], 0.5);
        assert_eq!(metrics["reward/general"], general_total);
        assert_eq!(metrics["reward/general/format"], 1.0);
        assert_eq!(metrics["reward/reasoning/accuracy/skipped"], 0.0);
        assert!((metrics["prompts/general"] - 1.0 / 3.0).abs() < 1e-12);

        let rules_only = RoutedRewards::Same(RewardSet::new(vec![(
            Reward::builtin("accuracy").expect("built-in"),
            1.0,
        )]));
        let same = rules_only.score(&samples[..1], None).expect("scores");
        assert_eq!(
            same.metrics(),
            same.batch.metrics(),
            "GRPO's metrics are unchanged"
        );
        let reasoning_only = routed
            .score(&samples[..1], Some(&mut scorer))
            .expect("scores")
            .metrics();
        assert_eq!(reasoning_only["prompts/general"], 0.0);
        assert!(
            !reasoning_only.contains_key("reward/general"),
            "no mean over no general prompt: {reasoning_only:?}"
        );
        let without_model = routed.score(&samples, None).expect_err("needs the model");
        assert_eq!(without_model.reward(), "helpfulness");
        insta::assert_snapshot!(without_model.to_string());
    }

    #[test]
    fn gathered_rows_score_as_if_scored_together() {
        let model = RewardDecl::Model(ModelReward {
            model: "rm".to_string(),
        });
        let routed = RoutedRewards::ByKind {
            reasoning: RewardSet::new(vec![(Reward::builtin("accuracy").expect("built-in"), 1.0)]),
            general: RewardSet::new(vec![(
                Reward::from_decl("helpfulness", &model, Path::new(".")).expect("model reward"),
                1.0,
            )]),
        };
        let gold = Answer::Text("4".into());
        let right = "<think>2+2</think> <answer>4</answer>";
        let samples = [
            Sample::new("2+2?", right, Some(&gold)),
            Sample::new("say hi", "hello", None),
            Sample::new("2+2?", "no answer", Some(&gold)),
            Sample::new("say more", "hello there", None),
        ];
        let mut scorer = LengthModel { asked: Vec::new() };
        let first = routed
            .score(&samples[..2], Some(&mut scorer))
            .expect("scores");
        let second = routed
            .score(&samples[2..], Some(&mut scorer))
            .expect("scores");
        // Sample 1 of the first round, then both of the second, then sample 0.
        let gathered = RoutedScores::gather(&[&first, &second], &[(0, 1), (1, 0), (1, 1), (0, 0)]);
        let order = [samples[1], samples[2], samples[3], samples[0]];
        let together = routed.score(&order, Some(&mut scorer)).expect("scores");
        assert_eq!(gathered, together);
        assert_eq!(gathered.metrics(), together.metrics());

        let same = RoutedRewards::Same(RewardSet::new(vec![(
            Reward::builtin("accuracy").expect("built-in"),
            1.0,
        )]));
        let one = same.score(&samples[..1], None).expect("scores");
        let other = same.score(&samples[2..3], None).expect("scores");
        let both = RoutedScores::gather(&[&one, &other], &[(1, 0), (0, 0)]);
        assert_eq!(both.batch.total, vec![Some(0.0), Some(1.0)]);
        assert_eq!(
            both,
            same.score(&[samples[2], samples[0]], None).expect("scores")
        );
    }
}
