//! Execute (rewards): the math grader behind the accuracy reward's `mode: math` — LaTeX
//! and plain-text answers parsed into values and compared mathematically, with no
//! computer-algebra system and no timeout, because every step is bounded by construction:
//!
//! - an answer longer than [`MAX_ANSWER_BYTES`] is refused before it is read;
//! - at most [`lexer::MAX_TOKENS`] tokens, nesting at most [`parser::MAX_DEPTH`] deep,
//!   lists, sets and tuples of at most [`parser::MAX_ITEMS`] elements;
//! - exact integer powers up to [`value::MAX_EXACT_EXPONENT`], then `f64` (a value
//!   outside its finite range is an error, never an infinity);
//! - an expression with variables is evaluated at [`structures::POINTS`] points.
//!
//! One concept per file: [`lexer`] (text to tokens, presentation dropped), [`parser`]
//! (tokens to an answer), [`expression`] (the expression tree and its evaluation),
//! [`value`] (exact-or-float numbers and the tolerance), [`structures`] (what an answer
//! is: values, relations, intervals, sets, tuples, matrices, lists), [`equivalence`]
//! (when two answers are the same), [`locate`] (where an answer is in free text).
//! The rules are written for users in `docs/src/grading.md`.

pub mod equivalence;
pub mod expression;
pub mod lexer;
pub mod locate;
pub mod parser;
pub mod structures;
pub mod value;

#[cfg(test)]
mod labelled_tests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use equivalence::equivalent;
pub use locate::{last_boxed, last_expression, last_math_span, Boxed};
pub use structures::MathAnswer;

/// Longest answer read, in bytes (after the answer is located in the completion).
pub const MAX_ANSWER_BYTES: usize = 4096;

/// Why a text is not a math answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MathError {
    Empty,
    TooLong,
    TooDeep,
    /// A LaTeX command, environment or character the grader does not read.
    Unsupported(String),
    Syntax(String),
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no answer"),
            Self::TooLong => write!(
                f,
                "longer than the grader reads ({MAX_ANSWER_BYTES} bytes, {} tokens, {} items)",
                lexer::MAX_TOKENS,
                parser::MAX_ITEMS
            ),
            Self::TooDeep => write!(f, "nested deeper than {} levels", parser::MAX_DEPTH),
            Self::Unsupported(what) => write!(f, "{what} is not supported"),
            Self::Syntax(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for MathError {}

/// Parses an answer: the content of its last `\boxed{…}` if it has one, a final period
/// dropped, then LaTeX or plain text (see [`lexer`] and [`parser`]). Text made only of
/// words is a [`MathAnswer::Text`].
pub fn parse_answer(text: &str) -> Result<MathAnswer, MathError> {
    if text.len() > MAX_ANSWER_BYTES {
        return Err(MathError::TooLong);
    }
    let text = match last_boxed(text) {
        Boxed::Found(inside) => inside,
        Boxed::Unclosed => return Err(MathError::Syntax("a `\\boxed{` never closed".into())),
        Boxed::Missing => text,
    };
    let text = text.trim().trim_end_matches(['.', '。']).trim_end();
    let lexed = lexer::lex(text)?;
    if lexed.tokens.is_empty() {
        if lexed.words.is_empty() {
            return Err(MathError::Empty);
        }
        return Ok(MathAnswer::Text(lexed.words.join(" ")));
    }
    parser::parse(lexed.tokens)
}
