//! Execute (rewards): where an answer stands in free text — the last `\boxed{…}`, the last
//! math span, the last number or expression — for the accuracy reward's `answer_in:
//! boxed | anywhere`, and for reading a MATH solution's reference. Every search is one
//! pass over the text, so a completion of any length is located in linear time.

/// What a search for a boxed answer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boxed<'a> {
    /// No `\boxed{` or `\fbox{` at all.
    Missing,
    /// The last one is never closed.
    Unclosed,
    /// The text inside the last one, braces balanced.
    Found(&'a str),
}

/// The last `\boxed{…}` or `\fbox{…}` (spaces allowed before the brace, as TeX allows);
/// escaped braces `\{` `\}` inside do not count.
pub fn last_boxed(text: &str) -> Boxed<'_> {
    let mut start = None;
    for command in ["\\boxed", "\\fbox"] {
        for (i, _) in text.match_indices(command) {
            let after = &text[i + command.len()..];
            let trimmed = after.trim_start();
            if trimmed.starts_with('{') {
                let open = i + command.len() + (after.len() - trimmed.len());
                if start.is_none_or(|s| open > s) {
                    start = Some(open);
                }
            }
        }
    }
    let Some(open) = start else {
        return Boxed::Missing;
    };
    match balanced_end(text, open) {
        Some(close) => Boxed::Found(&text[open + 1..close]),
        None => Boxed::Unclosed,
    }
}

/// The index of the `}` closing the `{` at `open`.
fn balanced_end(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The content of the last complete math span: `$…$`, `$$…$$`, `\(…\)` or `\[…\]`
/// (an escaped `\$` is a dollar sign, not a delimiter).
pub fn last_math_span(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let (close, skip): (&str, usize) = if rest.starts_with("$$") {
            ("$$", 2)
        } else if rest.starts_with('$') {
            ("$", 1)
        } else if rest.starts_with("\\(") {
            ("\\)", 2)
        } else if rest.starts_with("\\[") {
            ("\\]", 2)
        } else if bytes[i] == b'\\' {
            i += 2; // an escaped character, `\$` included
            continue;
        } else {
            i += 1;
            continue;
        };
        let body = i + skip;
        match find_unescaped(text, body, close) {
            Some(end) => {
                last = Some(&text[body..end]);
                i = end + close.len();
            }
            None => break,
        }
    }
    last
}

/// The first `needle` at or after `from` that is not preceded by an escaping backslash
/// (for `$`).
fn find_unescaped(text: &str, from: usize, needle: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if needle.starts_with('$') && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if text[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The last run of digits and arithmetic (`0-9 . , / + - * ^ ( )` and spaces between
/// them) that holds a digit, trimmed of spaces and of trailing punctuation: the answer
/// of a completion that states it without marking it up.
pub fn last_expression(text: &str) -> Option<&str> {
    let is_part = |c: char| c.is_ascii_digit() || "., /+-*^()".contains(c);
    let mut best: Option<&str> = None;
    let mut start: Option<usize> = None;
    let mut has_digit = false;
    for (i, c) in text.char_indices() {
        if is_part(c) {
            if start.is_none() {
                start = Some(i);
                has_digit = false;
            }
            has_digit |= c.is_ascii_digit();
        } else if let Some(s) = start.take() {
            if has_digit {
                best = trimmed_run(&text[s..i]).or(best);
            }
        }
    }
    if let (Some(s), true) = (start, has_digit) {
        best = trimmed_run(&text[s..]).or(best);
    }
    best.map(balance_parentheses)
}

/// A run without its surrounding spaces and trailing punctuation, if a digit is left.
fn trimmed_run(run: &str) -> Option<&str> {
    let run = run
        .trim()
        .trim_end_matches(['.', ',', ' ', '+', '-', '*', '/', '^', '('])
        .trim_start_matches([',', ' ', ')', '.']);
    run.bytes().any(|b| b.is_ascii_digit()).then_some(run)
}

/// `(3` → `3`, `4)` → `4`: unmatched parentheses at the ends of a run are not part of it.
fn balance_parentheses(run: &str) -> &str {
    let mut run = run;
    loop {
        let opens = run.matches('(').count();
        let closes = run.matches(')').count();
        if opens > closes && run.starts_with('(') {
            run = run[1..].trim_start();
        } else if closes > opens && run.ends_with(')') {
            run = run[..run.len() - 1].trim_end();
        } else {
            return run;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_balanced_box() {
        assert_eq!(last_boxed("so \\boxed{5}"), Boxed::Found("5"));
        assert_eq!(last_boxed("\\boxed {5}"), Boxed::Found("5"));
        assert_eq!(
            last_boxed("\\boxed{1} then \\fbox{\\frac{1}{2}}"),
            Boxed::Found("\\frac{1}{2}")
        );
        assert_eq!(last_boxed("\\boxed{\\{1,2\\}}"), Boxed::Found("\\{1,2\\}"));
        assert_eq!(last_boxed("\\boxed{1"), Boxed::Unclosed);
        assert_eq!(last_boxed("no box, \\boxed alone"), Boxed::Missing);
        assert_eq!(last_boxed(""), Boxed::Missing);
    }

    #[test]
    fn the_last_math_span() {
        assert_eq!(last_math_span("a $1$ and $$2$$"), Some("2"));
        assert_eq!(last_math_span("so \\(-5\\)."), Some("-5"));
        assert_eq!(last_math_span("\\[x = 3\\] done"), Some("x = 3"));
        assert_eq!(last_math_span("costs \\$5 or $6$"), Some("6"));
        assert_eq!(last_math_span("a $1$ then $unclosed"), Some("1"));
        assert_eq!(last_math_span("none"), None);
    }

    #[test]
    fn the_last_number_or_expression() {
        assert_eq!(last_expression("The answer is 42."), Some("42"));
        assert_eq!(last_expression("first 3, then 1,000 apples"), Some("1,000"));
        assert_eq!(last_expression("x = -3/4, done"), Some("-3/4"));
        assert_eq!(last_expression("(2 + 3) * 4"), Some("(2 + 3) * 4"));
        assert_eq!(last_expression("it is 7)"), Some("7"));
        assert_eq!(last_expression("no digits here"), None);
    }
}
