//! Report: `r1flow score` — grade completions r1flow did not generate (a user's own model
//! outputs, a labelled set) with a reward as a manifest declares it, one verdict per line.
//! This is how a user checks a reward against their own labels before spending GPU hours:
//! the same `Reward` a stage would score with, read from a file instead of the store.
//!
//! Input: JSONL lines `{"completion": …, "answer": …}` (`prompt` optional; `tests` and
//! `entry_point` for a `code` reward, as prompt records carry them). The `answer` is
//! read as a reference: surrounding `$…$`, `$$…$$`, `\(…\)` or `\[…\]` and a `\boxed{…}`
//! wrapper are removed (it is usually copied from a dataset's solution).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::records::{jsonl_lines, Answer, Tests, MAX_JSONL_BYTES, MAX_RECORD_BYTES};
use crate::rewards::{Reward, RewardError, RewardKind, RewardOutcome, Sample, Verdict};
use crate::tasks::reference_answer::extract_reference;
use crate::user_file::{self, Line};

/// One line of `score`'s input. Other fields a user keeps beside the pair (an id, a
/// label) are ignored.
#[derive(Debug, Deserialize)]
struct InputLine {
    completion: String,
    #[serde(default)]
    answer: Option<serde_json::Value>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    tests: Option<Tests>,
    #[serde(default)]
    entry_point: Option<String>,
}

/// One line of `score`'s output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredLine {
    /// The reward's score; `None` when the sample was skipped.
    pub score: Option<f64>,
    /// `correct`, `wrong`, `invalid`, `no_answer` or `skipped` for an accuracy reward;
    /// `passed`, `failed` (not every test passed) or `skipped` for a code reward; `scored`
    /// or `skipped` for the others.
    pub verdict: &'static str,
    /// Why, where there is more to say than the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a file could not be scored.
#[derive(Debug)]
pub struct ScoreError(pub String);

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScoreError {}

/// A reference answer as a user copies it: math delimiters and a `\boxed{}` removed.
pub fn reference_of(value: &serde_json::Value) -> Option<Answer> {
    let text = match value {
        serde_json::Value::String(text) => text.trim().to_string(),
        serde_json::Value::Number(number) => number.to_string(),
        serde_json::Value::Null => return None,
        other => other.to_string(),
    };
    let text = if text.contains("\\boxed") || text.contains("\\fbox") {
        extract_reference(crate::manifest::AnswerExtractor::Boxed, &text).unwrap_or(text)
    } else {
        text
    };
    let mut text = text.as_str().trim();
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = text
            .strip_prefix(open)
            .and_then(|rest| rest.strip_suffix(close))
        {
            text = inner.trim();
            break;
        }
    }
    Some(Answer::Text(text.to_string()))
}

fn verdict_line(verdict: &Verdict, outcome: &RewardOutcome) -> ScoredLine {
    let score = match outcome {
        RewardOutcome::Score(score) => Some(*score),
        RewardOutcome::Skipped(_) => None,
    };
    let (verdict, reason) = match verdict {
        Verdict::Correct => ("correct", None),
        Verdict::Wrong => ("wrong", None),
        Verdict::Invalid(reason) => ("invalid", Some(reason.clone())),
        Verdict::NoAnswer => ("no_answer", None),
        Verdict::Ambiguous => (
            "invalid",
            Some("several answers where one is expected".to_string()),
        ),
        Verdict::Skipped(reason) => ("skipped", Some(reason.clone())),
    };
    ScoredLine {
        score,
        verdict,
        reason,
    }
}

/// Scores every line of the JSONL file `input` with `reward`; the result has one line per
/// input record, in order. An unreadable line is an error at `file:line`.
pub fn score_file(reward: &Reward, input: &Path) -> Result<Vec<ScoredLine>, ScoreError> {
    let where_ = |e: &dyn std::fmt::Display| ScoreError(format!("{}: {e}", input.display()));
    let metadata = user_file::check_regular(input).map_err(|e| where_(&e))?;
    if metadata.len() > MAX_JSONL_BYTES {
        return Err(where_(&format!(
            "larger than {} (the most `score` reads)",
            user_file::human_bytes(MAX_JSONL_BYTES)
        )));
    }
    let mut lines = Vec::new();
    for line in jsonl_lines(input).map_err(|e| where_(&e))? {
        let (number, line) = line.map_err(|e| where_(&e))?;
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong { bytes } => {
                return Err(ScoreError(format!(
                    "{}:{number}: a line of {bytes} bytes; lines are at most {MAX_RECORD_BYTES}",
                    input.display()
                )))
            }
            Line::NotUtf8 { col } => {
                return Err(ScoreError(format!(
                    "{}:{number}:{col}: not UTF-8",
                    input.display()
                )))
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let parsed: InputLine = serde_json::from_str(&text).map_err(|e| {
            ScoreError(format!(
                "{}:{number}:{}: {e} (each line is {{\"completion\": …, \"answer\": …}})",
                input.display(),
                e.column()
            ))
        })?;
        lines.push(parsed);
    }
    let answers: Vec<Option<Answer>> = lines
        .iter()
        .map(|l| l.answer.as_ref().and_then(reference_of))
        .collect();
    let samples: Vec<Sample<'_>> = lines
        .iter()
        .zip(&answers)
        .map(|(line, answer)| {
            Sample::new(
                line.prompt.as_deref().unwrap_or(""),
                &line.completion,
                answer.as_ref(),
            )
            .with_tests(line.tests.as_ref(), line.entry_point.as_deref())
        })
        .collect();
    if let RewardKind::Accuracy(verifier) = reward.kind() {
        return Ok(samples
            .iter()
            .map(|sample| {
                let verdict = verifier.verdict(sample.completion, sample.answer);
                verdict_line(&verdict, &verifier.score(&verdict))
            })
            .collect());
    }
    if let RewardKind::Code(verifier) = reward.kind() {
        let outcomes = verifier
            .grade(&samples)
            .map_err(|kind| ScoreError(RewardError::new(reward.name(), kind).to_string()))?;
        return Ok(outcomes
            .iter()
            .map(|outcome| {
                let score = outcome.score(verifier.scoring());
                let (verdict, score) = match score {
                    RewardOutcome::Score(score) if outcome.reason().is_none() => {
                        ("passed", Some(score))
                    }
                    RewardOutcome::Score(score) => ("failed", Some(score)),
                    RewardOutcome::Skipped(_) => ("skipped", None),
                };
                ScoredLine {
                    score,
                    verdict,
                    reason: match score {
                        None => Some("the line has no tests".to_string()),
                        Some(_) => outcome.reason().map(str::to_string),
                    },
                }
            })
            .collect());
    }
    let outcomes = reward
        .score_batch(&samples)
        .map_err(|e| ScoreError(e.to_string()))?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            RewardOutcome::Score(score) => ScoredLine {
                score: Some(score),
                verdict: "scored",
                reason: None,
            },
            RewardOutcome::Skipped(reason) => ScoredLine {
                score: None,
                verdict: "skipped",
                reason: Some(reason),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_loses_its_delimiters_and_box() {
        let text = |v: &str| match reference_of(&serde_json::Value::String(v.into())) {
            Some(Answer::Text(t)) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(text("$18$"), "18");
        assert_eq!(text("\\(x+1\\)"), "x+1");
        assert_eq!(text("The answer is \\boxed{42}."), "42");
        assert_eq!(text("  7 "), "7");
        assert_eq!(
            reference_of(&serde_json::json!(3)),
            Some(Answer::Text("3".into()))
        );
        assert_eq!(reference_of(&serde_json::Value::Null), None);
    }
}
