//! Execute (rewards): the arithmetic expression parser behind the Countdown verifier —
//! ASCII digits, `+ - * / ( ) .` and whitespace only, evaluated with exact rationals. It
//! never evaluates code: anything outside that grammar is an [`ExprError`].
//!
//! Grammar (usual precedence, left-associative):
//! ```text
//! expr   := term (('+' | '-') term)*
//! term   := unary (('*' | '/') unary)*
//! unary  := ('+' | '-') unary | atom
//! atom   := number | '(' expr ')'
//! number := digits ['.' digits] | '.' digits
//! ```

use std::fmt;

use super::rational::{ArithmeticError, Rational};

/// Nesting deeper than this (parentheses or unary signs) is refused rather than recursed
/// into, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Number literals longer than this many digits are refused before any arithmetic.
const MAX_LITERAL_DIGITS: usize = 38;

/// Why a string is not a valid expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprError {
    /// Nothing but whitespace.
    Empty,
    /// A character outside digits, `+-*/().` and whitespace (byte offset).
    ForbiddenCharacter { ch: char, offset: usize },
    /// A token where it cannot stand, or a missing operand (byte offset).
    Unexpected { offset: usize },
    /// A `(` without `)` or the reverse.
    UnbalancedParentheses,
    /// Nesting deeper than the parser follows.
    TooDeep,
    /// A malformed or over-long number literal (byte offset).
    BadNumber { offset: usize },
    /// Division by zero or overflow while evaluating.
    Arithmetic(ArithmeticError),
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty expression"),
            Self::ForbiddenCharacter { ch, offset } => {
                write!(f, "character {ch:?} at {offset} is not allowed")
            }
            Self::Unexpected { offset } => write!(f, "unexpected input at {offset}"),
            Self::UnbalancedParentheses => f.write_str("unbalanced parentheses"),
            Self::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            Self::BadNumber { offset } => write!(f, "malformed number at {offset}"),
            Self::Arithmetic(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExprError {}

impl From<ArithmeticError> for ExprError {
    fn from(e: ArithmeticError) -> Self {
        Self::Arithmetic(e)
    }
}

/// A number as written in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub value: Rational,
    /// Written with a decimal point (`3.0`), which Countdown does not accept as `3`.
    pub has_point: bool,
}

/// An evaluated expression: its exact value, the literals in order of appearance and the
/// number of binary operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    pub value: Rational,
    pub literals: Vec<Literal>,
    pub operators: usize,
}

/// Parses and evaluates `text` exactly.
pub fn evaluate(text: &str) -> Result<Evaluated, ExprError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ExprError::Empty);
    }
    check_balance(&tokens)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        end: text.len(),
        literals: Vec::new(),
        operators: 0,
    };
    let value = parser.expr(0)?;
    match parser.peek() {
        None => Ok(Evaluated {
            value,
            literals: parser.literals,
            operators: parser.operators,
        }),
        Some(Token {
            kind: TokenKind::Close,
            ..
        }) => Err(ExprError::UnbalancedParentheses),
        Some(t) => Err(ExprError::Unexpected { offset: t.offset }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TokenKind {
    Number(Rational, bool),
    Plus,
    Minus,
    Star,
    Slash,
    Open,
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    offset: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'+' => TokenKind::Plus,
            b'-' => TokenKind::Minus,
            b'*' => TokenKind::Star,
            b'/' => TokenKind::Slash,
            b'(' => TokenKind::Open,
            b')' => TokenKind::Close,
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let (value, has_point) =
                    parse_decimal(&text[start..i]).ok_or(ExprError::BadNumber { offset: start })?;
                tokens.push(Token {
                    kind: TokenKind::Number(value, has_point),
                    offset: start,
                });
                continue;
            }
            _ => {
                // Report the whole character, not the byte, for non-ASCII input.
                let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(ExprError::ForbiddenCharacter { ch, offset: i });
            }
        };
        tokens.push(Token { kind, offset: i });
        i += 1;
    }
    Ok(tokens)
}

/// Every `)` closes an earlier `(` and every `(` is closed.
fn check_balance(tokens: &[Token]) -> Result<(), ExprError> {
    let mut open = 0usize;
    for token in tokens {
        match token.kind {
            TokenKind::Open => open += 1,
            TokenKind::Close => {
                open = open
                    .checked_sub(1)
                    .ok_or(ExprError::UnbalancedParentheses)?
            }
            _ => {}
        }
    }
    if open == 0 {
        Ok(())
    } else {
        Err(ExprError::UnbalancedParentheses)
    }
}

/// `123`, `1.5`, `.5`, `3.` → exact value and whether a point was written; `None` for
/// anything else (two points, no digits, too many digits).
pub(crate) fn parse_decimal(text: &str) -> Option<(Rational, bool)> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let frac_digits = frac.unwrap_or("");
    if (int.is_empty() && frac_digits.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac_digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = int.trim_start_matches('0').len() + frac_digits.len();
    if digits > MAX_LITERAL_DIGITS {
        return None;
    }
    let mut num: i128 = 0;
    for b in int.bytes().chain(frac_digits.bytes()) {
        num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let scale = i32::try_from(frac_digits.len()).ok()?;
    let value = Rational::integer(num).scaled_by_power_of_ten(-scale).ok()?;
    Some((value, frac.is_some()))
}

/// The arithmetic of a binary operator.
type BinaryOperation = fn(Rational, Rational) -> Result<Rational, ArithmeticError>;

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    end: usize,
    literals: Vec<Literal>,
    operators: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.offset)
    }

    fn expr(&mut self, depth: usize) -> Result<Rational, ExprError> {
        self.chain(depth, Self::term, |kind| match kind {
            TokenKind::Plus => Some(Rational::checked_add),
            TokenKind::Minus => Some(Rational::checked_sub),
            _ => None,
        })
    }

    fn term(&mut self, depth: usize) -> Result<Rational, ExprError> {
        self.chain(depth, Self::unary, |kind| match kind {
            TokenKind::Star => Some(Rational::checked_mul),
            TokenKind::Slash => Some(Rational::checked_div),
            _ => None,
        })
    }

    /// One precedence level: `operand`s joined left to right by the operators
    /// `operation` gives the arithmetic of.
    fn chain(
        &mut self,
        depth: usize,
        operand: fn(&mut Self, usize) -> Result<Rational, ExprError>,
        operation: fn(TokenKind) -> Option<BinaryOperation>,
    ) -> Result<Rational, ExprError> {
        let mut value = operand(self, depth)?;
        while let Some(apply) = self.peek().and_then(|t| operation(t.kind)) {
            self.pos += 1;
            self.operators += 1;
            let rhs = operand(self, depth)?;
            value = apply(value, rhs)?;
        }
        Ok(value)
    }

    fn unary(&mut self, depth: usize) -> Result<Rational, ExprError> {
        if depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep);
        }
        match self.peek().map(|t| t.kind) {
            Some(TokenKind::Minus) => {
                self.pos += 1;
                Ok(self.unary(depth + 1)?.checked_neg()?)
            }
            Some(TokenKind::Plus) => {
                self.pos += 1;
                self.unary(depth + 1)
            }
            _ => self.atom(depth),
        }
    }

    fn atom(&mut self, depth: usize) -> Result<Rational, ExprError> {
        let Some(token) = self.peek() else {
            return Err(ExprError::Unexpected { offset: self.end });
        };
        match token.kind {
            TokenKind::Number(value, has_point) => {
                self.pos += 1;
                self.literals.push(Literal { value, has_point });
                Ok(value)
            }
            TokenKind::Open => {
                self.pos += 1;
                let value = self.expr(depth + 1)?;
                match self.peek().map(|t| t.kind) {
                    Some(TokenKind::Close) => {
                        self.pos += 1;
                        Ok(value)
                    }
                    None => Err(ExprError::UnbalancedParentheses),
                    Some(_) => Err(ExprError::Unexpected {
                        offset: self.offset(),
                    }),
                }
            }
            TokenKind::Close => Err(ExprError::UnbalancedParentheses),
            _ => Err(ExprError::Unexpected {
                offset: token.offset,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Result<Rational, ExprError> {
        evaluate(text).map(|e| e.value)
    }

    fn int(n: i128) -> Rational {
        Rational::integer(n)
    }

    #[test]
    fn evaluates_with_precedence_and_parentheses() {
        assert_eq!(value("1 + 2 * 3"), Ok(int(7)));
        assert_eq!(value("(1 + 2) * 3"), Ok(int(9)));
        assert_eq!(value("10 - 4 - 3"), Ok(int(3)));
        assert_eq!(value("8 / 4 / 2"), Ok(int(1)));
        assert_eq!(value("(1 + 2) / 3"), Ok(int(1)));
        assert_eq!(value("1 / 3 * 3"), Ok(int(1)));
        assert_eq!(value("-(2 - 5)"), Ok(int(3)));
        assert_eq!(value("2.5 * 2"), Ok(int(5)));
        assert_eq!(value(" 7\n"), Ok(int(7)));
        let e = evaluate("(44 + 19) + 35").expect("valid");
        assert_eq!(e.operators, 2);
        let lits: Vec<Rational> = e.literals.iter().map(|l| l.value).collect();
        assert_eq!(lits, vec![int(44), int(19), int(35)]);
    }

    #[test]
    fn rejects_everything_outside_the_grammar() {
        assert_eq!(value(""), Err(ExprError::Empty));
        assert_eq!(value("   "), Err(ExprError::Empty));
        assert_eq!(value("(1 + 2"), Err(ExprError::UnbalancedParentheses));
        assert_eq!(value("1 + 2)"), Err(ExprError::UnbalancedParentheses));
        assert_eq!(value(")("), Err(ExprError::UnbalancedParentheses));
        assert_eq!(
            value("1 / 0"),
            Err(ExprError::Arithmetic(ArithmeticError::DivisionByZero))
        );
        assert_eq!(
            value("1 / (2 - 2)"),
            Err(ExprError::Arithmetic(ArithmeticError::DivisionByZero))
        );
        assert_eq!(value("2 ** 3"), Err(ExprError::Unexpected { offset: 3 }));
        assert_eq!(value("2 (3)"), Err(ExprError::Unexpected { offset: 2 }));
        assert_eq!(value("1 +"), Err(ExprError::Unexpected { offset: 3 }));
        assert_eq!(value("1..2"), Err(ExprError::BadNumber { offset: 0 }));
        assert_eq!(value("."), Err(ExprError::BadNumber { offset: 0 }));
        assert_eq!(
            value("2 x 3"),
            Err(ExprError::ForbiddenCharacter { ch: 'x', offset: 2 })
        );
        assert_eq!(
            value("__import__('os')"),
            Err(ExprError::ForbiddenCharacter { ch: '_', offset: 0 })
        );
        assert_eq!(
            value("١٢"),
            Err(ExprError::ForbiddenCharacter {
                ch: '١', offset: 0
            })
        );
        assert_eq!(
            value("2 × 3"),
            Err(ExprError::ForbiddenCharacter {
                ch: '×', offset: 2
            })
        );
    }

    #[test]
    fn huge_numbers_and_deep_nesting_are_errors() {
        let huge = "9".repeat(40);
        assert_eq!(value(&huge), Err(ExprError::BadNumber { offset: 0 }));
        let tower = ["99999999999999999999"; 3].join(" * ");
        assert_eq!(
            value(&tower),
            Err(ExprError::Arithmetic(ArithmeticError::Overflow))
        );
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(value(&deep), Err(ExprError::TooDeep));
        let signs = format!("{}1", "-".repeat(10_000));
        assert_eq!(value(&signs), Err(ExprError::TooDeep));
        assert_eq!(
            value(&"(".repeat(50)),
            Err(ExprError::UnbalancedParentheses)
        );
    }
}
