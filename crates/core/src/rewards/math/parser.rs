//! Execute (rewards): the math grader's parser — tokens into a [`MathAnswer`].
//!
//! ```text
//! answer   := item ((',' | ';' | or | and) item)*          several: a List
//! item     := [var '\in'] part ('\cup' part)*               several: a Union (or a Set)
//! part     := '\{' answer? '\}' | matrix
//!           | '(' | '[' answer-with-a-comma ')' | ']'       a tuple or an interval
//!           | relation
//! relation := expr (('=' | '<' | '\le' | …) expr)*
//! expr     := [sign] term (('+' | '-' | '\pm') term)*
//! term     := unary (('*' | '/' | juxtaposition) unary)*
//! unary    := '-' unary | '+' unary | power
//! power    := postfix ['^' (group | unary)]
//! postfix  := atom ('!' | '%')*
//! atom     := number | variable ['_' sub] | \pi | e | \infty | '(' expr ')' | '{' expr '}'
//!           | '|' expr '|' | \frac arg arg | \sqrt['[' expr ']'] arg | \binom arg arg
//!           | function ['^' power] ['_' base] arg
//! arg      := one digit of a number | atom                  (`\frac12` is ½, as in TeX)
//! ```
//!
//! Nesting (groups, signs, powers, arguments) deeper than [`MAX_DEPTH`] is an error, and a
//! list, set, tuple or matrix row longer than [`MAX_ITEMS`] too, so parsing — like
//! lexing — is linear in the (capped) input and cannot overflow the stack.

use super::expression::{Expr, Sign};
use super::lexer::{Bracket, Func, Tok};
use super::structures::{MathAnswer, Relation, Scalar};
use super::value::Num;
use super::MathError;

/// Deepest nesting followed.
pub const MAX_DEPTH: usize = 32;

/// Most elements of a list, set, tuple, or matrix (all rows together).
pub const MAX_ITEMS: usize = 64;

pub struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Parses a whole answer from its tokens.
pub fn parse(tokens: Vec<Tok>) -> Result<MathAnswer, MathError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let answer = parser.answer()?;
    match parser.peek() {
        None => Ok(answer),
        Some(t) => Err(MathError::Syntax(format!("unexpected {}", t.describe()))),
    }
}

fn is_separator(tok: &Tok) -> bool {
    matches!(tok, Tok::Comma | Tok::Semicolon | Tok::Or)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + offset)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), MathError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> MathError {
        match self.peek() {
            Some(t) => MathError::Syntax(format!("unexpected {}", t.describe())),
            None => MathError::Syntax("the answer ends too early".into()),
        }
    }

    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(MathError::TooDeep);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Runs `parse` one level deeper (refused past `MAX_DEPTH`), and comes back up.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, MathError>,
    ) -> Result<T, MathError> {
        self.enter()?;
        let parsed = parse(self);
        self.leave();
        parsed
    }

    /// Items separated by commas (or `;`, `or`, `and`) up to `end` (not consumed), each
    /// `a \pm b` counted as its two answers.
    fn items(&mut self, end: Option<&Tok>) -> Result<Vec<MathAnswer>, MathError> {
        let mut items = Vec::new();
        loop {
            while self.peek().is_some_and(is_separator) && !items.is_empty() {
                self.pos += 1;
            }
            if self.peek() == end {
                break;
            }
            for item in self.item()? {
                items.push(item);
            }
            if items.len() > MAX_ITEMS {
                return Err(MathError::TooLong);
            }
            if self.peek() == end {
                break;
            }
            if !self.peek().is_some_and(is_separator) {
                return Err(self.unexpected());
            }
        }
        Ok(items)
    }

    fn answer(&mut self) -> Result<MathAnswer, MathError> {
        self.enter()?;
        let mut items = self.items(None)?;
        self.leave();
        match items.len() {
            0 => Err(MathError::Empty),
            1 => Ok(items.remove(0)),
            _ => Ok(MathAnswer::List(items)),
        }
    }

    /// One item; several when it is `a \pm b`.
    fn item(&mut self) -> Result<Vec<MathAnswer>, MathError> {
        if matches!(self.peek(), Some(Tok::Var(_))) && self.peek_at(1) == Some(&Tok::In) {
            self.pos += 2;
        }
        let mut parts = self.part()?;
        if self.peek() != Some(&Tok::Cup) {
            return Ok(parts);
        }
        while self.eat(&Tok::Cup) {
            parts.extend(self.part()?);
            if parts.len() > MAX_ITEMS {
                return Err(MathError::TooLong);
            }
        }
        // A union of sets is their set; otherwise a union of intervals.
        if parts.iter().all(|p| matches!(p, MathAnswer::Set(_))) {
            let mut all = Vec::new();
            for part in parts {
                if let MathAnswer::Set(elements) = part {
                    all.extend(elements);
                }
            }
            return Ok(vec![MathAnswer::Set(all)]);
        }
        Ok(vec![MathAnswer::Union(parts)])
    }

    /// Where the bracket opened at `self.pos` closes, and whether a comma stands directly
    /// inside it.
    fn bracket_extent(&self) -> (Option<usize>, bool) {
        let mut depth = 0usize;
        let mut comma = false;
        for (i, tok) in self.tokens[self.pos..].iter().enumerate() {
            match tok {
                Tok::Open(_) | Tok::BeginMatrix => depth += 1,
                Tok::Close(_) | Tok::EndMatrix => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return (Some(self.pos + i), comma);
                    }
                }
                Tok::Comma if depth == 1 => comma = true,
                _ => {}
            }
        }
        (None, comma)
    }

    fn part(&mut self) -> Result<Vec<MathAnswer>, MathError> {
        self.nested(Self::part_inner)
    }

    fn part_inner(&mut self) -> Result<Vec<MathAnswer>, MathError> {
        match self.peek() {
            Some(Tok::EmptySet) => {
                self.pos += 1;
                return Ok(vec![MathAnswer::Set(Vec::new())]);
            }
            Some(Tok::Open(Bracket::Set)) => {
                self.pos += 1;
                let items = self.items(Some(&Tok::Close(Bracket::Set)))?;
                self.expect(&Tok::Close(Bracket::Set))?;
                return Ok(vec![MathAnswer::Set(items)]);
            }
            Some(Tok::BeginMatrix) => return Ok(vec![self.matrix()?]),
            Some(Tok::Open(open @ (Bracket::Paren | Bracket::Square | Bracket::Brace))) => {
                let open = *open;
                let (close_at, comma) = self.bracket_extent();
                if let (Some(close_at), true) = (close_at, comma) {
                    let Tok::Close(close) = self.tokens[close_at] else {
                        return Err(self.unexpected());
                    };
                    self.pos += 1;
                    let items = self.items(Some(&Tok::Close(close)))?;
                    self.expect(&Tok::Close(close))?;
                    return Ok(vec![if open == Bracket::Brace {
                        MathAnswer::Set(items)
                    } else {
                        MathAnswer::Bracketed { open, close, items }
                    }]);
                }
            }
            _ => {}
        }
        self.relation()
    }

    fn matrix(&mut self) -> Result<MathAnswer, MathError> {
        self.expect(&Tok::BeginMatrix)?;
        let mut rows: Vec<Vec<Scalar>> = vec![Vec::new()];
        let mut entries = 0;
        loop {
            match self.peek() {
                Some(Tok::EndMatrix) => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::RowEnd) => {
                    self.pos += 1;
                    rows.push(Vec::new());
                }
                Some(Tok::Amp) => {
                    self.pos += 1;
                }
                None => return Err(MathError::Syntax("a matrix without `\\end`".into())),
                Some(_) => {
                    let entry = self.expr()?;
                    entries += 1;
                    if entries > MAX_ITEMS * 4 {
                        return Err(MathError::TooLong);
                    }
                    if let Some(row) = rows.last_mut() {
                        row.push(Scalar::new(&entry));
                    }
                    if !matches!(self.peek(), Some(Tok::Amp | Tok::RowEnd | Tok::EndMatrix)) {
                        return Err(self.unexpected());
                    }
                }
            }
        }
        while rows.last().is_some_and(Vec::is_empty) {
            rows.pop();
        }
        let width = rows.first().map_or(0, Vec::len);
        if width == 0 || rows.iter().any(|r| r.len() != width) {
            return Err(MathError::Syntax(
                "a matrix with rows of different lengths".into(),
            ));
        }
        Ok(MathAnswer::Matrix(rows))
    }

    fn relation(&mut self) -> Result<Vec<MathAnswer>, MathError> {
        let first = self.expr()?;
        let mut sides = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(op)) = self.peek() {
            ops.push(*op);
            self.pos += 1;
            sides.push(self.expr()?);
            if sides.len() > MAX_ITEMS {
                return Err(MathError::TooLong);
            }
        }
        let plus_minus = sides.iter().any(Expr::has_plus_minus);
        let readings: Vec<Vec<Expr>> = if plus_minus {
            [false, true]
                .iter()
                .map(|&minus| sides.iter().map(|s| s.resolve_plus_minus(minus)).collect())
                .collect()
        } else {
            vec![sides]
        };
        Ok(readings
            .into_iter()
            .map(|sides| {
                if ops.is_empty() {
                    MathAnswer::Scalar(Scalar::new(&sides[0]))
                } else {
                    MathAnswer::Relation(Relation {
                        sides: sides.iter().map(Scalar::new).collect(),
                        ops: ops.clone(),
                    })
                }
            })
            .collect())
    }

    pub fn expr(&mut self) -> Result<Expr, MathError> {
        self.enter()?;
        let mut terms = Vec::new();
        let mut sign = match self.peek() {
            Some(Tok::Plus) => Some(Sign::Plus),
            Some(Tok::Minus) => Some(Sign::Minus),
            Some(Tok::PlusMinus) => Some(Sign::PlusMinus),
            _ => None,
        };
        if sign.is_some() {
            self.pos += 1;
        }
        loop {
            let term = self.term()?;
            terms.push((sign.unwrap_or(Sign::Plus), term));
            sign = match self.peek() {
                Some(Tok::Plus) => Some(Sign::Plus),
                Some(Tok::Minus) => Some(Sign::Minus),
                Some(Tok::PlusMinus) => Some(Sign::PlusMinus),
                _ => break,
            };
            self.pos += 1;
            if terms.len() > MAX_ITEMS * 4 {
                return Err(MathError::TooLong);
            }
        }
        self.leave();
        if terms.len() == 1 && terms[0].0 == Sign::Plus {
            return Ok(terms.remove(0).1);
        }
        Ok(Expr::Sum(terms))
    }

    /// Whether `tok` can start a factor written right after another (`2x`, `3\sqrt{2}`,
    /// `x(y+1)`); a number cannot (`2 3` is not six).
    fn starts_implicit_factor(tok: &Tok) -> bool {
        matches!(
            tok,
            Tok::Var(_)
                | Tok::Pi
                | Tok::Euler
                | Tok::Open(Bracket::Paren | Bracket::Brace)
                | Tok::Frac
                | Tok::Sqrt
                | Tok::Binom
                | Tok::Func(_)
                | Tok::Log
        )
    }

    /// `2\frac{1}{2}`: a whole number written right before a fraction of whole numbers is
    /// a mixed number, two and a half (as in recipes and GSM8K answers).
    fn mixed_number(&mut self) -> Result<Option<Expr>, MathError> {
        let (
            Some(Tok::Num {
                digits: Some(_),
                value,
            }),
            Some(Tok::Frac),
        ) = (self.peek(), self.peek_at(1))
        else {
            return Ok(None);
        };
        let whole = Expr::Num(*value);
        self.pos += 1;
        let fraction = self.atom()?;
        let is_integer = |e: &Expr| matches!(e, Expr::Num(n) if n.as_integer().is_some());
        if let Expr::Product(parts) = &fraction {
            if parts.len() == 2 && is_integer(&parts[0].1) && is_integer(&parts[1].1) {
                return Ok(Some(Expr::Sum(vec![
                    (Sign::Plus, whole),
                    (Sign::Plus, fraction),
                ])));
            }
        }
        Ok(Some(Expr::Product(vec![(false, whole), (false, fraction)])))
    }

    fn term(&mut self) -> Result<Expr, MathError> {
        let first = match self.mixed_number()? {
            Some(mixed) => mixed,
            None => self.unary()?,
        };
        let mut factors = vec![(false, first)];
        loop {
            match self.peek() {
                Some(Tok::Star) => {
                    self.pos += 1;
                    factors.push((false, self.unary()?));
                }
                Some(Tok::Slash) => {
                    self.pos += 1;
                    factors.push((true, self.unary()?));
                }
                Some(tok) if Self::starts_implicit_factor(tok) => {
                    factors.push((false, self.power()?));
                }
                _ => break,
            }
            if factors.len() > MAX_ITEMS * 4 {
                return Err(MathError::TooLong);
            }
        }
        if factors.len() == 1 {
            return Ok(factors.remove(0).1);
        }
        Ok(Expr::Product(factors))
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        self.nested(|p| match p.peek() {
            Some(Tok::Minus) => {
                p.pos += 1;
                p.unary().map(|e| Expr::Neg(Box::new(e)))
            }
            Some(Tok::Plus) => {
                p.pos += 1;
                p.unary()
            }
            _ => p.power(),
        })
    }

    fn power(&mut self) -> Result<Expr, MathError> {
        let base = self.postfix()?;
        if !self.eat(&Tok::Caret) {
            return Ok(base);
        }
        let exponent = self.exponent()?;
        Ok(Expr::Pow(Box::new(base), Box::new(exponent)))
    }

    fn exponent(&mut self) -> Result<Expr, MathError> {
        self.nested(|p| {
            if p.peek() == Some(&Tok::Open(Bracket::Brace)) {
                p.atom()
            } else {
                p.unary()
            }
        })
    }

    fn postfix(&mut self) -> Result<Expr, MathError> {
        let mut expr = self.atom()?;
        loop {
            if self.eat(&Tok::Bang) {
                expr = Expr::Factorial(Box::new(expr));
            } else if self.eat(&Tok::Percent) {
                expr = Expr::Percent(Box::new(expr));
            } else {
                return Ok(expr);
            }
        }
    }

    /// An argument of `\frac`, `\sqrt`, `\binom`: a group, an atom, or one digit of a
    /// plain number (`\frac12` is `\frac{1}{2}`).
    fn argument(&mut self) -> Result<Expr, MathError> {
        if let Some(Tok::Num {
            digits: Some(digits),
            ..
        }) = self.peek()
        {
            if digits.len() > 1 {
                let mut chars = digits.chars();
                let first = chars.next().and_then(|c| c.to_digit(10)).unwrap_or(0);
                let rest: String = chars.collect();
                let value = super::lexer::lex(&rest)
                    .ok()
                    .and_then(|l| l.tokens.into_iter().next());
                if let Some(Tok::Num { value, .. }) = value {
                    self.tokens[self.pos] = Tok::Num {
                        value,
                        digits: Some(rest),
                    };
                    return Ok(Expr::Num(Num::integer(i128::from(first))));
                }
            }
        }
        self.atom()
    }

    fn group(&mut self, close: Bracket) -> Result<Expr, MathError> {
        let inner = self.expr()?;
        self.expect(&Tok::Close(close))?;
        Ok(inner)
    }

    fn atom(&mut self) -> Result<Expr, MathError> {
        self.nested(Self::atom_inner)
    }

    fn atom_inner(&mut self) -> Result<Expr, MathError> {
        let Some(tok) = self.next() else {
            return Err(MathError::Syntax("the answer ends too early".into()));
        };
        match tok {
            Tok::Num { value, .. } => Ok(Expr::Num(value)),
            Tok::Var(name) => {
                if !self.eat(&Tok::Underscore) {
                    return Ok(Expr::Var(name));
                }
                let subscript = self.subscript()?;
                Ok(Expr::Var(format!("{name}_{subscript}")))
            }
            Tok::Pi => Ok(Expr::Pi),
            Tok::Euler => Ok(Expr::Euler),
            Tok::Infinity => Ok(Expr::Infinity),
            Tok::Open(Bracket::Paren) => self.group(Bracket::Paren),
            Tok::Open(Bracket::Square) => self.group(Bracket::Square),
            Tok::Open(Bracket::Brace) => self.group(Bracket::Brace),
            Tok::Bar => {
                let inner = self.expr()?;
                self.expect(&Tok::Bar)?;
                Ok(Expr::Func(Func::Abs, Box::new(inner)))
            }
            Tok::Frac => {
                let numerator = self.argument()?;
                let denominator = self.argument()?;
                Ok(Expr::Product(vec![(false, numerator), (true, denominator)]))
            }
            Tok::Sqrt => {
                let index = if self.eat(&Tok::Open(Bracket::Square)) {
                    self.group(Bracket::Square)?
                } else {
                    Expr::Num(Num::integer(2))
                };
                let radicand = self.argument()?;
                Ok(Expr::Root {
                    index: Box::new(index),
                    radicand: Box::new(radicand),
                })
            }
            Tok::Binom => {
                let n = self.argument()?;
                let k = self.argument()?;
                Ok(Expr::Binom(Box::new(n), Box::new(k)))
            }
            Tok::Func(f) => {
                let power = self.function_power()?;
                let arg = self.function_argument()?;
                Ok(with_power(Expr::Func(f, Box::new(arg)), power))
            }
            Tok::Log => {
                let mut base = None;
                let mut power = self.function_power()?;
                if self.eat(&Tok::Underscore) {
                    base = Some(self.argument()?);
                }
                if power.is_none() {
                    power = self.function_power()?;
                }
                let arg = self.function_argument()?;
                let log = match base {
                    Some(base) => Expr::Log {
                        base: Box::new(base),
                        arg: Box::new(arg),
                    },
                    None => Expr::Func(Func::Ln, Box::new(arg)),
                };
                Ok(with_power(log, power))
            }
            other => Err(MathError::Syntax(format!(
                "unexpected {}",
                other.describe()
            ))),
        }
    }

    /// `\sin^2 x`: the power written after a function's name.
    fn function_power(&mut self) -> Result<Option<Expr>, MathError> {
        if self.eat(&Tok::Caret) {
            return self.exponent().map(Some);
        }
        Ok(None)
    }

    /// A function's argument: a parenthesised group, or a power (`\sin x`, `\ln 2`).
    fn function_argument(&mut self) -> Result<Expr, MathError> {
        self.nested(Self::power)
    }

    fn subscript(&mut self) -> Result<String, MathError> {
        match self.next() {
            Some(Tok::Num {
                digits: Some(d), ..
            }) => Ok(d),
            Some(Tok::Var(v)) => Ok(v),
            Some(Tok::Open(Bracket::Brace)) => {
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some(Tok::Close(Bracket::Brace)) => return Ok(name),
                        Some(Tok::Num {
                            digits: Some(d), ..
                        }) => name.push_str(&d),
                        Some(Tok::Var(v)) => name.push_str(&v),
                        _ => return Err(MathError::Syntax("an unreadable subscript".into())),
                    }
                    if name.len() > 16 {
                        return Err(MathError::Syntax("an unreadable subscript".into()));
                    }
                }
            }
            _ => Err(MathError::Syntax("an unreadable subscript".into())),
        }
    }
}

fn with_power(expr: Expr, power: Option<Expr>) -> Expr {
    match power {
        Some(p) => Expr::Pow(Box::new(expr), Box::new(p)),
        None => expr,
    }
}
