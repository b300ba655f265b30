//! Execute (rewards): the `accuracy` reward — is the answer right? TinyZero's scale: 0
//! without a (single) answer, `format_score` for an answer that is wrong or invalid,
//! `correct_score` for a right one; a sample whose reference answer cannot be read is
//! skipped.
//!
//! Where the answer is (`answer_in`): `tags` — the one `<answer>…</answer>` block (see
//! [`super::answer`]); `boxed` — the last `\boxed{…}`/`\fbox{…}`; `anywhere` — a boxed
//! answer, else the last math span (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`), else the last number
//! or expression in the text (see [`super::math::locate`]).
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
//! 3. Anything else that reads as a math answer (see [`super::math`]: `\frac{1}{3}`,
//!    `x = 11`, `[0, 1)`, `\{1, 2\}` …) → compared as `mode: math` compares.
//! 4. Anything else (words only, unreadable) → skipped (use `mode: exact` for text).
//!
//! Numbers and Countdown equations are read first and exactly as before `math` existed,
//! so pipelines that grade them keep their scores bit for bit.

use indexmap::IndexMap;

use crate::manifest::{AccuracyMode, AccuracyReward, AnswerIn, RewardDecl};
use crate::records::Answer;

use super::answer::{extract_answer, ExtractedAnswer};
use super::expr::evaluate;
use super::math::{self, Boxed, MathAnswer};
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
    /// A math answer (`mode: math`, or `auto` for a reference that is neither a number
    /// nor a Countdown equation).
    Math(MathAnswer),
}

/// How an answer was judged, before it becomes a score.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No answer where `answer_in` looks: no `<answer>…</answer>` block, no (closed)
    /// `\boxed{…}`, nothing that reads as an answer.
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
    answer_in: AnswerIn,
    correct_score: f64,
    format_score: f64,
}

impl AccuracyVerifier {
    pub fn new(decl: &AccuracyReward) -> Self {
        Self {
            mode: decl.mode,
            answer_in: decl.answer_in,
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
            AccuracyMode::Math => match math::parse_answer(&text) {
                Ok(answer) => Ok(Reference::Math(answer)),
                Err(e) => Err(format!(
                    "the reference answer `{}` is not a math answer: {e}",
                    clip(&text)
                )),
            },
            AccuracyMode::Auto => {
                if let Some(value) = parse_number(&text) {
                    return Ok(Reference::Number(value));
                }
                if let Some(countdown) = countdown_reference(&text) {
                    return Ok(countdown);
                }
                match math::parse_answer(&text) {
                    Ok(answer) if !matches!(answer, MathAnswer::Text(_)) => {
                        Ok(Reference::Math(answer))
                    }
                    _ => Err(format!(
                        "the reference answer `{}` is neither a number, a Countdown \
                         equation nor a math answer (use `mode: exact` to compare text)",
                        clip(&text)
                    )),
                }
            }
        }
    }

    /// The answer a completion gives, where `answer_in` says it is.
    fn locate<'a>(&self, completion: &'a str) -> Result<&'a str, Verdict> {
        match self.answer_in {
            AnswerIn::Tags => match extract_answer(completion) {
                ExtractedAnswer::Missing => Err(Verdict::NoAnswer),
                ExtractedAnswer::Ambiguous => Err(Verdict::Ambiguous),
                ExtractedAnswer::One(text) => Ok(text.trim()),
            },
            AnswerIn::Boxed => match math::last_boxed(completion) {
                Boxed::Found(text) => Ok(text.trim()),
                Boxed::Missing | Boxed::Unclosed => Err(Verdict::NoAnswer),
            },
            AnswerIn::Anywhere => {
                if let Boxed::Found(text) = math::last_boxed(completion) {
                    return Ok(text.trim());
                }
                math::last_math_span(completion)
                    .or_else(|| math::last_expression(completion))
                    .map(str::trim)
                    .ok_or(Verdict::NoAnswer)
            }
        }
    }

    /// The answer a completion gives, where `answer_in` says it is (`None`: none, or
    /// several `<answer>` blocks): what majority votes count.
    pub fn answer_of<'a>(&self, completion: &'a str) -> Option<&'a str> {
        self.locate(completion).ok()
    }

    /// Judges `completion` against `answer`.
    pub fn verdict(&self, completion: &str, answer: Option<&Answer>) -> Verdict {
        let reference = match self.reference(answer) {
            Ok(reference) => reference,
            Err(reason) => return Verdict::Skipped(reason),
        };
        match self.locate(completion) {
            Ok(given) => judge(&reference, given),
            Err(verdict) => verdict,
        }
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
        Reference::Math(expected) => match math::parse_answer(given) {
            Err(e) => Verdict::Invalid(format!("the answer is not a math answer: {e}")),
            Ok(answer) if math::equivalent(expected, &answer) => Verdict::Correct,
            Ok(_) => Verdict::Wrong,
        },
    }
}

/// The first 60 characters of a reference answer, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(mode: AccuracyMode, answer_in: AnswerIn) -> AccuracyVerifier {
        AccuracyVerifier::new(&AccuracyReward {
            mode,
            answer_in,
            ..AccuracyReward::default()
        })
    }

    fn verdict(v: &AccuracyVerifier, completion: &str, reference: &str) -> Verdict {
        v.verdict(completion, Some(&Answer::Text(reference.into())))
    }

    #[test]
    fn answer_in_boxed_takes_the_last_balanced_box() {
        let v = verifier(AccuracyMode::Math, AnswerIn::Boxed);
        let cases: &[(&str, Verdict)] = &[
            ("so $\\boxed{\\frac{1}{2}}$.", Verdict::Correct),
            ("first \\boxed{3}, then \\boxed{0.5}", Verdict::Correct),
            ("\\boxed {\\dfrac12}", Verdict::Correct),
            ("\\fbox{1/2}", Verdict::Correct),
            ("\\boxed{0.5} no, \\boxed{3}", Verdict::Wrong),
            ("<answer>0.5</answer>", Verdict::NoAnswer),
            ("\\boxed{0.5", Verdict::NoAnswer),
            (
                "\\boxed{}",
                Verdict::Invalid("the answer is not a math answer: no answer".into()),
            ),
        ];
        for (completion, expected) in cases {
            assert_eq!(
                &verdict(&v, completion, "\\frac12"),
                expected,
                "{completion:?}"
            );
        }
    }

    #[test]
    fn answer_in_anywhere_falls_back_from_box_to_math_span_to_last_number() {
        let v = verifier(AccuracyMode::Math, AnswerIn::Anywhere);
        let cases: &[(&str, Verdict)] = &[
            ("It is $3$, no: \\boxed{-5}", Verdict::Correct),
            (
                "We find $x = 2$ and so the answer is $-5$.",
                Verdict::Correct,
            ),
            ("so the answer is \\(-5\\)", Verdict::Correct),
            ("\\[ -5 \\]", Verdict::Correct),
            ("$$-5$$ is it", Verdict::Correct),
            ("After all that, I get -5.", Verdict::Correct),
            ("After all that, I get 5.", Verdict::Wrong),
            ("no number at all", Verdict::NoAnswer),
        ];
        for (completion, expected) in cases {
            assert_eq!(&verdict(&v, completion, "-5"), expected, "{completion:?}");
        }
    }

    #[test]
    fn the_default_answer_in_is_left_out_of_the_serialised_declaration() {
        // A reward's cache key is its serialised declaration: `answer_in: tags`, written or
        // not, must give the key it had before the field existed.
        let default = serde_json::to_value(AccuracyReward::default()).expect("serialises");
        assert_eq!(
            default,
            serde_json::json!({"mode": "auto", "correct_score": 1.0, "format_score": 0.1})
        );
        let boxed = AccuracyReward {
            answer_in: AnswerIn::Boxed,
            ..AccuracyReward::default()
        };
        let boxed = serde_json::to_value(boxed).expect("serialises");
        assert_eq!(boxed["answer_in"], "boxed");
        let read: AccuracyReward =
            serde_json::from_value(serde_json::json!({"answer_in": "anywhere", "mode": "math"}))
                .expect("reads");
        assert_eq!(
            (read.mode, read.answer_in),
            (AccuracyMode::Math, AnswerIn::Anywhere)
        );
    }

    #[test]
    fn answer_in_tags_is_the_default_and_unchanged() {
        let v = verifier(AccuracyMode::Math, AnswerIn::Tags);
        assert_eq!(AccuracyReward::default().answer_in, AnswerIn::Tags);
        assert_eq!(verdict(&v, "\\boxed{7}", "7"), Verdict::NoAnswer);
        assert_eq!(verdict(&v, "<answer>7</answer>", "7"), Verdict::Correct);
        assert_eq!(
            verdict(&v, "<answer>7</answer><answer>7</answer>", "7"),
            Verdict::Ambiguous
        );
    }

    #[test]
    fn auto_keeps_numbers_and_countdown_and_grades_the_rest_as_math() {
        let v = verifier(AccuracyMode::Auto, AnswerIn::Tags);
        // Numbers: read as before `math` existed (LaTeX answers are not numbers).
        assert_eq!(
            v.reference(Some(&Answer::Text("0.5".into()))),
            Ok(Reference::Number(Rational::new(1, 2).expect("half")))
        );
        assert_eq!(
            verdict(&v, "<answer>\\frac12</answer>", "0.5"),
            Verdict::Invalid("the answer is not a number".into())
        );
        assert!(matches!(
            v.reference(Some(&Answer::Text("(44 + 19) + 35".into()))),
            Ok(Reference::Countdown { .. })
        ));
        // Anything else that reads as math is graded as math.
        assert_eq!(
            verdict(&v, "<answer>0.5</answer>", "\\frac{1}{2}"),
            Verdict::Correct
        );
        assert_eq!(
            verdict(&v, "<answer>[0, 1)</answer>", "[0,1)"),
            Verdict::Correct
        );
        assert_eq!(
            verdict(&v, "<answer>x = 3</answer>", "1.5 + 1.5"),
            Verdict::Correct
        );
        // Words are not math: skipped, as before.
        assert!(matches!(
            verdict(&v, "<answer>Paris</answer>", "Paris"),
            Verdict::Skipped(_)
        ));
        // `mode: math` compares words as words.
        let math = verifier(AccuracyMode::Math, AnswerIn::Tags);
        assert_eq!(
            verdict(&math, "<answer>paris</answer>", "Paris"),
            Verdict::Correct
        );
    }
}
