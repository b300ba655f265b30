//! Report (`compare`): an eval stage instance's metrics prompt by prompt, recomputed from
//! the samples it stored (`samples.jsonl`), for the paired bootstrap. Each is the
//! per-prompt term of the stage's own metric (`metrics::summarize`), so that their mean
//! over prompts is the number in the table: `pass@K` (unbiased, over the prompt's
//! gradable samples), `cons@K` (majority vote of its first K gradable samples),
//! `format_rate`, `language_consistency` and `completion_len_mean` (over its samples).

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::metric_names as names;
use crate::metrics::{cons_at_k, pass_at_k, StoredSample, Vote, SAMPLES_FILE};
use crate::plan::StageKey;
use crate::records::from_jsonl;
use crate::store::{Store, StoreError, StoreErrorKind};

/// Metric name → prompt id → the prompt's score. A prompt the metric leaves out (no
/// gradable sample, fewer than K, no language score) has no entry.
pub type PromptScores = IndexMap<String, BTreeMap<String, f64>>;

/// Whether `metric` (an eval metric name) has a per-prompt term `prompt_scores` computes.
pub fn is_per_prompt(metric: &str) -> bool {
    let k = |prefix: &str| {
        metric
            .strip_prefix(prefix)
            .is_some_and(|k| k.parse::<usize>().is_ok_and(|k| k > 0))
    };
    k(names::PASS_AT_PREFIX)
        || k(names::CONS_AT_PREFIX)
        || matches!(
            metric,
            names::FORMAT_RATE | names::LANGUAGE_CONSISTENCY | names::COMPLETION_LEN_MEAN
        )
}

/// The per-prompt scores of `metrics` (those `is_per_prompt` accepts; others are
/// ignored) from an eval's stored samples. Each prompt's samples are taken in sampling
/// order (`sample`), as the stage voted them.
pub fn prompt_scores(samples: &[StoredSample], metrics: &[&str]) -> PromptScores {
    let mut by_prompt: BTreeMap<&str, Vec<&StoredSample>> = BTreeMap::new();
    for sample in samples {
        by_prompt.entry(&sample.prompt_id).or_default().push(sample);
    }
    for list in by_prompt.values_mut() {
        list.sort_by_key(|s| s.sample);
    }
    let mut scores = PromptScores::new();
    for &metric in metrics.iter().filter(|m| is_per_prompt(m)) {
        let per_prompt: BTreeMap<String, f64> = by_prompt
            .iter()
            .filter_map(|(id, list)| prompt_score(metric, list).map(|v| (id.to_string(), v)))
            .collect();
        scores.insert(metric.to_string(), per_prompt);
    }
    scores
}

/// One prompt's term of `metric`.
fn prompt_score(metric: &str, samples: &[&StoredSample]) -> Option<f64> {
    let votes: Vec<Vote> = samples
        .iter()
        .filter_map(|s| {
            s.correct.map(|correct| Vote {
                answer: s.answer.clone(),
                correct,
            })
        })
        .collect();
    if let Some(k) = metric
        .strip_prefix(names::PASS_AT_PREFIX)
        .and_then(|k| k.parse().ok())
    {
        let correct = votes.iter().filter(|v| v.correct).count();
        return pass_at_k(votes.len(), correct, k);
    }
    if let Some(k) = metric
        .strip_prefix(names::CONS_AT_PREFIX)
        .and_then(|k| k.parse().ok())
    {
        return cons_at_k(&votes, k);
    }
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    match metric {
        names::FORMAT_RATE => mean(
            samples
                .iter()
                .map(|s| f64::from(u8::from(s.format_ok)))
                .collect(),
        ),
        names::LANGUAGE_CONSISTENCY => mean(samples.iter().filter_map(|s| s.language).collect()),
        names::COMPLETION_LEN_MEAN => mean(samples.iter().map(|s| s.tokens as f64).collect()),
        _ => None,
    }
}

/// The samples an eval stage instance stored; `None` when the store does not hold the
/// instance or it stored no samples (a store written before they were kept).
pub fn stored_samples(
    store: &Store,
    stage: &str,
    key: &StageKey,
) -> Result<Option<Vec<StoredSample>>, StoreError> {
    let Some(record) = store.artifact(key)? else {
        return Ok(None);
    };
    let Some(blob) = record.outputs.get(SAMPLES_FILE) else {
        return Ok(None);
    };
    let bytes = store.blobs().read(blob)?;
    from_jsonl::<StoredSample>(&bytes).map(Some).map_err(|e| {
        StoreError::new(StoreErrorKind::Record(format!(
            "{SAMPLES_FILE} of eval stage `{stage}` (key {}): {e}",
            key.short()
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(prompt: &str, index: usize, answer: &str, correct: Option<bool>) -> StoredSample {
        StoredSample {
            prompt_id: prompt.into(),
            sample: index,
            completion: format!("<think>x</think> <answer>{answer}</answer>"),
            tokens: 10 + index,
            correct,
            answer: (!answer.is_empty()).then(|| answer.to_string()),
            format_ok: index.is_multiple_of(2),
            language: None,
            rewards: IndexMap::new(),
        }
    }

    #[test]
    fn each_prompt_gets_its_term_of_the_stage_metric() {
        let samples = vec![
            // Stored out of order: the vote follows `sample`.
            sample("b", 1, "5", Some(false)),
            sample("a", 0, "4", Some(true)),
            sample("a", 1, "3", Some(false)),
            sample("a", 2, "4", Some(true)),
            sample("b", 0, "5", Some(false)),
            sample("b", 2, "6", Some(true)),
            // An unreadable reference: left out of pass@ and cons@, not of the rest.
            sample("c", 0, "1", None),
            sample("c", 1, "1", None),
        ];
        let scores = prompt_scores(
            &samples,
            &[
                "pass@1",
                "pass@2",
                "cons@3",
                "format_rate",
                "completion_len_mean",
                "language_consistency",
                "worked_share",
            ],
        );
        let keys: Vec<&str> = scores.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "pass@1",
                "pass@2",
                "cons@3",
                "format_rate",
                "completion_len_mean",
                "language_consistency"
            ],
            "worked_share has no per-prompt term here"
        );
        let of = |metric: &str| -> Vec<(&str, f64)> {
            scores[metric]
                .iter()
                .map(|(id, v)| (id.as_str(), *v))
                .collect()
        };
        assert_eq!(of("pass@1"), [("a", 2.0 / 3.0), ("b", 1.0 / 3.0)]);
        // 1 − C(1,2)/C(3,2) = 1 for a; 1 − C(2,2)/C(3,2) = 2/3 for b.
        assert_eq!(of("pass@2")[0], ("a", 1.0));
        assert!((of("pass@2")[1].1 - 2.0 / 3.0).abs() < 1e-12);
        // a: 4, 3, 4 → 4, right; b: 5, 5, 6 → 5, wrong.
        assert_eq!(of("cons@3"), [("a", 1.0), ("b", 0.0)]);
        // Samples 0 and 2 are in format (of 3), sample 0 of c's 2.
        assert_eq!(
            of("format_rate"),
            [("a", 2.0 / 3.0), ("b", 2.0 / 3.0), ("c", 0.5)]
        );
        assert_eq!(
            of("completion_len_mean"),
            [("a", 11.0), ("b", 11.0), ("c", 10.5)]
        );
        assert!(of("language_consistency").is_empty());
    }

    #[test]
    fn only_metrics_with_a_prompt_term_are_per_prompt() {
        for metric in ["pass@1", "pass@16", "cons@4", "format_rate"] {
            assert!(is_per_prompt(metric), "{metric}");
        }
        for metric in ["pass@0", "pass@x", "completion_len_max", "reward/accuracy"] {
            assert!(!is_per_prompt(metric), "{metric}");
        }
    }
}
