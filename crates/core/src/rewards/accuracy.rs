//! Execute (rewards): the `accuracy` reward — is the answer in `<answer>…</answer>` right?
//! TinyZero's scale: 0 without a (single) answer, `format_score` for an answer that is
//! wrong or invalid, `correct_score` for a right one; a sample whose reference answer
//! cannot be read is skipped.
//!
//! What the reference answer means in `auto` mode, in order:
//! 1. A number (see [`super::number`]) → the completion's answer is read as a number and
//!    compared by value.
//! 2. An arithmetic expression with at least one operator and whole-number literals
//!    (a Countdown solution such as `(44 + 19) + 35`, which is what the `countdown` task
//!    stores as its answer) → a Countdown check: the answer must be an expression of digits,
//!    `+-*/().` and whitespace, use exactly the reference's numbers (as a multiset: no
//!    number reused, none left out, no decimal points), and equal the reference's value.
//!    Values are exact rationals, so TinyZero's `|value − target| < 1e-5` is exact equality.
//! 3. Anything else → skipped (use `mode: exact` for text answers).

use indexmap::IndexMap;

use crate::manifest::{AccuracyMode, AccuracyReward, RewardDecl};
use crate::records::Answer;

use super::answer::{extract_answer, ExtractedAnswer};
use super::expr::evaluate;
use super::number::{numbers_match, parse_number};
use super::rational::Rational;
use super::sample::RewardOutcome;

/// A reference answer, read once per sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    Number(Rational),
    /// A Countdown item: the numbers to use (sorted) and the target.
    Countdown {
        numbers: Vec<Rational>,
        target: Rational,
    },
    Text(String),
}

/// How an answer was judged, before it becomes a score.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No `<answer>…</answer>` block.
    NoAnswer,
    /// Several `<answer>` or `</answer>` tags.
    Ambiguous,
    /// An answer that cannot be graded: not a number, not a valid expression, or the
    /// wrong numbers for Countdown. The reason is for reports.
    Invalid(String),
    /// A well-formed answer with the wrong value.
    Wrong,
    Correct,
    /// The reference answer cannot be read.
    Skipped(String),
}

impl Verdict {
    pub fn is_correct(&self) -> bool {
        matches!(self, Self::Correct)
    }
}

/// The `accuracy` reward, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyVerifier {
    mode: AccuracyMode,
    correct_score: f64,
    format_score: f64,
}

impl AccuracyVerifier {
    pub fn new(decl: &AccuracyReward) -> Self {
        Self {
            mode: decl.mode,
            correct_score: decl.correct_score,
            format_score: decl.format_score,
        }
    }

    /// The verifier a stage grades correctness with in its metrics (`eval`'s pass@k, the
    /// mechanism metrics): its reward named `accuracy` when that is an `accuracy` reward
    /// (built in, or declared with settings of its own), else the default one.
    pub fn of_stage(rewards: &IndexMap<String, RewardDecl>) -> Self {
        match rewards.get("accuracy") {
            Some(RewardDecl::Accuracy(decl)) => Self::new(decl),
            _ => Self::new(&AccuracyReward::default()),
        }
    }

    /// Reads a reference answer under this verifier's mode; `Err` carries why the sample
    /// is skipped.
    pub fn reference(&self, answer: Option<&Answer>) -> Result<Reference, String> {
        let Some(answer) = answer else {
            return Err("the record has no reference answer".into());
        };
        let text = match answer {
            Answer::Text(text) => text.trim().to_string(),
            Answer::Number(number) => number.to_string(),
        };
        match self.mode {
            AccuracyMode::Exact if text.is_empty() => Err("the reference answer is empty".into()),
            AccuracyMode::Exact => Ok(Reference::Text(text)),
            AccuracyMode::Numeric => parse_number(&text)
                .map(Reference::Number)
                .ok_or_else(|| format!("the reference answer `{}` is not a number", clip(&text))),
            AccuracyMode::Auto => {
                if let Some(value) = parse_number(&text) {
                    return Ok(Reference::Number(value));
                }
                countdown_reference(&text).ok_or_else(|| {
                    format!(
                        "the reference answer `{}` is neither a number nor a Countdown \
                         equation (use `mode: exact` to compare text)",
                        clip(&text)
                    )
                })
            }
        }
    }

    /// Judges `completion` against `answer`.
    pub fn verdict(&self, completion: &str, answer: Option<&Answer>) -> Verdict {
        let reference = match self.reference(answer) {
            Ok(reference) => reference,
            Err(reason) => return Verdict::Skipped(reason),
        };
        let given = match extract_answer(completion) {
            ExtractedAnswer::Missing => return Verdict::NoAnswer,
            ExtractedAnswer::Ambiguous => return Verdict::Ambiguous,
            ExtractedAnswer::One(text) => text.trim(),
        };
        judge(&reference, given)
    }

    /// The score of a verdict on this verifier's scale.
    pub fn score(&self, verdict: &Verdict) -> RewardOutcome {
        match verdict {
            Verdict::NoAnswer | Verdict::Ambiguous => RewardOutcome::Score(0.0),
            Verdict::Invalid(_) | Verdict::Wrong => RewardOutcome::Score(self.format_score),
            Verdict::Correct => RewardOutcome::Score(self.correct_score),
            Verdict::Skipped(reason) => RewardOutcome::Skipped(reason.clone()),
        }
    }
}

/// A reference that is a Countdown solution: an expression with an operator whose
/// literals are all whole numbers.
fn countdown_reference(text: &str) -> Option<Reference> {
    let evaluated = evaluate(text).ok()?;
    if evaluated.operators == 0
        || evaluated
            .literals
            .iter()
            .any(|l| l.has_point || !l.value.is_integer())
    {
        return None;
    }
    let mut numbers: Vec<Rational> = evaluated.literals.iter().map(|l| l.value).collect();
    numbers.sort();
    Some(Reference::Countdown {
        numbers,
        target: evaluated.value,
    })
}

fn judge(reference: &Reference, given: &str) -> Verdict {
    match reference {
        Reference::Text(expected) => {
            if given == expected {
                Verdict::Correct
            } else {
                Verdict::Wrong
            }
        }
        Reference::Number(expected) => match parse_number(given) {
            None => Verdict::Invalid("the answer is not a number".into()),
            Some(value) if numbers_match(value, *expected) => Verdict::Correct,
            Some(_) => Verdict::Wrong,
        },
        Reference::Countdown { numbers, target } => {
            let evaluated = match evaluate(given) {
                Ok(evaluated) => evaluated,
                Err(e) => return Verdict::Invalid(format!("the equation is invalid: {e}")),
            };
            if evaluated.literals.iter().any(|l| l.has_point) {
                return Verdict::Invalid("the equation uses a decimal number".into());
            }
            let mut used: Vec<Rational> = evaluated.literals.iter().map(|l| l.value).collect();
            used.sort();
            if &used != numbers {
                return Verdict::Invalid(
                    "the equation does not use each given number exactly once".into(),
                );
            }
            if evaluated.value == *target {
                Verdict::Correct
            } else {
                Verdict::Wrong
            }
        }
    }
}

/// The first 60 characters of a reference answer, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
