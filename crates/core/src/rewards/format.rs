//! Execute (rewards): the `format` reward — the R1 output format, `<think>…</think>`
//! then `<answer>…</answer>`.
//!
//! `strict` (1 or 0): each of the four tags exactly once, in order; only whitespace
//! between `</think>` and `<answer>` and after `</answer>`; a non-empty answer. Text
//! before `<think>` is allowed, because the R1-Zero template pre-fills the response with
//! "Let me solve this step by step.\n<think>" and the completion scored includes it.
//!
//! `tag_count`: 0.25 for each of `<think>`, `</think>`, `<answer>`, `</answer>` that
//! occurs exactly once — partial credit that helps a small model find the format.

use crate::manifest::FormatMode;

use super::answer::{ANSWER_CLOSE, ANSWER_OPEN};

pub const THINK_OPEN: &str = "<think>";
pub const THINK_CLOSE: &str = "</think>";

const TAGS: [&str; 4] = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE];

/// The format reward of `completion` under `mode`.
pub fn format_score(mode: FormatMode, completion: &str) -> f64 {
    match mode {
        FormatMode::Strict => {
            if is_strict_r1(completion) {
                1.0
            } else {
                0.0
            }
        }
        FormatMode::TagCount => tag_count(completion),
    }
}

/// Whether `completion` follows the strict R1 format (see the module documentation).
pub fn is_strict_r1(completion: &str) -> bool {
    if TAGS.iter().any(|tag| completion.matches(tag).count() != 1) {
        return false;
    }
    let position = |tag: &str| completion.find(tag).unwrap_or(usize::MAX);
    let (think_open, think_close) = (position(THINK_OPEN), position(THINK_CLOSE));
    let (answer_open, answer_close) = (position(ANSWER_OPEN), position(ANSWER_CLOSE));
    if !(think_open < think_close && think_close < answer_open && answer_open < answer_close) {
        return false;
    }
    let between = &completion[think_close + THINK_CLOSE.len()..answer_open];
    let answer = &completion[answer_open + ANSWER_OPEN.len()..answer_close];
    let after = &completion[answer_close + ANSWER_CLOSE.len()..];
    between.trim().is_empty() && !answer.trim().is_empty() && after.trim().is_empty()
}

/// 0.25 per tag present exactly once.
pub fn tag_count(completion: &str) -> f64 {
    let present = TAGS
        .iter()
        .filter(|tag| completion.matches(*tag).count() == 1)
        .count();
    0.25 * present as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_accepts_the_r1_format_with_a_prefill() {
        assert!(is_strict_r1("<think>a</think><answer>1</answer>"));
        assert!(is_strict_r1(
            "Let me solve this step by step.\n<think> 1+1 </think>\n<answer> 2 </answer>\n"
        ));
        assert!(is_strict_r1("<think></think> <answer>2</answer>"));
    }

    #[test]
    fn strict_rejects_everything_else() {
        for bad in [
            "",
            "<answer>2</answer>",
            "<think>a</think>",
            "<think>a</think> so <answer>2</answer>",
            "<think>a</think><answer>2</answer> extra",
            "<think>a</think><answer>2</answer></answer>",
            "<think>a</think><answer>1</answer><answer>2</answer>",
            "<think>a<think>b</think><answer>2</answer>",
            "<answer>2</answer><think>a</think>",
            "<think>a</think><answer>  </answer>",
            "</think><think><answer>2</answer>",
        ] {
            assert!(!is_strict_r1(bad), "{bad:?} is not strict R1");
        }
    }

    #[test]
    fn tag_count_gives_a_quarter_per_tag_seen_once() {
        assert_eq!(tag_count(""), 0.0);
        assert_eq!(tag_count("<think>"), 0.25);
        assert_eq!(tag_count("<think></think>"), 0.5);
        assert_eq!(tag_count("<think></think><answer>"), 0.75);
        assert_eq!(tag_count("<think></think><answer>1</answer>"), 1.0);
        assert_eq!(
            tag_count("<think></think><answer>1</answer></answer>"),
            0.75
        );
        assert_eq!(
            format_score(FormatMode::Strict, "<think>a</think><answer>1</answer>"),
            1.0
        );
        assert_eq!(
            format_score(FormatMode::TagCount, "<answer>1</answer>"),
            0.5
        );
    }
}
