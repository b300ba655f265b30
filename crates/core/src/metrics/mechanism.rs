//! Report (the `eval` stage, and `grpo`/`rlhf` per step): metrics that show *how* a model
//! gets its answers, not only how often — whether it works the problem out or states a
//! result at once, how accurate each way is, and whether length comes with correctness.
//! Computed from the samples alone (response text, correctness, length, truncation).
//!
//! Names, as in reports and series:
//! - `worked_share`: share of completions in the *worked* mode (see [`is_worked`]);
//! - `accuracy_worked`, `accuracy_shortcut`: share correct among the gradable completions
//!   of each mode (omitted when a mode has none);
//! - `completion_len_correct`, `completion_len_incorrect`: mean length in tokens of the
//!   correct and of the incorrect gradable completions (omitted when there are none);
//! - `truncated_ratio`: share of completions cut off at `max_completion_length`.
//!
//! What counts as a step is defined once, here, for every generated task, and checked
//! against their generators in the tests below: a worked solution of Countdown, of
//! `arithmetic` with `scratchpad: steps` and with `scratchpad: columns` is worked, in
//! either language and with any flaw of `noise:` but `shortcut`; a shortcut is not.

use indexmap::IndexMap;

use crate::metric_names as names;
use crate::records::Answer;
use crate::rewards::answer::ANSWER_OPEN;
use crate::rewards::language;
use crate::rewards::{AccuracyVerifier, Verdict};

/// What the mechanism metrics need from one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSample<'a> {
    /// The whole response (any pre-filled start included).
    pub response: &'a str,
    /// Correct or not; `None` when it could not be graded.
    pub correct: Option<bool>,
    /// Completion length in tokens.
    pub tokens: usize,
    /// Cut off at the length limit.
    pub truncated: bool,
}

impl<'a> ModeSample<'a> {
    /// A response graded against `answer` by `accuracy` (ungradable: `correct` is `None`).
    pub fn graded(
        response: &'a str,
        answer: Option<&Answer>,
        accuracy: &AccuracyVerifier,
        tokens: usize,
        truncated: bool,
    ) -> Self {
        let correct = match accuracy.verdict(response, answer) {
            Verdict::Skipped(_) => None,
            verdict => Some(verdict.is_correct()),
        };
        Self {
            response,
            correct,
            tokens,
            truncated,
        }
    }
}

/// The reasoning of a response: the text inside `<think>` as the `language` reward reads
/// it ([`language::reasoning`]: after the first `<think>`, up to `</think>` or the end),
/// cut at an `<answer>` when the reasoning was never closed. Empty without `<think>`.
pub fn reasoning(response: &str) -> &str {
    let inside = language::reasoning(response).unwrap_or("");
    inside.split(ANSWER_OPEN).next().unwrap_or(inside)
}

/// The sentences of `text`: split after each `。`, and after each `.` that ends the text
/// or is followed by white space (so `2.5` stays whole); trimmed, empty ones left out.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let ends_sentence =
            c == '。' || (c == '.' && text[end..].chars().next().is_none_or(char::is_whitespace));
        if ends_sentence {
            out.push(&text[start..i]);
            start = end;
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether a sentence of reasoning is a worked step: it writes an equation — an `=`, or
/// in Chinese `得` ("gives") standing as a word between spaces (`12 加 30 得 42`) — and is
/// not the conclusion, which restates the whole result (`So 12 + 30 = 42.`,
/// `所以 12 + 30 = 42。`). So a step of the arithmetic and Countdown solutions
/// (`12 + 30 = 42.`) and a column of the `columns` scratchpad (`7+3+0=10 c1 r0.`) are
/// steps; the goal (`We need 16 from 3, 5, 2, each used once.`, whose Chinese has `得到`,
/// "obtain"), the opening of the columns (`4567 + 9123:`) and the conclusions (`So …`,
/// the columns' `The sum is 13690.`, which has no `=`) are not.
pub fn is_step(sentence: &str) -> bool {
    let sentence = sentence.trim();
    if sentence.starts_with("So ") || sentence.starts_with("所以") {
        return false;
    }
    sentence.contains('=') || sentence.split_whitespace().any(|word| word == "得")
}

/// How many worked steps ([`is_step`]) the reasoning of a response writes.
pub fn worked_steps(response: &str) -> usize {
    sentences(reasoning(response))
        .into_iter()
        .filter(|s| is_step(s))
        .count()
}

/// Whether a response is in the worked mode: its reasoning writes at least one step
/// ([`is_step`]). A response that states its result at once — no reasoning, or only the
/// goal, the opening and the conclusion — is in the shortcut mode.
pub fn is_worked(response: &str) -> bool {
    worked_steps(response) > 0
}

/// The mechanism metrics of `samples` (names in the module documentation); empty when
/// there are no samples.
pub fn mechanism_metrics(samples: &[ModeSample<'_>]) -> IndexMap<String, f64> {
    let mut metrics = IndexMap::new();
    if samples.is_empty() {
        return metrics;
    }
    let share = |count: usize, of: usize| count as f64 / of as f64;
    let worked: Vec<bool> = samples.iter().map(|s| is_worked(s.response)).collect();
    metrics.insert(
        names::WORKED_SHARE.into(),
        share(worked.iter().filter(|&&w| w).count(), samples.len()),
    );
    for (name, mode) in [
        (names::ACCURACY_WORKED, true),
        (names::ACCURACY_SHORTCUT, false),
    ] {
        let graded: Vec<bool> = samples
            .iter()
            .zip(&worked)
            .filter(|(_, &w)| w == mode)
            .filter_map(|(s, _)| s.correct)
            .collect();
        if !graded.is_empty() {
            let correct = graded.iter().filter(|&&c| c).count();
            metrics.insert(name.into(), share(correct, graded.len()));
        }
    }
    for (name, outcome) in [
        (names::COMPLETION_LEN_CORRECT, true),
        (names::COMPLETION_LEN_INCORRECT, false),
    ] {
        let lengths: Vec<usize> = samples
            .iter()
            .filter(|s| s.correct == Some(outcome))
            .map(|s| s.tokens)
            .collect();
        if !lengths.is_empty() {
            let total: usize = lengths.iter().sum();
            metrics.insert(name.into(), share(total, lengths.len()));
        }
    }
    metrics.insert(
        "truncated_ratio".into(),
        share(
            samples.iter().filter(|s| s.truncated).count(),
            samples.len(),
        ),
    );
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{AccuracyReward, DatasetDecl};

    const WORKED: &str =
        "<think> 67 + 23: 7+3+0=10 c1 r0. 6 + 2: 6+2+1=09 c0 r90. The sum is 90. </think> <answer> 90 </answer>";
    const SHORTCUT: &str = "<think> 67 + 23: The sum is 90. </think> <answer> 90 </answer>";

    fn sample(response: &str, correct: Option<bool>, tokens: usize) -> ModeSample<'_> {
        ModeSample {
            response,
            correct,
            tokens,
            truncated: false,
        }
    }

    #[test]
    fn modes_are_read_from_the_reasoning() {
        assert!(is_worked(WORKED));
        assert_eq!(worked_steps(WORKED), 2);
        assert!(!is_worked(SHORTCUT));
        // A pre-filled start before `<think>`, an unclosed reasoning, Chinese steps.
        assert!(is_worked(
            "Let me solve this.\n<think> 1 + 2: 1+2+0=03 c0 r3"
        ));
        assert!(is_worked(
            "<think> 3: 3+0=03 c0 r3. </think> <answer> 3 </answer>"
        ));
        assert!(!is_worked(
            "<think> So 1 + 2 = 3. </think> <answer> 3 </answer>"
        ));
        assert!(is_worked("<think> 5+7+0=12 进1 得2。 </think>"));
        assert!(is_worked(
            "<think> 12 加 30 得 42。 所以 12 + 30 = 42。 </think>"
        ));
        assert!(!is_worked(
            "<think> 所以 12 + 30 = 42。 </think> <answer> 42 </answer>"
        ));
        assert!(!is_worked(
            "<think> 我们需要用 3, 5, 2 得到 16，每个数只用一次。 所以 (3 + 5) * 2 = 16。 </think>"
        ));
        // Equations after the reasoning do not count; no reasoning at all is a shortcut.
        assert!(!is_worked(
            "<think> So 1 + 2 = 3. </think> <answer> 1+2=3 </answer>"
        ));
        assert!(!is_worked("<think> So 1 + 2 = 3. <answer> 1+2=3 </answer>"));
        assert!(!is_worked("<answer> 3 </answer>"));
        assert!(!is_worked("1 + 2 = 3"));
        assert!(!is_worked(""));
        assert_eq!(reasoning("a <think> b </think> c"), " b ");
        assert_eq!(reasoning("<think> b <answer> 1 </answer>"), " b ");
        assert_eq!(sentences("a = 2.5. b。c"), ["a = 2.5", "b", "c"]);
    }

    /// Every generated task's solutions, as the `dataset` stage writes them: worked
    /// unless they are shortcuts, whatever other flaw they have.
    #[test]
    fn generated_solutions_are_worked_unless_shortcuts() {
        let tasks = [
            serde_json::json!({"kind": "countdown", "num_samples": 40}),
            serde_json::json!({"kind": "arithmetic", "num_samples": 40, "num_terms": 3}),
            serde_json::json!({"kind": "arithmetic", "num_samples": 40, "operations": ["add"],
                "max_digits": 1, "scratchpad": "columns"}),
            serde_json::json!({"kind": "arithmetic", "num_samples": 40, "operations": ["add"],
                "min_digits": 4, "max_digits": 5, "scratchpad": "columns"}),
        ];
        let noises = [
            (serde_json::json!({}), true),
            (serde_json::json!({"wrong": 1.0}), true),
            (serde_json::json!({"unformatted": 1.0}), true),
            (serde_json::json!({"mixed_language": 1.0}), true),
            (
                serde_json::json!({"mixed_language": 1.0, "unformatted": 1.0, "wrong": 1.0}),
                true,
            ),
            (serde_json::json!({"shortcut": 1.0}), false),
            (
                serde_json::json!({"shortcut": 1.0, "mixed_language": 1.0, "unformatted": 1.0}),
                false,
            ),
        ];
        for task in &tasks {
            for (noise, worked) in &noises {
                let mut decl = task.clone();
                decl["noise"] = noise.clone();
                let decl: DatasetDecl = serde_json::from_value(decl).expect("a dataset");
                let items = crate::tasks::generate(&decl, 5)
                    .expect("generated")
                    .expect("generates");
                for item in items {
                    assert_eq!(
                        is_worked(&item.solution),
                        *worked,
                        "{task} {noise}: {item:?}"
                    );
                }
            }
        }
    }

    /// Values computed by hand: 5 samples — worked right (40 tokens), worked wrong (44),
    /// shortcut right (10), shortcut wrong (12, truncated), shortcut ungraded (8).
    #[test]
    fn metrics_on_hand_made_samples() {
        let mut truncated = sample(SHORTCUT, Some(false), 12);
        truncated.truncated = true;
        let samples = [
            sample(WORKED, Some(true), 40),
            sample(WORKED, Some(false), 44),
            sample(SHORTCUT, Some(true), 10),
            truncated,
            sample(SHORTCUT, None, 8),
        ];
        let m = mechanism_metrics(&samples);
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "worked_share",
                "accuracy_worked",
                "accuracy_shortcut",
                "completion_len_correct",
                "completion_len_incorrect",
                "truncated_ratio"
            ]
        );
        assert_eq!(m["worked_share"], 0.4);
        assert_eq!(m["accuracy_worked"], 0.5);
        assert_eq!(m["accuracy_shortcut"], 0.5);
        assert_eq!(m["completion_len_correct"], 25.0);
        assert_eq!(m["completion_len_incorrect"], 28.0);
        assert_eq!(m["truncated_ratio"], 0.2);
    }

    #[test]
    fn a_mode_without_samples_has_no_accuracy() {
        let m = mechanism_metrics(&[sample(SHORTCUT, Some(false), 9)]);
        assert_eq!(m["worked_share"], 0.0);
        assert!(!m.contains_key("accuracy_worked"));
        assert_eq!(m["accuracy_shortcut"], 0.0);
        assert!(!m.contains_key("completion_len_correct"));
        assert_eq!(m["completion_len_incorrect"], 9.0);
        assert_eq!(m["truncated_ratio"], 0.0);
        assert!(mechanism_metrics(&[]).is_empty());
    }

    #[test]
    fn graded_samples_use_the_verifier() {
        let accuracy = AccuracyVerifier::new(&AccuracyReward::default());
        let gold = Answer::Text("90".into());
        assert_eq!(
            ModeSample::graded(WORKED, Some(&gold), &accuracy, 30, false).correct,
            Some(true)
        );
        let other = Answer::Text("91".into());
        assert_eq!(
            ModeSample::graded(SHORTCUT, Some(&other), &accuracy, 9, true).correct,
            Some(false)
        );
        assert_eq!(
            ModeSample::graded(WORKED, None, &accuracy, 30, false).correct,
            None
        );
    }
}
