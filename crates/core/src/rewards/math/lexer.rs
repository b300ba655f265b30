//! Execute (rewards): the math grader's lexer — LaTeX or plain text into tokens, with
//! everything that does not change a value dropped on the way: math delimiters (`$`,
//! `\(`, `\[`), spacing (`\,` `\!` `\;` `\quad` `~`), sizing (`\left` `\right` `\big`),
//! style (`\displaystyle` `\mathbf` `\boxed`), currency (`\$`), degree marks (`^\circ`,
//! `°`), `\text{…}` words and units, and plain words (`the answer is`, `cm`).
//!
//! Numbers are read here, whole: thousands groups (`1{,}000`, `1,\!000`, `1\,000`,
//! `1 000`, and `1,000` outside brackets — inside `(1,000)` or `[0,100]` a comma separates
//! items), decimals, and scientific notation (`1.5e-3`).

use super::super::expr::parse_decimal;
use super::value::Num;
use super::MathError;

/// Most tokens an answer may have.
pub const MAX_TOKENS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// `(` `)`, also `\langle` `\rangle`.
    Paren,
    /// `[` `]`.
    Square,
    /// `{` `}`: a TeX group.
    Brace,
    /// `\{` `\}`: a set.
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    /// Natural logarithm (`\ln`, and `\log` without a base, as sympy reads it).
    Ln,
    Exp,
    Abs,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A number; `digits` holds a plain run of digits as written (so that `\frac12` can
    /// take one digit per argument, as TeX does).
    Num {
        value: Num,
        digits: Option<String>,
    },
    Var(String),
    Pi,
    Euler,
    Infinity,
    Func(Func),
    /// `\log` (a base may follow as `_b`).
    Log,
    Frac,
    Sqrt,
    Binom,
    Plus,
    Minus,
    PlusMinus,
    Star,
    Slash,
    Caret,
    Underscore,
    Bang,
    Percent,
    Open(Bracket),
    Close(Bracket),
    /// `|`, `\vert`, `\lvert`, `\rvert`, `\mid`.
    Bar,
    Comma,
    Semicolon,
    /// The words `or` and `and` between answers.
    Or,
    Rel(RelOp),
    /// `\in`: `x \in [0, 1)` is the interval.
    In,
    Cup,
    EmptySet,
    /// `&` in a matrix.
    Amp,
    /// `\\` in a matrix.
    RowEnd,
    BeginMatrix,
    EndMatrix,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Self::Num { value, .. } => format!("the number {}", value.to_f64()),
            Self::Var(name) => format!("`{name}`"),
            other => format!("{other:?}"),
        }
    }
}

/// The tokens of an answer, and the words that were dropped (an answer made of words
/// only is compared as text).
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Tok>,
    pub words: Vec<String>,
}

/// Two- and three-letter words that are not products of variables (longer runs of
/// letters that are not function names are always words).
const SHORT_WORDS: &[&str] = &[
    "the", "is", "are", "was", "so", "we", "get", "got", "it", "its", "of", "to", "be", "as", "at",
    "by", "for", "has", "our", "ans", "not", "yes", "no", "all", "per", "cm", "mm", "km", "kg",
    "mg", "ml", "ft", "yd", "mi", "hr", "hrs", "min", "sec", "mph", "lbs", "lb", "oz", "sq", "deg",
    "rad", "cal", "th", "st", "nd", "rd",
];

/// Commands whose argument is text: words in it are dropped, anything else is read as math.
const TEXT_COMMANDS: &[&str] = &[
    "text",
    "textbf",
    "textrm",
    "textit",
    "textnormal",
    "texttt",
    "textsf",
    "mathrm",
    "mathit",
    "mathsf",
    "mathtt",
    "mbox",
    "operatorname",
    "emph",
    "hbox",
];

/// Commands that change nothing but looks: dropped (their `{…}` stays a group).
const IGNORED_COMMANDS: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "middle",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "quad",
    "qquad",
    "mathbf",
    "boldsymbol",
    "bm",
    "bf",
    "boxed",
    "fbox",
    "limits",
    "nolimits",
    "circ",
    "degree",
    "rm",
    "it",
    "mathnormal",
    "hspace",
    "phantom",
    "enspace",
    "thinspace",
    "negthinspace",
    "medspace",
    "thickspace",
    "cr",
    "noindent",
    "color",
];

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "varrho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
];

const MATRIX_ENVIRONMENTS: &[&str] = &[
    "pmatrix",
    "bmatrix",
    "Bmatrix",
    "matrix",
    "smallmatrix",
    "array",
];

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    /// Prose around the answer (some word was dropped on a first pass): every run of two
    /// or more letters outside `$…$` that is not a function name is a word, and so are
    /// `a` and `I`.
    prose: bool,
    /// Inside `$…$`, `\(…\)` or `\[…\]`.
    in_math_span: bool,
    /// Open `(`, `[` and `\{` not yet closed: a bare comma inside them separates items.
    bracket_depth: usize,
    out: &'a mut Lexed,
}

/// Splits `text` into tokens (see the module documentation for what is dropped).
pub fn lex(text: &str) -> Result<Lexed, MathError> {
    let first = lex_as(text, false)?;
    if first.words.is_empty() {
        return Ok(first);
    }
    lex_as(text, true)
}

fn lex_as(text: &str, prose: bool) -> Result<Lexed, MathError> {
    let mut out = Lexed::default();
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        prose,
        in_math_span: false,
        bracket_depth: 0,
        out: &mut out,
    };
    lexer.run()?;
    Ok(out)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        (self.pos..)
            .zip(s.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn push(&mut self, tok: Tok) -> Result<(), MathError> {
        if self.out.tokens.len() >= MAX_TOKENS {
            return Err(MathError::TooLong);
        }
        match tok {
            Tok::Open(Bracket::Paren | Bracket::Square | Bracket::Set) => self.bracket_depth += 1,
            Tok::Close(Bracket::Paren | Bracket::Square | Bracket::Set) => {
                self.bracket_depth = self.bracket_depth.saturating_sub(1);
            }
            _ => {}
        }
        self.out.tokens.push(tok);
        Ok(())
    }

    fn run(&mut self) -> Result<(), MathError> {
        while let Some(c) = self.peek() {
            match c {
                '$' => {
                    self.in_math_span = !self.in_math_span;
                    self.pos += 1;
                }
                c if c.is_whitespace() || c == '~' => self.pos += 1,
                '0'..='9' => self.number()?,
                '.' if self.at(1).is_some_and(|d| d.is_ascii_digit()) => self.number()?,
                'a'..='z' | 'A'..='Z' => self.letters()?,
                '\\' => self.command()?,
                '^' => {
                    self.pos += 1;
                    if !self.skip_degree_mark() {
                        self.push(Tok::Caret)?;
                    }
                }
                '*' if self.at(1) == Some('*') => {
                    self.pos += 2;
                    self.push(Tok::Caret)?;
                }
                '<' | '>' | '=' | '!' if self.at(1) == Some('=') => {
                    self.pos += 2;
                    self.push(Tok::Rel(match c {
                        '<' => RelOp::Le,
                        '>' => RelOp::Ge,
                        '!' => RelOp::Ne,
                        _ => RelOp::Eq,
                    }))?;
                }
                _ => {
                    self.pos += 1;
                    let tok = match c {
                        '+' => Tok::Plus,
                        '-' | '−' | '–' => Tok::Minus,
                        '±' | '∓' => Tok::PlusMinus,
                        '*' | '×' | '·' | '⋅' => Tok::Star,
                        '/' | '÷' => Tok::Slash,
                        '_' => Tok::Underscore,
                        '!' => Tok::Bang,
                        '%' => Tok::Percent,
                        '(' => Tok::Open(Bracket::Paren),
                        ')' => Tok::Close(Bracket::Paren),
                        '[' => Tok::Open(Bracket::Square),
                        ']' => Tok::Close(Bracket::Square),
                        '{' => Tok::Open(Bracket::Brace),
                        '}' => Tok::Close(Bracket::Brace),
                        '|' => Tok::Bar,
                        ',' => Tok::Comma,
                        ';' => Tok::Semicolon,
                        '=' => Tok::Rel(RelOp::Eq),
                        '<' => Tok::Rel(RelOp::Lt),
                        '>' => Tok::Rel(RelOp::Gt),
                        '≤' => Tok::Rel(RelOp::Le),
                        '≥' => Tok::Rel(RelOp::Ge),
                        '≠' => Tok::Rel(RelOp::Ne),
                        '∈' => Tok::In,
                        '∪' => Tok::Cup,
                        '∅' => Tok::EmptySet,
                        '&' => Tok::Amp,
                        'π' => Tok::Pi,
                        '∞' => Tok::Infinity,
                        '√' => Tok::Sqrt,
                        '°' => continue,
                        other => {
                            return Err(MathError::Unsupported(format!("character `{other}`")))
                        }
                    };
                    self.push(tok)?;
                }
            }
        }
        Ok(())
    }

    /// After `^`: `\circ` or `{\circ}` (degrees) is dropped with the `^`.
    fn skip_degree_mark(&mut self) -> bool {
        let save = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        for mark in ["\\circ", "{\\circ}", "{ \\circ }", "{\\circ }", "{ \\circ}"] {
            if self.starts_with(mark) {
                let after = self.chars.get(self.pos + mark.chars().count()).copied();
                if mark.ends_with('}') || !after.is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.pos += mark.chars().count();
                    return true;
                }
            }
        }
        self.pos = save;
        false
    }

    /// After a dropped unit: its power (`\text{cm}^2`, `m^{3}`) goes with it.
    fn skip_unit_power(&mut self) {
        let save = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        if self.peek() == Some('^') {
            if self.at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 2;
                return;
            }
            if self.at(1) == Some('{')
                && self.at(2).is_some_and(|c| c.is_ascii_digit())
                && self.at(3) == Some('}')
            {
                self.pos += 4;
                return;
            }
        }
        self.pos = save;
    }

    fn digits(&mut self) -> String {
        let mut s = String::new();
        while let Some(d) = self.peek().filter(char::is_ascii_digit) {
            s.push(d);
            self.pos += 1;
        }
        s
    }

    /// A thousands separator followed by exactly three digits (and no fourth): its length
    /// in characters, or `None`.
    fn thousands_separator(&self) -> Option<usize> {
        let separators: &[&str] = &["{,}", ",\\!", "\\!", "\\,", "\\;", "\\ ", "~", " "];
        let mut found = separators
            .iter()
            .find(|s| self.starts_with(s))
            .map(|s| s.chars().count());
        if found.is_none() && self.bracket_depth == 0 && self.peek() == Some(',') {
            found = Some(1);
        }
        let len = found?;
        let group_is_three_digits = (0..3)
            .all(|k| self.at(len + k).is_some_and(|c| c.is_ascii_digit()))
            && !self.at(len + 3).is_some_and(|c| c.is_ascii_digit());
        group_is_three_digits.then_some(len)
    }

    fn number(&mut self) -> Result<(), MathError> {
        let mut int = self.digits();
        let mut grouped = false;
        if !int.is_empty() && int.len() <= 3 && !(int.starts_with('0') && int.len() > 1) {
            while let Some(len) = self.thousands_separator() {
                self.pos += len;
                int.push_str(&self.digits());
                grouped = true;
            }
        }
        let mut text = int.clone();
        let mut plain = !grouped;
        if self.peek() == Some('.') && self.at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.digits());
            plain = false;
        }
        let mut exponent: Option<i32> = None;
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign_len = usize::from(matches!(self.at(1), Some('+' | '-')));
            let digit_count = (0..)
                .take_while(|&k| {
                    self.at(1 + sign_len + k)
                        .is_some_and(|c| c.is_ascii_digit())
                })
                .count();
            let next = self.at(1 + sign_len + digit_count);
            if (1..=3).contains(&digit_count) && !next.is_some_and(|c| c.is_ascii_alphabetic()) {
                let negative = self.at(1) == Some('-');
                self.pos += 1 + sign_len;
                let magnitude: i32 = self.digits().parse().unwrap_or(0);
                exponent = Some(if negative { -magnitude } else { magnitude });
                plain = false;
            }
        }
        let value = number_value(&text, exponent)?;
        self.push(Tok::Num {
            value,
            digits: plain.then_some(int),
        })
    }

    fn letters(&mut self) -> Result<(), MathError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        let lower = word.to_ascii_lowercase();
        let tok = match word.as_str() {
            "sqrt" => Some(Tok::Sqrt),
            "pi" => Some(Tok::Pi),
            "inf" | "infty" | "infinity" => Some(Tok::Infinity),
            "e" => Some(Tok::Euler),
            "log" => Some(Tok::Log),
            name => function(name).map(Tok::Func),
        };
        if let Some(tok) = tok {
            return self.push(tok);
        }
        match lower.as_str() {
            "or" | "and" => return self.push(Tok::Or),
            "in" => return self.push(Tok::In),
            _ => {}
        }
        let prose = self.prose && !self.in_math_span;
        if word.len() >= 4
            || (word.len() >= 2 && (prose || SHORT_WORDS.contains(&lower.as_str())))
            || (prose && matches!(word.as_str(), "a" | "A" | "I"))
        {
            self.out.words.push(lower);
            self.skip_unit_power();
            return Ok(());
        }
        for c in word.chars() {
            self.push(if c == 'e' {
                Tok::Euler
            } else {
                Tok::Var(c.to_string())
            })?;
        }
        Ok(())
    }

    /// The text of a `{…}` argument starting at the current position (after spaces), with
    /// the position moved past it; `None` when there is no balanced group.
    fn braced_argument(&mut self) -> Option<String> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        if self.peek() != Some('{') {
            return None;
        }
        let mut depth = 0usize;
        let mut i = self.pos;
        while let Some(&c) = self.chars.get(i) {
            match c {
                '\\' => i += 1,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let text = self.chars[self.pos + 1..i].iter().collect();
                        self.pos = i + 1;
                        return Some(text);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    fn command(&mut self) -> Result<(), MathError> {
        self.pos += 1; // the backslash
        let Some(first) = self.peek() else {
            return Err(MathError::Unsupported("a lone `\\`".into()));
        };
        if !first.is_ascii_alphabetic() {
            self.pos += 1;
            let tok = match first {
                '{' => Tok::Open(Bracket::Set),
                '}' => Tok::Close(Bracket::Set),
                '%' => Tok::Percent,
                '\\' => Tok::RowEnd,
                '|' => Tok::Bar,
                '(' | '[' => {
                    self.in_math_span = true;
                    return Ok(());
                }
                ')' | ']' => {
                    self.in_math_span = false;
                    return Ok(());
                }
                ',' | ';' | ':' | '!' | ' ' | '$' | '>' => return Ok(()),
                other => return Err(MathError::Unsupported(format!("`\\{other}`"))),
            };
            return self.push(tok);
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let name = name.as_str();
        if TEXT_COMMANDS.contains(&name) {
            return self.text_argument();
        }
        if IGNORED_COMMANDS.contains(&name) {
            if matches!(name, "left" | "right" | "middle") {
                // `\left.` and `\right.` are invisible delimiters.
                while self.peek().is_some_and(char::is_whitespace) {
                    self.pos += 1;
                }
                if self.peek() == Some('.') {
                    self.pos += 1;
                }
            }
            if matches!(name, "hspace" | "phantom" | "color") {
                let _ = self.braced_argument();
            }
            return Ok(());
        }
        if GREEK.contains(&name) {
            return self.push(Tok::Var(name.to_string()));
        }
        if name == "begin" || name == "end" {
            let env = self.braced_argument().unwrap_or_default();
            let env = env.trim().trim_end_matches('*');
            if !MATRIX_ENVIRONMENTS.contains(&env) {
                return Err(MathError::Unsupported(format!("the `{env}` environment")));
            }
            if name == "begin" {
                if env == "array" {
                    let _ = self.braced_argument(); // the column specification
                }
                return self.push(Tok::BeginMatrix);
            }
            return self.push(Tok::EndMatrix);
        }
        let tok = match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => Tok::Frac,
            "sqrt" => Tok::Sqrt,
            "binom" | "dbinom" | "tbinom" => Tok::Binom,
            "pi" => Tok::Pi,
            "infty" | "infin" => Tok::Infinity,
            "log" => Tok::Log,
            "cdot" | "times" | "ast" => Tok::Star,
            "div" => Tok::Slash,
            "pm" | "mp" => Tok::PlusMinus,
            "le" | "leq" | "leqslant" => Tok::Rel(RelOp::Le),
            "ge" | "geq" | "geqslant" => Tok::Rel(RelOp::Ge),
            "lt" => Tok::Rel(RelOp::Lt),
            "gt" => Tok::Rel(RelOp::Gt),
            "ne" | "neq" => Tok::Rel(RelOp::Ne),
            "in" => Tok::In,
            "cup" => Tok::Cup,
            "emptyset" | "varnothing" => Tok::EmptySet,
            "lbrace" => Tok::Open(Bracket::Set),
            "rbrace" => Tok::Close(Bracket::Set),
            "langle" => Tok::Open(Bracket::Paren),
            "rangle" => Tok::Close(Bracket::Paren),
            "lvert" | "rvert" | "vert" | "mid" => Tok::Bar,
            "percent" => Tok::Percent,
            other => match function(other) {
                Some(f) => Tok::Func(f),
                None => return Err(MathError::Unsupported(format!("`\\{other}`"))),
            },
        };
        self.push(tok)
    }

    /// `\text{…}` and its kind: words are dropped (`or`/`and` separate answers), anything
    /// else is read as math inside a group.
    fn text_argument(&mut self) -> Result<(), MathError> {
        let save = self.pos;
        let Some(content) = self.braced_argument() else {
            self.pos = save;
            return Ok(());
        };
        let wordy = content.chars().any(char::is_alphabetic)
            && content.chars().all(|c| {
                c.is_alphabetic()
                    || c.is_whitespace()
                    || matches!(c, '.' | '\'' | '-' | '~' | '\\' | ',' | ';')
            });
        if wordy {
            for word in content
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
            {
                let lower = word.to_lowercase();
                if lower == "or" || lower == "and" {
                    self.push(Tok::Or)?;
                } else {
                    self.out.words.push(lower);
                }
            }
            self.skip_unit_power();
            return Ok(());
        }
        // Read the content as math, in place: step back inside the braces.
        self.pos = save;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        Ok(())
    }
}

fn function(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "cot" => Func::Cot,
        "arcsin" => Func::Arcsin,
        "arccos" => Func::Arccos,
        "arctan" => Func::Arctan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" => Func::Ln,
        "exp" => Func::Exp,
        "abs" => Func::Abs,
        _ => return None,
    })
}

/// The value of a decimal literal with an optional power-of-ten exponent: exact when it
/// fits an `i128` fraction, else the nearest `f64`.
fn number_value(text: &str, exponent: Option<i32>) -> Result<Num, MathError> {
    let exact = parse_decimal(text).and_then(|(q, _)| match exponent {
        None => Some(q),
        Some(e) => q.scaled_by_power_of_ten(e).ok(),
    });
    if let Some(q) = exact {
        return Ok(Num::Exact(q));
    }
    let spelled = match exponent {
        Some(e) => format!("{text}e{e}"),
        None => text.to_string(),
    };
    let x: f64 = spelled
        .parse()
        .map_err(|_| MathError::Syntax(format!("malformed number `{spelled}`")))?;
    Num::from_f64(x).map_err(|_| MathError::Syntax(format!("number `{spelled}` out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> Vec<f64> {
        lex(text)
            .expect("lexes")
            .tokens
            .iter()
            .filter_map(|t| match t {
                Tok::Num { value, .. } => Some(value.to_f64()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn thousands_groups_in_every_spelling() {
        for text in [
            "1,000", "1{,}000", "1,\\!000", "1\\,000", "1 000", "$1,000$",
        ] {
            assert_eq!(numbers(text), vec![1000.0], "{text}");
        }
        assert_eq!(numbers("12,345,678.5"), vec![12_345_678.5]);
        assert_eq!(
            numbers("[0,100]"),
            vec![0.0, 100.0],
            "a comma in brackets separates"
        );
        assert_eq!(numbers("(1,000)"), vec![1.0, 0.0]);
        assert_eq!(numbers("(1{,}000)"), vec![1000.0]);
        assert_eq!(numbers("1,5"), vec![1.0, 5.0]);
        assert_eq!(numbers("1,0000"), vec![1.0, 0.0]);
    }

    #[test]
    fn decimals_and_scientific_notation() {
        assert_eq!(numbers("1.5e3"), vec![1500.0]);
        assert_eq!(numbers("2.5E-2"), vec![0.025]);
        assert_eq!(numbers(".5"), vec![0.5]);
        let lexed = lex("2e").expect("lexes");
        assert_eq!(lexed.tokens.len(), 2, "2 times e");
    }

    #[test]
    fn presentation_is_dropped_and_words_are_kept_aside() {
        let lexed = lex("\\left( \\displaystyle 5 \\text{ cm} \\right)").expect("lexes");
        assert_eq!(lexed.tokens.len(), 3);
        assert_eq!(lexed.words, vec!["cm".to_string()]);
        let lexed = lex("The answer is 30^\\circ").expect("lexes");
        assert_eq!(lexed.tokens.len(), 1);
        assert_eq!(
            lex("x = 1 \\text{ or } x = 2").expect("lexes").tokens.len(),
            7
        );
        assert!(lex("\\foo").is_err());
        assert!(lex("\\begin{cases}").is_err());
    }
}
