//! Report (`compare`): whether each row differs from the baseline row — for every eval
//! stage shown and every metric with a per-prompt term, the paired bootstrap of the
//! difference over the prompts both rows evaluated (and over the seeds a row groups),
//! its verdict, the spread over seeds and a rough number of seeds that would resolve the
//! difference. The scores come from the stored samples (`prompt_scores`); `render` and
//! `page` show the result.

use std::collections::{BTreeMap, BTreeSet};

use super::paired::{paired_bootstrap, Interval, Verdict, DEFAULT_RESAMPLES};
use super::prompt_scores::{is_per_prompt, prompt_scores, stored_samples, PromptScores};
use super::seeds::{pooled_sd, seeds_needed};
use super::Comparison;
use crate::plan::StageKey;
use crate::store::{Store, StoreError};
use crate::tasks::SeededRng;

/// How the statistics are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOptions {
    /// Bootstrap resamples per metric.
    pub resamples: usize,
    /// The seed of the resampling (with the rows, stage and metric compared).
    pub seed: u64,
    /// The row every other row is compared with (by its name); the first row if `None`.
    pub baseline: Option<String>,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            resamples: DEFAULT_RESAMPLES,
            seed: 0,
            baseline: None,
        }
    }
}

/// The statistics of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    pub resamples: usize,
    pub seed: u64,
    /// One per (row, eval stage) compared with the baseline.
    pub pairs: Vec<PairedComparison>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

/// A row against the baseline row on one eval stage.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedComparison {
    pub baseline: String,
    pub arm: String,
    pub stage: String,
    /// Eval instances (seeds) in each row.
    pub baseline_seeds: usize,
    pub arm_seeds: usize,
    pub metrics: Vec<MetricDifference>,
}

/// One metric's difference, arm − baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDifference {
    /// As the table names it (`stage/metric` when several eval stages are shown).
    pub metric: String,
    /// The prompts scored in every instance of both rows: the ones compared.
    pub prompts: usize,
    /// Means over those prompts (and the row's seeds).
    pub baseline: f64,
    pub arm: f64,
    pub interval: Interval,
    pub verdict: Verdict,
    /// Each row's sample standard deviation over its seeds of the per-seed means, and
    /// the two pooled; `None` below two seeds.
    pub seed_sd: SeedSpread,
    /// Seeds per arm for 80 % power at the observed difference (see `seeds`).
    pub seeds_needed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedSpread {
    pub baseline: Option<f64>,
    pub arm: Option<f64>,
    pub pooled: Option<f64>,
}

/// A baseline that names no row.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownBaseline {
    pub name: String,
    pub rows: Vec<String>,
}

impl std::fmt::Display for UnknownBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--baseline `{}` is not a row of the comparison; its rows: {}",
            self.name,
            self.rows.join(", ")
        )
    }
}

impl std::error::Error for UnknownBaseline {}

/// Per-prompt scores by eval instance; `None` for an instance that stored no samples.
pub type ScoresByKey = BTreeMap<StageKey, Option<PromptScores>>;

impl Comparison {
    /// The eval stages whose metrics the table shows, in order.
    pub fn shown_evals(&self) -> Vec<String> {
        let mut stages: Vec<String> = Vec::new();
        for variant in &self.variants {
            for eval in &variant.evals {
                if !stages.contains(&eval.stage) && !self.shared_evals.contains(&eval.stage) {
                    stages.push(eval.stage.clone());
                }
            }
        }
        stages
    }

    /// The index of the baseline row.
    pub fn baseline_row(&self, options: &StatsOptions) -> Result<usize, UnknownBaseline> {
        match &options.baseline {
            None => Ok(0),
            Some(name) => self
                .rows
                .iter()
                .position(|r| &r.variant == name)
                .ok_or_else(|| UnknownBaseline {
                    name: name.clone(),
                    rows: self.rows.iter().map(|r| r.variant.clone()).collect(),
                }),
        }
    }

    /// The per-prompt scores of every shown eval instance, read from the store (none
    /// when the table has one row).
    pub fn load_prompt_scores(&self, store: &Store) -> Result<ScoresByKey, StoreError> {
        let mut scores = ScoresByKey::new();
        if self.rows.len() < 2 {
            // One row: nothing to compare, nothing to read.
            return Ok(scores);
        }
        let shown = self.shown_evals();
        for variant in &self.variants {
            for eval in variant.evals.iter().filter(|e| shown.contains(&e.stage)) {
                if scores.contains_key(&eval.key) {
                    continue;
                }
                let metrics: Vec<&str> = eval.metrics.keys().map(String::as_str).collect();
                let samples = stored_samples(store, &eval.stage, &eval.key)?;
                scores.insert(
                    eval.key.clone(),
                    samples.map(|s| prompt_scores(&s, &metrics)),
                );
            }
        }
        Ok(scores)
    }

    /// Every row but the baseline against the baseline, on every shown eval stage.
    pub fn paired_statistics(
        &self,
        scores: &ScoresByKey,
        options: &StatsOptions,
    ) -> Result<Statistics, UnknownBaseline> {
        let baseline = self.baseline_row(options)?;
        let mut statistics = Statistics {
            resamples: options.resamples,
            seed: options.seed,
            pairs: Vec::new(),
            notes: Vec::new(),
        };
        if self.rows.len() < 2 {
            return Ok(statistics);
        }
        let shown = self.shown_evals();
        let prefixed = shown.len() > 1;
        for index in 0..self.rows.len() {
            if index == baseline {
                continue;
            }
            for stage in &shown {
                self.pair(baseline, index, stage, prefixed, scores, options)
                    .into_result(&mut statistics);
            }
        }
        Ok(statistics)
    }

    /// The distinct instances of `stage` in a row (its seeds), in member order.
    fn instances(&self, row: usize, stage: &str) -> Vec<&StageKey> {
        let mut keys: Vec<&StageKey> = Vec::new();
        for &member in &self.rows[row].members {
            for eval in self.variants[member]
                .evals
                .iter()
                .filter(|e| e.stage == stage)
            {
                if !keys.contains(&&eval.key) {
                    keys.push(&eval.key);
                }
            }
        }
        keys
    }

    fn pair(
        &self,
        baseline: usize,
        arm: usize,
        stage: &str,
        prefixed: bool,
        scores: &ScoresByKey,
        options: &StatsOptions,
    ) -> Paired {
        let (base_name, arm_name) = (&self.rows[baseline].variant, &self.rows[arm].variant);
        let base_keys = self.instances(baseline, stage);
        let arm_keys = self.instances(arm, stage);
        if base_keys.is_empty() || arm_keys.is_empty() {
            return Paired::Note(format!(
                "{arm_name} vs {base_name}: `{stage}` is not in the store for both"
            ));
        }
        if base_keys.iter().collect::<BTreeSet<_>>() == arm_keys.iter().collect::<BTreeSet<_>>() {
            return Paired::Note(format!(
                "{arm_name} vs {base_name}: the same instance of `{stage}` in both (nothing to compare)"
            ));
        }
        let lookup = |keys: &[&StageKey]| -> Option<Vec<&PromptScores>> {
            keys.iter()
                .map(|k| scores.get(*k).and_then(Option::as_ref))
                .collect()
        };
        let (Some(base_scores), Some(arm_scores)) = (lookup(&base_keys), lookup(&arm_keys)) else {
            return Paired::Note(format!(
                "{arm_name} vs {base_name}: an instance of `{stage}` stored no samples (run by an older r1flow?), so it cannot be compared prompt by prompt"
            ));
        };
        let all: Vec<&PromptScores> = base_scores.iter().chain(&arm_scores).copied().collect();
        // (column as the table names it, metric name) of the metrics every instance
        // scored per prompt, in the table's order.
        let metrics: Vec<(&String, &str)> = self
            .metric_columns
            .iter()
            .filter_map(|column| {
                let name = if prefixed {
                    column.strip_prefix(stage)?.strip_prefix('/')?
                } else {
                    column.as_str()
                };
                (is_per_prompt(name) && all.iter().all(|s| s.contains_key(name)))
                    .then_some((column, name))
            })
            .collect();
        let mut result = PairedComparison {
            baseline: base_name.clone(),
            arm: arm_name.clone(),
            stage: stage.to_string(),
            baseline_seeds: base_keys.len(),
            arm_seeds: arm_keys.len(),
            metrics: Vec::new(),
        };
        let mut notes = Vec::new();
        for (column, name) in metrics {
            let per_instance: Vec<&BTreeMap<String, f64>> =
                all.iter().filter_map(|s| s.get(name)).collect();
            let union: BTreeSet<&String> = per_instance.iter().flat_map(|m| m.keys()).collect();
            let common: Vec<&String> = union
                .iter()
                .copied()
                .filter(|id| per_instance.iter().all(|m| m.contains_key(*id)))
                .collect();
            if common.is_empty() {
                notes.push(format!(
                    "{arm_name} vs {base_name}, {column}: no prompt is scored in every instance of both rows"
                ));
                continue;
            }
            if common.len() < union.len() {
                notes.push(format!(
                    "{arm_name} vs {base_name}, {column}: {} of {} prompts are scored in every instance of both rows; only those are compared",
                    common.len(),
                    union.len()
                ));
            }
            let matrix = |instances: &[&PromptScores]| -> Vec<Vec<f64>> {
                instances
                    .iter()
                    .filter_map(|s| s.get(name))
                    .map(|m| common.iter().filter_map(|id| m.get(*id).copied()).collect())
                    .collect()
            };
            let (base_matrix, arm_matrix) = (matrix(&base_scores), matrix(&arm_scores));
            let mut rng = SeededRng::for_purpose(
                options.seed,
                &format!("{base_name}\u{1f}{arm_name}\u{1f}{stage}\u{1f}{name}"),
            );
            let Some(interval) =
                paired_bootstrap(&base_matrix, &arm_matrix, options.resamples, &mut rng)
            else {
                continue;
            };
            let seed_means = |m: &[Vec<f64>]| -> Vec<f64> {
                m.iter()
                    .map(|s| s.iter().sum::<f64>() / s.len() as f64)
                    .collect()
            };
            let (base_means, arm_means) = (seed_means(&base_matrix), seed_means(&arm_matrix));
            let grand = |m: &[f64]| m.iter().sum::<f64>() / m.len() as f64;
            let pooled = pooled_sd(&[&base_means, &arm_means]);
            result.metrics.push(MetricDifference {
                metric: column.clone(),
                prompts: common.len(),
                baseline: grand(&base_means),
                arm: grand(&arm_means),
                verdict: Verdict::of(&interval),
                interval,
                seed_sd: SeedSpread {
                    baseline: pooled_sd(&[&base_means]),
                    arm: pooled_sd(&[&arm_means]),
                    pooled,
                },
                seeds_needed: pooled.and_then(|sd| seeds_needed(sd, interval.estimate)),
            });
        }
        if result.metrics.is_empty() && notes.is_empty() {
            notes.push(format!(
                "{arm_name} vs {base_name}: `{stage}` has no metric scored prompt by prompt in every instance"
            ));
        }
        Paired::Done(result, notes)
    }

    /// The comparison with its statistics, for the renderers.
    pub fn with_statistics(mut self, statistics: Statistics) -> Self {
        self.statistics = Some(statistics);
        self
    }
}

/// A pair's outcome.
enum Paired {
    Done(PairedComparison, Vec<String>),
    Note(String),
}

impl Paired {
    fn into_result(self, statistics: &mut Statistics) {
        match self {
            Self::Done(pair, notes) => {
                if !pair.metrics.is_empty() {
                    statistics.pairs.push(pair);
                }
                statistics.notes.extend(notes);
            }
            Self::Note(note) => statistics.notes.push(note),
        }
    }
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;
    use serde_json::json;

    use super::*;
    use crate::metrics::StoredSample;
    use crate::report::compare::{compare, EvalResult, VariantResult};
    use crate::report::params::{self, Params};

    const METRICS: [&str; 4] = ["pass@1", "cons@4", "format_rate", "completion_len_mean"];

    /// An eval instance's stored samples: `prompts` prompts × 4 samples, each correct
    /// with probability `p` (a wrong one answers 0, a right one 1, so cons@4 votes).
    fn samples(prompts: usize, p: f64, rng: &mut SeededRng) -> Vec<StoredSample> {
        let mut out = Vec::new();
        for prompt in 0..prompts {
            for sample in 0..4 {
                let correct = rng.chance(p);
                out.push(StoredSample {
                    prompt_id: format!("q{prompt:03}"),
                    sample,
                    completion: String::new(),
                    tokens: 20 + sample,
                    correct: Some(correct),
                    answer: Some(if correct { "1" } else { "0" }.to_string()),
                    format_ok: true,
                    language: None,
                    rewards: IndexMap::new(),
                });
            }
        }
        out
    }

    /// A variant of arm `arm`, seed `seed`, whose `eval` instance has key `key`.
    fn variant(arm: &str, seed: u64, key: &str) -> VariantResult {
        let mut flat = Params::new();
        params::flatten_into("arm", &json!(arm), &mut flat);
        params::flatten_into("stages.eval.seed", &json!(seed), &mut flat);
        VariantResult {
            label: format!("{arm}+s{seed}"),
            params: flat,
            evals: vec![EvalResult {
                stage: "eval".into(),
                key: StageKey::new(key.to_string()),
                metrics: METRICS.iter().map(|m| (m.to_string(), 0.0)).collect(),
            }],
            missing: Vec::new(),
            curves: Vec::new(),
        }
    }

    /// Arms × 2 seeds, each instance's samples drawn with its arm's success rate.
    fn ablation(arms: &[(&str, f64)], prompts: usize) -> (Comparison, ScoresByKey) {
        let mut rng = SeededRng::new(2026);
        let mut variants = Vec::new();
        let mut scores = ScoresByKey::new();
        for (arm, p) in arms {
            for seed in [1, 2] {
                let key = format!("{arm}-{seed}");
                variants.push(variant(arm, seed, &key));
                let stored = samples(prompts, *p, &mut rng);
                scores.insert(
                    StageKey::new(key),
                    Some(super::prompt_scores(&stored, &METRICS)),
                );
            }
        }
        (compare(variants, true), scores)
    }

    fn verdicts(statistics: &Statistics) -> Vec<(String, String, &'static str)> {
        statistics
            .pairs
            .iter()
            .flat_map(|p| {
                p.metrics
                    .iter()
                    .map(|m| (p.arm.clone(), m.metric.clone(), m.verdict.as_str()))
            })
            .collect()
    }

    #[test]
    fn an_arm_built_to_differ_is_different_and_one_built_not_to_is_within_noise() {
        // 200 prompts, 4 samples each: the baseline is right 30 % of the time, `same`
        // too (other draws), `better` 60 %.
        let (table, scores) = ablation(&[("base", 0.3), ("same", 0.3), ("better", 0.6)], 200);
        let options = StatsOptions {
            resamples: 2_000,
            ..StatsOptions::default()
        };
        let statistics = table
            .paired_statistics(&scores, &options)
            .expect("the first row is the baseline");
        assert!(statistics.notes.is_empty(), "{:?}", statistics.notes);
        let got = verdicts(&statistics);
        let want = |arm: &str, metric: &str, verdict: &'static str| {
            (arm.to_string(), metric.to_string(), verdict)
        };
        assert_eq!(
            got,
            [
                want("same", "pass@1", "within noise"),
                want("same", "cons@4", "within noise"),
                want("same", "format_rate", "within noise"),
                want("same", "completion_len_mean", "within noise"),
                want("better", "pass@1", "different"),
                want("better", "cons@4", "different"),
                want("better", "format_rate", "within noise"),
                want("better", "completion_len_mean", "within noise"),
            ]
        );
        let better = &statistics.pairs[1];
        assert_eq!(
            (better.baseline.as_str(), better.arm.as_str()),
            ("base", "better")
        );
        assert_eq!((better.baseline_seeds, better.arm_seeds), (2, 2));
        let pass = &better.metrics[0];
        assert_eq!(pass.prompts, 200);
        assert!((pass.interval.estimate - 0.3).abs() < 0.05, "{pass:?}");
        assert!(pass.interval.low < pass.interval.estimate);
        assert!(pass.interval.high > pass.interval.estimate);
        assert!((pass.arm - pass.baseline - pass.interval.estimate).abs() < 1e-12);
        // Two seeds per row: a spread, and the seeds that would resolve the difference.
        assert!(pass.seed_sd.pooled.is_some_and(|sd| sd > 0.0));
        assert!(pass.seeds_needed.is_some_and(|n| n >= 2));
        // Every prompt in format in every instance: no spread, nothing to resolve.
        let format = &better.metrics[2];
        assert_eq!(
            format.interval,
            Interval {
                estimate: 0.0,
                low: 0.0,
                high: 0.0
            }
        );
        assert_eq!(
            (format.seed_sd.pooled, format.seeds_needed),
            (Some(0.0), None)
        );

        // Deterministic given the seed; another seed moves the interval, not the estimate.
        let again = table
            .paired_statistics(&scores, &options)
            .expect("baseline");
        assert_eq!(again, statistics);
        let reseeded = table
            .paired_statistics(
                &scores,
                &StatsOptions {
                    seed: 9,
                    ..options.clone()
                },
            )
            .expect("baseline");
        let other = &reseeded.pairs[1].metrics[0];
        assert_eq!(other.interval.estimate, pass.interval.estimate);
        assert_ne!(other.interval, pass.interval);
    }

    #[test]
    fn several_eval_stages_are_compared_each_under_the_table_s_names() {
        let (mut table, mut scores) = ablation(&[("base", 0.3), ("better", 0.6)], 40);
        // A second eval stage per variant, `hot`, with its own instances.
        let mut rng = SeededRng::new(8);
        let mut variants = std::mem::take(&mut table.variants);
        for variant in &mut variants {
            let key = StageKey::new(format!("hot of {}", variant.label));
            let stored = samples(40, 0.5, &mut rng);
            scores.insert(key.clone(), Some(super::prompt_scores(&stored, &METRICS)));
            let mut eval = variant.evals[0].clone();
            eval.stage = "hot".into();
            eval.key = key;
            variant.evals.push(eval);
        }
        let table = compare(variants, true);
        assert_eq!(table.shown_evals(), ["eval", "hot"]);
        let statistics = table
            .paired_statistics(
                &scores,
                &StatsOptions {
                    resamples: 500,
                    ..StatsOptions::default()
                },
            )
            .expect("baseline");
        let stages: Vec<&str> = statistics.pairs.iter().map(|p| p.stage.as_str()).collect();
        assert_eq!(stages, ["eval", "hot"]);
        let names: Vec<&str> = statistics.pairs[1]
            .metrics
            .iter()
            .map(|m| m.metric.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "hot/pass@1",
                "hot/cons@4",
                "hot/format_rate",
                "hot/completion_len_mean"
            ]
        );
        assert!(statistics.notes.is_empty(), "{:?}", statistics.notes);
    }

    #[test]
    fn the_baseline_can_be_any_row_and_must_be_one() {
        let (table, scores) = ablation(&[("base", 0.3), ("better", 0.6)], 50);
        let options = StatsOptions {
            baseline: Some("better".into()),
            ..StatsOptions::default()
        };
        let statistics = table.paired_statistics(&scores, &options).expect("a row");
        let pair = &statistics.pairs[0];
        assert_eq!(
            (pair.baseline.as_str(), pair.arm.as_str()),
            ("better", "base")
        );
        assert!(pair.metrics[0].interval.estimate < 0.0);
        let wrong = StatsOptions {
            baseline: Some("nope".into()),
            ..StatsOptions::default()
        };
        let error = table
            .paired_statistics(&scores, &wrong)
            .expect_err("no such row");
        assert_eq!(
            error.to_string(),
            "--baseline `nope` is not a row of the comparison; its rows: base, better"
        );
    }

    #[test]
    fn what_cannot_be_paired_is_said() {
        let (table, mut scores) = ablation(&[("base", 0.3), ("other", 0.3)], 20);
        // A seed of `other` evaluated only the first 15 prompts.
        let mut rng = SeededRng::new(1);
        let fewer = samples(15, 0.3, &mut rng);
        scores.insert(
            StageKey::new("other-2".to_string()),
            Some(super::prompt_scores(&fewer, &METRICS)),
        );
        let statistics = table
            .paired_statistics(&scores, &StatsOptions::default())
            .expect("baseline");
        assert_eq!(statistics.pairs[0].metrics[0].prompts, 15);
        assert_eq!(
            statistics.notes[0],
            "other vs base, pass@1: 15 of 20 prompts are scored in every instance of both rows; only those are compared"
        );

        // An instance without stored samples.
        scores.insert(StageKey::new("other-1".to_string()), None);
        let statistics = table
            .paired_statistics(&scores, &StatsOptions::default())
            .expect("baseline");
        assert!(statistics.pairs.is_empty());
        assert!(
            statistics.notes[0].contains("stored no samples"),
            "{:?}",
            statistics.notes
        );

        // Rows that share their instance (one variant read from a manifest and from
        // its run), beside one that does not.
        let mut rng = SeededRng::new(4);
        for key in ["k1", "k2"] {
            let stored = samples(10, 0.5, &mut rng);
            scores.insert(
                StageKey::new(key.to_string()),
                Some(super::prompt_scores(&stored, &METRICS)),
            );
        }
        let shared = compare(
            vec![
                variant("a", 1, "k1"),
                variant("b", 1, "k1"),
                variant("c", 1, "k2"),
            ],
            true,
        );
        let statistics = shared
            .paired_statistics(&scores, &StatsOptions::default())
            .expect("baseline");
        assert_eq!(
            statistics.notes,
            ["b+s1 vs a+s1: the same instance of `eval` in both (nothing to compare)"]
        );
        assert_eq!(statistics.pairs.len(), 1);
        assert_eq!(statistics.pairs[0].arm, "c+s1");

        // One row: nothing to compare with, nothing said.
        let single = compare(vec![variant("a", 1, "k")], true);
        let statistics = single
            .paired_statistics(&scores, &StatsOptions::default())
            .expect("baseline");
        assert!(statistics.is_empty());
    }

    #[test]
    fn the_text_shows_intervals_verdicts_and_seeds() {
        let (table, scores) = ablation(&[("base", 0.3), ("better", 0.6)], 200);
        let statistics = table
            .paired_statistics(&scores, &StatsOptions::default())
            .expect("baseline");
        let table = table.with_statistics(statistics);
        let text = table.to_text();
        let block = text
            .split_once("\nIs the difference real?\n")
            .map(|(_, block)| block)
            .unwrap_or_default();
        insta::assert_snapshot!(block);
        let markdown = table.to_markdown();
        assert!(
            markdown.contains("**Is the difference real?**"),
            "{markdown}"
        );
        assert!(
            markdown
                .contains("| arm | baseline | metric | arm − baseline | 95 % interval | verdict |"),
            "{markdown}"
        );
        let json = table.to_json();
        let pass = &json["paired"]["comparisons"][0]["metrics"][0];
        assert_eq!(pass["metric"], "pass@1");
        assert_eq!(pass["verdict"], "different");
        assert_eq!(pass["interval"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["paired"]["resamples"], 10_000);
        let (html, _) = table.to_html("t", &[]);
        assert!(html.contains("<h2>Is the difference real?</h2>"));
        assert!(html.contains("<td>different</td>"));
    }
}
