//! Execute (rewards): reading a numeric answer the way people write one — `42`, `-3`,
//! `0.5`, `5e-1`, `1/2`, `1,000` — into an exact [`Rational`], for the `accuracy` reward's
//! numeric comparison and for normalising answers before a majority vote.
//!
//! The rules, so that a grader is predictable:
//! - ASCII digits and signs only; other scripts' digits (`١٢`) and the Unicode minus
//!   (`−3`) are not numbers.
//! - Commas only as thousands separators in groups of three (`1,000`, `12,345.5`);
//!   `1,5` is not a number (it could be a decimal comma or a list).
//! - An exponent `e`/`E` with at most three digits, applied exactly (`5e-1` = 1/2).
//! - A fraction is two such numbers around one `/` (`1/2`, `-3 / 4`, `1.5/3`).
//! - Surrounding whitespace and one pair of `$…$` are ignored; nothing else is.

use super::expr::parse_decimal;
use super::rational::Rational;

/// The exact value of a numeric answer, or `None` when the text is not a number.
pub fn parse_number(text: &str) -> Option<Rational> {
    let text = text.trim();
    let text = text
        .strip_prefix('$')
        .and_then(|t| t.strip_suffix('$'))
        .unwrap_or(text)
        .trim();
    match text.split_once('/') {
        Some((num, den)) => {
            let num = parse_scalar(num.trim())?;
            let den = parse_scalar(den.trim())?;
            num.checked_div(den).ok()
        }
        None => parse_scalar(text),
    }
}

/// Whether two numbers are the same answer: exactly equal, or within a relative 1e-6 (so
/// `0.333` does not match `1/3` but `0.3333333` does).
pub fn numbers_match(a: Rational, b: Rational) -> bool {
    if a == b {
        return true;
    }
    let (x, y) = (a.to_f64(), b.to_f64());
    (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-12)
}

/// A signed decimal with optional thousands commas and exponent.
fn parse_scalar(text: &str) -> Option<Rational> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa = strip_thousands(mantissa)?;
    let (mut value, _) = parse_decimal(&mantissa)?;
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let exp: i32 = exponent.parse().ok()?;
        value = value.scaled_by_power_of_ten(exp).ok()?;
    }
    if negative {
        value = value.checked_neg().ok()?;
    }
    Some(value)
}

/// `12,345.5` → `12345.5`; `None` when commas are not in groups of three.
fn strip_thousands(mantissa: &str) -> Option<String> {
    if !mantissa.contains(',') {
        return Some(mantissa.to_string());
    }
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    if frac.is_some_and(|f| f.contains(',')) {
        return None;
    }
    let mut groups = int.split(',');
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut out = first.to_string();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        out.push_str(group);
    }
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Option<Rational> {
        Rational::new(n, d).ok()
    }

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse_number("42"), q(42, 1));
        assert_eq!(parse_number(" -3 "), q(-3, 1));
        assert_eq!(parse_number("0.5"), q(1, 2));
        assert_eq!(parse_number("5e-1"), q(1, 2));
        assert_eq!(parse_number("1.5E2"), q(150, 1));
        assert_eq!(parse_number("1/2"), q(1, 2));
        assert_eq!(parse_number("-3 / 4"), q(-3, 4));
        assert_eq!(parse_number("1,000"), q(1000, 1));
        assert_eq!(parse_number("12,345.5"), q(24691, 2));
        assert_eq!(parse_number("$7$"), q(7, 1));
        assert_eq!(parse_number(".25"), q(1, 4));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "abc",
            "1,5",
            "1,0000",
            ",100",
            "1/0",
            "1/2/3",
            "١٢",
            "1e",
            "1e1000",
            "e5",
            "--1",
            "1 2",
            "0x10",
            "inf",
            "NaN",
            "1.2.3",
            "12,345.6,7",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?} is not a number");
        }
        let huge = "9".repeat(200);
        assert_eq!(parse_number(&huge), None);
    }

    #[test]
    fn matches_exactly_or_within_a_millionth() {
        let half = parse_number("1/2").expect("number");
        assert!(numbers_match(half, parse_number("0.5").expect("number")));
        assert!(numbers_match(half, parse_number("5e-1").expect("number")));
        let third = parse_number("1/3").expect("number");
        assert!(numbers_match(
            third,
            parse_number("0.3333333").expect("number")
        ));
        assert!(!numbers_match(
            third,
            parse_number("0.333").expect("number")
        ));
        assert!(!numbers_match(
            parse_number("0").expect("number"),
            parse_number("1e-9").expect("number")
        ));
    }
}
