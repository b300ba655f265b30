//! Execute (rewards, eval metrics): finding the answer in a completion and normalising it
//! for a majority vote.
//!
//! The extraction rule. TinyZero scores the *last* `<answer>…</answer>` block. Taken
//! alone that rule pays for hedging — a completion can write several answers, or repeat
//! `</answer>`, and hope one survives — so r1flow keeps TinyZero's rule only where it is
//! unambiguous: a completion with exactly one `<answer>` and exactly one `</answer>` after
//! it has that block's text as its answer (the last block, as TinyZero, since it is the
//! only one). More than one `<answer>` or more than one `</answer>` is
//! [`ExtractedAnswer::Ambiguous`], which the accuracy reward scores like no answer at all.
//! Text after `</answer>` does not change the answer (the `format` reward punishes it).
//! Tags are matched exactly and case-sensitively.

use super::number::parse_number;

pub const ANSWER_OPEN: &str = "<answer>";
pub const ANSWER_CLOSE: &str = "</answer>";

/// What a completion offers as its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractedAnswer<'a> {
    /// No complete `<answer>…</answer>` block.
    Missing,
    /// Several `<answer>` or `</answer>` tags: no single answer to grade.
    Ambiguous,
    /// The text between the tags, untrimmed.
    One(&'a str),
}

impl<'a> ExtractedAnswer<'a> {
    /// The answer text, trimmed, when there is exactly one.
    pub fn text(self) -> Option<&'a str> {
        match self {
            Self::One(text) => Some(text.trim()),
            Self::Missing | Self::Ambiguous => None,
        }
    }
}

/// The answer of `completion` under the rule in the module documentation.
pub fn extract_answer(completion: &str) -> ExtractedAnswer<'_> {
    let opens = completion.matches(ANSWER_OPEN).count();
    let closes = completion.matches(ANSWER_CLOSE).count();
    if opens > 1 || closes > 1 {
        return ExtractedAnswer::Ambiguous;
    }
    let (Some(open), Some(close)) = (completion.find(ANSWER_OPEN), completion.find(ANSWER_CLOSE))
    else {
        return ExtractedAnswer::Missing;
    };
    let start = open + ANSWER_OPEN.len();
    if close < start {
        return ExtractedAnswer::Missing;
    }
    ExtractedAnswer::One(&completion[start..close])
}

/// The form in which answers are compared for a majority vote (`cons@k`): a number
/// becomes its exact reduced value (`0.5`, `1/2` and `5e-1` all become `1/2`); any other
/// text loses all whitespace and is lower-cased (`(1 + 2) * 3` → `(1+2)*3`).
pub fn normalize_answer(text: &str) -> String {
    match parse_number(text) {
        Some(value) => value.to_string(),
        None => text
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_block_is_the_answer() {
        assert_eq!(
            extract_answer("<think>x</think> <answer> 42 </answer>").text(),
            Some("42")
        );
        assert_eq!(
            extract_answer("<answer></answer>"),
            ExtractedAnswer::One("")
        );
        assert_eq!(
            extract_answer("<answer>7</answer> and more").text(),
            Some("7")
        );
    }

    #[test]
    fn hedging_and_broken_tags_are_not_answers() {
        use ExtractedAnswer::*;
        assert_eq!(extract_answer(""), Missing);
        assert_eq!(extract_answer("42"), Missing);
        assert_eq!(extract_answer("<answer>42"), Missing);
        assert_eq!(extract_answer("42</answer>"), Missing);
        assert_eq!(extract_answer("</answer>42<answer>"), Missing);
        assert_eq!(extract_answer("<ANSWER>42</ANSWER>"), Missing);
        assert_eq!(
            extract_answer("<answer>1</answer><answer>2</answer>"),
            Ambiguous
        );
        assert_eq!(extract_answer("<answer>2</answer></answer>"), Ambiguous);
        assert_eq!(extract_answer("<answer><answer>2</answer>"), Ambiguous);
    }

    #[test]
    fn normalises_numbers_by_value_and_text_by_spacing_and_case() {
        assert_eq!(normalize_answer("0.5"), "1/2");
        assert_eq!(normalize_answer(" 1/2 "), "1/2");
        assert_eq!(normalize_answer("1,000"), "1000");
        assert_eq!(normalize_answer("(1 + 2) * 3"), "(1+2)*3");
        assert_eq!(normalize_answer("Paris "), "paris");
    }
}
