//! Check and execute (the `dataset` stage): the reference answer inside a worked solution,
//! for data in the layouts users already have — GSM8K (`answer` ends with `#### 72`) and
//! MATH (`solution` puts the result in `\boxed{…}`) — as a JSONL source's
//! `extract_answer:` declares.
//!
//! Exact or refused: a reference is either what a grader reads (a number for GSM8K; for
//! MATH, text the math grader of `mode: math` parses) or an error naming the record, which
//! `validate` and the dataset stage report with the count and the first examples. Nothing
//! is stored half-cleaned.

use crate::manifest::AnswerExtractor;
use crate::rewards::math::lexer::{lex, Tok};
use crate::rewards::math::value::Num;
use crate::rewards::math::{self, Boxed};
use crate::rewards::number::parse_number;
use crate::rewards::rational::Rational;

/// The reference answer `extractor` finds in `text`, or why there is none.
pub fn extract_reference(extractor: AnswerExtractor, text: &str) -> Result<String, String> {
    match extractor {
        AnswerExtractor::Gsm8k => gsm8k(text),
        AnswerExtractor::Boxed => boxed(text),
    }
}

/// GSM8K: the text after the last `####`, trimmed, without thousands separators
/// (`1,000` → `1000`), as the GSM8K evaluation reads it — when that is a number. When it
/// is not, the one number in it with only a currency sign, a unit or a final period around
/// it (`#### $18`, `#### 72 dollars`, `#### 42.`, `#### 1 000`), written plainly; anything
/// else is an error.
fn gsm8k(text: &str) -> Result<String, String> {
    let Some(i) = text.rfind("####") else {
        return Err("has no `####` before its final answer".into());
    };
    let answer = text[i + 4..].trim();
    let chars: Vec<char> = answer.chars().collect();
    let cleaned: String = chars
        .iter()
        .enumerate()
        .filter(|&(j, c)| {
            !(*c == ','
                && j > 0
                && chars[j - 1].is_ascii_digit()
                && chars.get(j + 1).is_some_and(char::is_ascii_digit))
        })
        .map(|(_, c)| *c)
        .collect();
    // `#### 42.`: the sentence's period, not a decimal point.
    let cleaned = match cleaned.strip_suffix('.') {
        Some(number) if number.ends_with(|c: char| c.is_ascii_digit()) => number.to_string(),
        _ => cleaned,
    };
    if cleaned.is_empty() {
        return Err("has nothing after its `####`".into());
    }
    if parse_number(&cleaned).is_some() {
        return Ok(cleaned);
    }
    single_number(answer).ok_or_else(|| {
        format!(
            "has `{}` after its `####`, which is not one number",
            clip(answer)
        )
    })
}

/// The one number in `text` (signed), when everything else is dropped by the math lexer:
/// currency, units and words, a final period.
fn single_number(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('.');
    let lexed = lex(text).ok()?;
    let (negative, value) = match lexed.tokens.as_slice() {
        [Tok::Num { value, .. }] => (false, *value),
        [Tok::Minus, Tok::Num { value, .. }] => (true, *value),
        _ => return None,
    };
    let Num::Exact(value) = value else {
        return None;
    };
    let written = decimal(value)?;
    Some(if negative {
        format!("-{written}")
    } else {
        written
    })
}

/// A non-negative rational with a terminating decimal expansion, written as a decimal.
fn decimal(value: Rational) -> Option<String> {
    if value.is_integer() {
        return Some(value.numerator().to_string());
    }
    let (num, den) = (value.numerator(), value.denominator());
    let mut scale = 1i128;
    for places in 1..=38usize {
        scale = scale.checked_mul(10)?;
        if scale % den == 0 {
            let digits = num.checked_mul(scale / den)?.to_string();
            let digits = format!("{digits:0>width$}", width = places + 1);
            let (int, frac) = digits.split_at(digits.len() - places);
            return Some(format!("{int}.{frac}"));
        }
    }
    None
}

/// The first 60 characters of an answer, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// MATH: the contents of the last `\boxed{…}` (or `\fbox{…}`, a space allowed before the
/// brace), braces balanced, with the LaTeX that does not change a value removed (`,\!`
/// thousands separators, `\!`, `\,`, `\left`, `\right`, a `\$` currency sign, `$`,
/// `\dfrac`/`\tfrac` spelt `\frac`, and a `\frac{a}{b}` or `\frac12` of plain numbers
/// written `a/b` so that the accuracy reward compares it exactly). An answer the math
/// grader cannot read is an error.
fn boxed(text: &str) -> Result<String, String> {
    let inside = match math::last_boxed(text) {
        Boxed::Found(inside) => inside,
        Boxed::Missing => return Err("has no `\\boxed{…}` answer".to_string()),
        Boxed::Unclosed => return Err("has a `\\boxed{` that is never closed".to_string()),
    };
    let mut answer = inside.to_string();
    for (from, to) in [
        ("\\$", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        (",\\!", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("$", ""),
    ] {
        answer = answer.replace(from, to);
    }
    let answer = simple_fraction(answer.trim())
        .or_else(|| digit_fraction(answer.trim()))
        .unwrap_or_else(|| answer.trim().to_string());
    if answer.is_empty() {
        return Err("has an empty `\\boxed{}`".into());
    }
    if let Err(e) = math::parse_answer(&answer) {
        return Err(format!(
            "has a boxed answer `{}` that the math grader cannot read ({e})",
            clip(&answer)
        ));
    }
    Ok(answer)
}

/// `\frac12`, `\frac1{2}`, `\frac{1}2` (TeX takes one digit as an argument), optionally
/// signed, as `1/2`.
fn digit_fraction(text: &str) -> Option<String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest.trim_start()),
        None => ("", text),
    };
    let rest = rest.strip_prefix("\\frac")?.trim_start();
    let argument = |s: &str| -> Option<(String, usize)> {
        let mut chars = s.chars();
        match chars.next()? {
            d if d.is_ascii_digit() => Some((d.to_string(), 1)),
            '{' => {
                let close = s.find('}')?;
                let inner = &s[1..close];
                (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()))
                    .then(|| (inner.to_string(), close + 1))
            }
            _ => None,
        }
    };
    let (numerator, used) = argument(rest)?;
    let rest = rest[used..].trim_start();
    let (denominator, used) = argument(rest)?;
    rest[used..]
        .is_empty()
        .then(|| format!("{sign}{numerator}/{denominator}"))
}

/// `\frac{a}{b}` (optionally signed) of two plain numbers as `a/b`.
fn simple_fraction(text: &str) -> Option<String> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest.trim_start()),
        None => ("", text),
    };
    let rest = rest.strip_prefix("\\frac{")?;
    let (numerator, rest) = rest.split_once('}')?;
    let denominator = rest.strip_prefix('{')?.strip_suffix('}')?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    (plain(numerator) && plain(denominator)).then(|| format!("{sign}{numerator}/{denominator}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `extractor` reads each solution's reference as the one beside it.
    fn assert_reads(extractor: AnswerExtractor, cases: &[(&str, &str)]) {
        for (solution, expected) in cases {
            assert_eq!(
                extract_reference(extractor, solution),
                Ok((*expected).into()),
                "{solution}"
            );
        }
    }

    #[test]
    fn gsm8k_takes_the_number_after_the_last_marker() {
        let solution = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n\
                        Natalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72";
        assert!(extract_reference(AnswerExtractor::Gsm8k, "72").is_err());
        assert_reads(
            AnswerExtractor::Gsm8k,
            &[
                (solution, "72"),
                ("so 1,000 #### 1,250,000 ", "1250000"),
                ("#### -3.5", "-3.5"),
                ("#### 72 dollars", "72"),
                ("#### $18", "18"),
                ("#### \\$18.50", "18.5"),
                ("#### 42.", "42"),
                ("#### 1 000", "1000"),
                ("#### -7 apples", "-7"),
            ],
        );
        for refused in [
            "#### x",
            "#### 5 apples and 3 pears",
            "#### 3 + 4",
            "#### about 7 or 8",
        ] {
            assert!(
                extract_reference(AnswerExtractor::Gsm8k, refused).is_err(),
                "{refused}"
            );
        }
        assert!(extract_reference(AnswerExtractor::Gsm8k, "#### ").is_err());
    }

    #[test]
    fn boxed_takes_the_last_balanced_box() {
        let solution = "First $\\boxed{3}$ is wrong; the area is $\\boxed{\\frac{\\sqrt{3}}{4}}$.";
        assert_reads(
            AnswerExtractor::Boxed,
            &[
                (solution, "\\frac{\\sqrt{3}}{4}"),
                ("so $\\boxed{\\dfrac{1}{2}}$", "1/2"),
                ("\\boxed{-\\frac{3}{4}}", "-3/4"),
                ("\\fbox{10,\\!000}", "10000"),
                ("the cost is $\\boxed{\\$18.90}$", "18.90"),
                ("\\boxed{\\frac12}", "1/2"),
                ("\\boxed{-\\frac1{4}}", "-1/4"),
                ("\\boxed {5}", "5"),
                ("\\boxed{\\frac{10}{4}}", "10/4"),
                ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
                ("\\boxed{[0, 1)}", "[0, 1)"),
            ],
        );
        let unreadable = extract_reference(AnswerExtractor::Boxed, "\\boxed{\\overline{AB}}");
        assert!(
            unreadable
                .as_ref()
                .is_err_and(|e| e.contains("cannot read")),
            "{unreadable:?}"
        );
        assert!(extract_reference(AnswerExtractor::Boxed, "no box").is_err());
        assert!(extract_reference(AnswerExtractor::Boxed, "\\boxed{1").is_err());
        assert!(extract_reference(AnswerExtractor::Boxed, "\\boxed{ }").is_err());
    }
}
