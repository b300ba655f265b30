//! Report (the `eval` stage): the metrics of an evaluation from its stored samples, so
//! any of them, for any k ≤ n, can be recomputed without generating again. Names, as in
//! reports and JSON: `pass@1`, `pass@K`, `cons@K`, `format_rate`, `language_consistency`,
//! `completion_len_mean`, `completion_len_median`, `completion_len_max`, `reward/NAME`.
//!
//! - `pass@1` is the mean over prompts of the fraction of correct samples; `pass@K` the
//!   unbiased estimator, averaged over the prompts with at least K samples; `cons@K` the
//!   majority vote of each prompt's first K samples, averaged likewise.
//! - Samples whose reference answer cannot be read (accuracy skipped) are left out of
//!   `pass@` and `cons@`; a prompt with no gradable sample is left out entirely.
//! - `format_rate` is the share of samples in the strict R1 format; `language_consistency`
//!   the mean `language` score of the samples that have one; lengths are per sample.
//! - A metric with no data (no prompts with K samples, no language scores) is omitted
//!   rather than reported as 0.

use indexmap::IndexMap;

use crate::metric_names as names;
use crate::records::Answer;
use crate::rewards::answer::normalize_answer;
use crate::rewards::format::is_strict_r1;
use crate::rewards::{AccuracyVerifier, LanguageConsistency, Verdict};

use super::cons_at_k::{cons_at_k, Vote};
use super::pass_at_k::pass_at_k;

/// What the metrics need from one evaluated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSample {
    /// Correct or not; `None` when the reference answer cannot be read.
    pub correct: Option<bool>,
    /// The normalised answer, for majority votes; `None` without a single answer.
    pub answer: Option<String>,
    /// In the strict R1 format.
    pub format_ok: bool,
    /// The `language` reward's score, when one is computed.
    pub language: Option<f64>,
    /// Completion length in tokens.
    pub completion_len: usize,
    /// Each reward's score by name; `None` when it skipped the sample.
    pub rewards: IndexMap<String, Option<f64>>,
}

impl EvalSample {
    /// Judges a completion (the whole response, prefill included) with the accuracy
    /// verifier and, when given, the language reward. `rewards` is left empty for the
    /// caller to fill from its reward set.
    pub fn judge(
        completion: &str,
        completion_len: usize,
        answer: Option<&Answer>,
        accuracy: &AccuracyVerifier,
        language: Option<&LanguageConsistency>,
    ) -> Self {
        let verdict = accuracy.verdict(completion, answer);
        Self {
            correct: match verdict {
                Verdict::Skipped(_) => None,
                ref v => Some(v.is_correct()),
            },
            // Where the accuracy reward reads it (`answer_in`): a boxed answer votes too.
            answer: accuracy.answer_of(completion).map(normalize_answer),
            format_ok: is_strict_r1(completion),
            language: language.map(|l| l.score(completion)),
            completion_len,
            rewards: IndexMap::new(),
        }
    }
}

/// The metrics of `prompts` (each prompt's samples, in sampling order) for the k values
/// in `ks` (1 is always included for `pass@1`).
pub fn summarize(prompts: &[Vec<EvalSample>], ks: &[usize]) -> IndexMap<String, f64> {
    let mut metrics = IndexMap::new();
    let gradable: Vec<Vec<Vote>> = prompts
        .iter()
        .map(|samples| {
            samples
                .iter()
                .filter_map(|s| {
                    s.correct.map(|correct| Vote {
                        answer: s.answer.clone(),
                        correct,
                    })
                })
                .collect::<Vec<_>>()
        })
        .filter(|votes| !votes.is_empty())
        .collect();

    let mut ks: Vec<usize> = ks.iter().copied().filter(|&k| k > 0).collect();
    ks.push(1);
    ks.sort_unstable();
    ks.dedup();
    for &k in &ks {
        let pass = mean(gradable.iter().filter_map(|votes| {
            let correct = votes.iter().filter(|v| v.correct).count();
            pass_at_k(votes.len(), correct, k)
        }));
        if let Some(pass) = pass {
            metrics.insert(names::pass_at(k), pass);
        }
    }
    for &k in &ks {
        if let Some(cons) = mean(gradable.iter().filter_map(|votes| cons_at_k(votes, k))) {
            metrics.insert(names::cons_at(k), cons);
        }
    }

    let samples: Vec<&EvalSample> = prompts.iter().flatten().collect();
    if let Some(rate) = mean(samples.iter().map(|s| f64::from(u8::from(s.format_ok)))) {
        metrics.insert(names::FORMAT_RATE.into(), rate);
    }
    if let Some(language) = mean(samples.iter().filter_map(|s| s.language)) {
        metrics.insert(names::LANGUAGE_CONSISTENCY.into(), language);
    }
    let mut lengths: Vec<usize> = samples.iter().map(|s| s.completion_len).collect();
    lengths.sort_unstable();
    if let Some(mean_len) = mean(lengths.iter().map(|&l| l as f64)) {
        metrics.insert(names::COMPLETION_LEN_MEAN.into(), mean_len);
        let mid = lengths.len() / 2;
        let median = if lengths.len() % 2 == 1 {
            lengths[mid] as f64
        } else {
            (lengths[mid - 1] + lengths[mid]) as f64 / 2.0
        };
        metrics.insert(names::COMPLETION_LEN_MEDIAN.into(), median);
        let max = lengths.last().copied().unwrap_or(0);
        metrics.insert(names::COMPLETION_LEN_MAX.into(), max as f64);
    }

    let mut names: Vec<&String> = Vec::new();
    for sample in &samples {
        for name in sample.rewards.keys() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for name in names {
        let scores = samples
            .iter()
            .filter_map(|s| s.rewards.get(name).copied().flatten());
        if let Some(value) = mean(scores) {
            metrics.insert(names::reward_of(name), value);
        }
    }
    metrics
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{AccuracyReward, LanguageReward};
    use std::path::Path;

    #[test]
    fn boxed_answers_vote_where_the_accuracy_reward_reads_them() {
        let accuracy = AccuracyVerifier::new(&AccuracyReward {
            mode: crate::manifest::AccuracyMode::Math,
            answer_in: crate::manifest::AnswerIn::Boxed,
            ..AccuracyReward::default()
        });
        let gold = Answer::Text("\\frac{1}{2}".into());
        let samples: Vec<EvalSample> = [
            "so \\boxed{\\frac{1}{2}}",
            "\\boxed{\\frac{1}{2}}",
            "\\boxed{3}",
        ]
        .iter()
        .map(|c| EvalSample::judge(c, 4, Some(&gold), &accuracy, None))
        .collect();
        let metrics = summarize(&[samples], &[3]);
        assert!((metrics["cons@3"] - 1.0).abs() < 1e-12, "{metrics:?}");
    }

    fn judged(completion: &str, gold: &Answer) -> EvalSample {
        let accuracy = AccuracyVerifier::new(&AccuracyReward::default());
        let language =
            LanguageConsistency::new(&LanguageReward::default(), Path::new(".")).expect("en");
        let mut sample = EvalSample::judge(
            completion,
            completion.chars().count(),
            Some(gold),
            &accuracy,
            Some(&language),
        );
        sample.rewards.insert(
            "accuracy".into(),
            Some(if sample.correct == Some(true) {
                1.0
            } else {
                0.0
            }),
        );
        sample
    }

    #[test]
    fn computes_every_named_metric() {
        let gold = Answer::Text("6".into());
        let right = "<think>two times three</think> <answer>6</answer>";
        let right_decimal = "<think>two times three</think> <answer>6.0</answer>";
        let wrong = "<think>guess</think> <answer>5</answer>";
        let none = "I do not know";
        let prompts = vec![
            // 2 of 4 correct; the majority (2 × "6", 1 × "5") is right.
            vec![
                judged(right, &gold),
                judged(wrong, &gold),
                judged(right_decimal, &gold),
                judged(none, &gold),
            ],
            // 1 of 4; the majority of the first 2 is a tie won by "5" (seen first).
            vec![
                judged(wrong, &gold),
                judged(right, &gold),
                judged(wrong, &gold),
                judged(none, &gold),
            ],
        ];
        let metrics = summarize(&prompts, &[2, 4]);
        let keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "pass@1",
                "pass@2",
                "pass@4",
                "cons@1",
                "cons@2",
                "cons@4",
                "format_rate",
                "language_consistency",
                "completion_len_mean",
                "completion_len_median",
                "completion_len_max",
                "reward/accuracy"
            ]
        );
        assert_eq!(metrics["pass@1"], (0.5 + 0.25) / 2.0);
        // pass@2: 1 − C(2,2)/C(4,2) = 5/6; 1 − C(3,2)/C(4,2) = 1/2.
        assert!((metrics["pass@2"] - (5.0 / 6.0 + 0.5) / 2.0).abs() < 1e-12);
        assert_eq!(metrics["pass@4"], 1.0);
        assert_eq!(metrics["cons@1"], 0.5);
        assert_eq!(metrics["cons@2"], 0.5);
        assert_eq!(metrics["cons@4"], 0.5);
        assert_eq!(metrics["format_rate"], 6.0 / 8.0);
        assert_eq!(metrics["language_consistency"], 6.0 / 8.0);
        assert_eq!(metrics["completion_len_max"], right_decimal.len() as f64);
        assert_eq!(metrics["reward/accuracy"], 3.0 / 8.0);
    }

    #[test]
    fn skipped_prompts_and_missing_data_are_left_out() {
        let unreadable = Answer::Text("Paris".into());
        let gold = Answer::Text("6".into());
        let prompts = vec![
            vec![judged("<answer>Paris</answer>", &unreadable)],
            vec![judged("<think>x</think> <answer>6</answer>", &gold)],
        ];
        let metrics = summarize(&prompts, &[4]);
        assert_eq!(metrics["pass@1"], 1.0);
        assert!(!metrics.contains_key("pass@4"));
        assert!(!metrics.contains_key("cons@4"));
        assert!(summarize(&[], &[1]).is_empty());
    }
}
