//! Execute (rewards): what a reward scores — one sample `(prompt, completion, answer)` —
//! and what it returns for it.

use crate::records::{Answer, Tests};

/// One completion to score. `completion` is the whole response, including any pre-filled
/// start the template put at the end of the prompt (R1-Zero's "Let me solve this step by
/// step.\n<think>"), so that the format checks see the `<think>` the model continued from.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub prompt: &'a str,
    pub completion: &'a str,
    /// The reference answer, when the record has one.
    pub answer: Option<&'a Answer>,
    /// The completion's length in tokens as generated; rewards that need a length fall
    /// back to counting characters when the caller does not know it.
    pub completion_tokens: Option<usize>,
    /// The pre-filled start of `completion` that also ends `prompt` ("" when none): a
    /// reward model reads `prompt` followed by the completion without it, the text as
    /// the policy saw and wrote it.
    pub response_prefix: &'a str,
    /// The tests a `code` reward runs the completion's program against, when the record
    /// has them.
    pub tests: Option<&'a Tests>,
    /// The function the tests call (HumanEval's `entry_point`), when the record names one.
    pub entry_point: Option<&'a str>,
}

impl<'a> Sample<'a> {
    /// A sample without a token count.
    pub fn new(prompt: &'a str, completion: &'a str, answer: Option<&'a Answer>) -> Self {
        Self {
            prompt,
            completion,
            answer,
            completion_tokens: None,
            response_prefix: "",
            tests: None,
            entry_point: None,
        }
    }

    /// The same sample with its record's code tests and entry point.
    pub fn with_tests(self, tests: Option<&'a Tests>, entry_point: Option<&'a str>) -> Self {
        Self {
            tests,
            entry_point,
            ..self
        }
    }

    /// The same sample, whose completion starts with `prefix` written at the end of the
    /// prompt.
    pub fn with_response_prefix(self, prefix: &'a str) -> Self {
        Self {
            response_prefix: prefix,
            ..self
        }
    }

    /// What the model generated after the prompt: the completion without the pre-filled
    /// start.
    pub fn generated(&self) -> &'a str {
        self.completion
            .strip_prefix(self.response_prefix)
            .unwrap_or(self.completion)
    }

    /// The same sample with its token count.
    pub fn with_tokens(self, tokens: usize) -> Self {
        Self {
            completion_tokens: Some(tokens),
            ..self
        }
    }

    /// Tokens if known, else characters.
    pub fn length(&self) -> usize {
        self.completion_tokens
            .unwrap_or_else(|| self.completion.chars().count())
    }
}

/// A reward's verdict on one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardOutcome {
    /// The score (finite).
    Score(f64),
    /// The reward does not apply to this sample (e.g. its reference answer cannot be
    /// parsed); it is left out of sums and means rather than scored 0 or 1.
    Skipped(String),
}

impl RewardOutcome {
    /// The score, or `None` when skipped.
    pub fn score(&self) -> Option<f64> {
        match self {
            Self::Score(score) => Some(*score),
            Self::Skipped(_) => None,
        }
    }
}
