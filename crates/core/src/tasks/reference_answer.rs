//! Check and execute (the `dataset` stage): the reference answer inside a worked solution,
//! for data in the layouts users already have — GSM8K (`answer` ends with `#### 72`) and
//! MATH (`solution` puts the result in `\boxed{…}`) — as a JSONL source's
//! `extract_answer:` declares.

use crate::manifest::AnswerExtractor;

/// The reference answer `extractor` finds in `text`, or why there is none.
pub fn extract_reference(extractor: AnswerExtractor, text: &str) -> Result<String, String> {
    match extractor {
        AnswerExtractor::Gsm8k => gsm8k(text),
        AnswerExtractor::Boxed => boxed(text),
    }
}

/// GSM8K: the text after the last `####`, trimmed, without thousands separators
/// (`1,000` → `1000`), as the GSM8K evaluation reads it.
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
    if cleaned.is_empty() {
        return Err("has nothing after its `####`".into());
    }
    Ok(cleaned)
}

/// MATH: the contents of the last `\boxed{…}` (or `\fbox{…}`), braces balanced, with the
/// LaTeX that does not change a value removed (`,\!` thousands separators, `\!`, `\,`, `\left`, `\right`, `$`,
/// `\dfrac`/`\tfrac` spelt `\frac`, and a `\frac{a}{b}` of plain numbers written `a/b` so
/// that the accuracy reward compares it exactly).
fn boxed(text: &str) -> Result<String, String> {
    let start = ["\\boxed{", "\\fbox{"]
        .iter()
        .filter_map(|open| text.rfind(open).map(|i| i + open.len()))
        .max()
        .ok_or_else(|| "has no `\\boxed{…}` answer".to_string())?;
    let mut depth = 1usize;
    let mut end = None;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(start + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| "has a `\\boxed{` that is never closed".to_string())?;
    let mut answer = text[start..end].to_string();
    for (from, to) in [
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
    let answer = simple_fraction(answer.trim()).unwrap_or_else(|| answer.trim().to_string());
    if answer.is_empty() {
        return Err("has an empty `\\boxed{}`".into());
    }
    Ok(answer)
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

    #[test]
    fn gsm8k_takes_the_number_after_the_last_marker() {
        let solution = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n\
                        Natalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72";
        assert_eq!(
            extract_reference(AnswerExtractor::Gsm8k, solution),
            Ok("72".into())
        );
        assert_eq!(
            extract_reference(AnswerExtractor::Gsm8k, "so 1,000 #### 1,250,000 "),
            Ok("1250000".into())
        );
        assert_eq!(
            extract_reference(AnswerExtractor::Gsm8k, "#### -3.5"),
            Ok("-3.5".into())
        );
        assert!(extract_reference(AnswerExtractor::Gsm8k, "72").is_err());
        assert!(extract_reference(AnswerExtractor::Gsm8k, "#### ").is_err());
    }

    #[test]
    fn boxed_takes_the_last_balanced_box() {
        let solution = "First $\\boxed{3}$ is wrong; the area is $\\boxed{\\frac{\\sqrt{3}}{4}}$.";
        assert_eq!(
            extract_reference(AnswerExtractor::Boxed, solution),
            Ok("\\frac{\\sqrt{3}}{4}".into())
        );
        assert_eq!(
            extract_reference(AnswerExtractor::Boxed, "so $\\boxed{\\dfrac{1}{2}}$"),
            Ok("1/2".into())
        );
        assert_eq!(
            extract_reference(AnswerExtractor::Boxed, "\\boxed{-\\frac{3}{4}}"),
            Ok("-3/4".into())
        );
        assert_eq!(
            extract_reference(AnswerExtractor::Boxed, "\\fbox{10,\\!000}"),
            Ok("10000".into())
        );
        assert!(extract_reference(AnswerExtractor::Boxed, "no box").is_err());
        assert!(extract_reference(AnswerExtractor::Boxed, "\\boxed{1").is_err());
        assert!(extract_reference(AnswerExtractor::Boxed, "\\boxed{ }").is_err());
    }
}
