//! Execute (rewards): what a math answer is once parsed — a value, a relation, a tuple or
//! interval, a union of intervals, a set, a matrix, a list of answers, or words — with
//! every expression already evaluated (its *signature*: its value, or its values at
//! [`POINTS`] fixed pseudo-random points when it has variables), so that comparing two
//! answers is comparing numbers.

use super::expression::Expr;
use super::lexer::{Bracket, RelOp};
use super::value::{EvalError, Num};

/// How many points an expression with variables is evaluated at.
pub const POINTS: usize = 8;

/// Of those, how many must be defined on both sides for two expressions to be equal
/// (a point where either side is undefined — `\frac{x^2-1}{x-1}` at `x = 1` — is skipped).
pub const MIN_DEFINED_POINTS: usize = 3;

/// The values of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Signature {
    /// `\infty` or `-\infty` (`true`), only as a whole expression.
    Infinite(bool),
    /// No variables: one value.
    Constant(Result<Num, EvalError>),
    /// The values at the [`POINTS`] points.
    Points(Vec<Result<Num, EvalError>>),
}

impl Signature {
    pub fn of(expr: &Expr) -> Self {
        if let Some(negative) = expr.infinity() {
            return Self::Infinite(negative);
        }
        let mut names = Vec::new();
        expr.variables(&mut names);
        if names.is_empty() {
            return Self::Constant(expr.eval(&|_| Num::ZERO));
        }
        Self::Points(
            (0..POINTS)
                .map(|k| expr.eval(&|name| point_value(name, k)))
                .collect(),
        )
    }

    /// The value at point `k` (a constant has the same value at every point).
    fn at(&self, k: usize) -> Result<Num, EvalError> {
        match self {
            Self::Infinite(_) => Err(EvalError::NotANumber),
            Self::Constant(v) => *v,
            Self::Points(values) => values.get(k).copied().unwrap_or(Err(EvalError::NotANumber)),
        }
    }

    fn is_constant(&self) -> bool {
        !matches!(self, Self::Points(_))
    }

    /// The single value of a constant.
    pub fn constant(&self) -> Option<Num> {
        match self {
            Self::Constant(Ok(n)) => Some(*n),
            _ => None,
        }
    }

    /// Point by point `self ∘ other`.
    pub fn combine(&self, other: &Self, op: fn(Num, Num) -> Result<Num, EvalError>) -> Self {
        let both = |k| op(self.at(k)?, other.at(k)?);
        if self.is_constant() && other.is_constant() {
            Self::Constant(both(0))
        } else {
            Self::Points((0..POINTS).map(both).collect())
        }
    }

    /// Whether two signatures are the same values: equal infinities, equal constants, or
    /// equal at every point where both are defined, with at least [`MIN_DEFINED_POINTS`]
    /// such points.
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Infinite(a), Self::Infinite(b)) => a == b,
            (Self::Infinite(_), _) | (_, Self::Infinite(_)) => false,
            (Self::Constant(a), Self::Constant(b)) => match (a, b) {
                (Ok(a), Ok(b)) => a.same_as(*b),
                _ => false,
            },
            _ => {
                let mut defined = 0;
                for k in 0..POINTS {
                    if let (Ok(a), Ok(b)) = (self.at(k), other.at(k)) {
                        if !a.same_as(b) {
                            return false;
                        }
                        defined += 1;
                    }
                }
                defined >= MIN_DEFINED_POINTS
            }
        }
    }

    /// Whether `self = c · other` for one constant `c` (positive when `positive`) at every
    /// point where both are defined: the test for two equations or inequalities
    /// `f₁ ⋄ 0` and `f₂ ⋄ 0` being the same.
    pub fn proportional(&self, other: &Self, positive: bool) -> bool {
        let mut ratio: Option<Num> = None;
        let mut defined = 0;
        for k in 0..POINTS {
            let (Ok(a), Ok(b)) = (self.at(k), other.at(k)) else {
                continue;
            };
            defined += 1;
            let (a_zero, b_zero) = (a.same_as(Num::ZERO), b.same_as(Num::ZERO));
            if a_zero || b_zero {
                if a_zero != b_zero {
                    return false;
                }
                continue;
            }
            let Ok(r) = a.checked_div(b) else {
                return false;
            };
            match ratio {
                None => {
                    if positive && r.to_f64() <= 0.0 {
                        return false;
                    }
                    ratio = Some(r);
                }
                Some(c) if !c.same_as(r) => return false,
                Some(_) => {}
            }
        }
        ratio.is_some() && defined >= MIN_DEFINED_POINTS
    }
}

/// The value of variable `name` at point `k`: a fraction `±p/q` (`1 ≤ p ≤ 97`,
/// `1 ≤ q ≤ 13`; positive at points 0–2, negative at 3, either sign after) drawn from a SplitMix64 stream seeded by the name and `k`, so the same
/// variable has the same value on both sides and in every run.
fn point_value(name: &str, k: usize) -> Num {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let p = (next() % 97 + 1) as i128;
    let q = (next() % 13 + 1) as i128;
    // Positive at the first points (so that roots and logarithms are defined there),
    // negative at the next, then either: a `|x|` is not an `x`.
    let sign = match k {
        0..=2 => 1,
        3 => -1,
        _ if next() % 2 == 0 => 1,
        _ => -1,
    };
    Num::integer(sign * p)
        .checked_div(Num::integer(q))
        .unwrap_or(Num::one())
}

/// An evaluated expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub signature: Signature,
    /// For an answer written `p\%`: the signature of `p` itself (the answer equals `p` and
    /// `p/100`).
    pub percent_of: Option<Signature>,
    /// The variable, when the expression is one variable alone.
    pub variable: Option<String>,
    pub has_variables: bool,
}

impl Scalar {
    pub fn new(expr: &Expr) -> Self {
        let mut names = Vec::new();
        expr.variables(&mut names);
        let percent_of = match expr {
            Expr::Percent(inner) => Some(Signature::of(inner)),
            _ => None,
        };
        Self {
            signature: Signature::of(expr),
            percent_of,
            variable: expr.lone_variable().map(str::to_string),
            has_variables: !names.is_empty(),
        }
    }

    /// Whether two scalars are the same value (a percentage matching either reading).
    pub fn same(&self, other: &Self) -> bool {
        let mine = std::iter::once(&self.signature).chain(&self.percent_of);
        mine.into_iter().any(|a| {
            std::iter::once(&other.signature)
                .chain(&other.percent_of)
                .any(|b| a.same(b))
        })
    }

    /// The endpoint this scalar can be: an infinity or a constant.
    fn bound(&self) -> Option<Bound> {
        match self.signature {
            Signature::Infinite(true) => Some(Bound::NegInf),
            Signature::Infinite(false) => Some(Bound::PosInf),
            Signature::Constant(Ok(n)) => Some(Bound::Finite(n)),
            _ => None,
        }
    }
}

/// A chain of relations `sides[0] ops[0] sides[1] ops[1] …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub sides: Vec<Scalar>,
    pub ops: Vec<RelOp>,
}

impl Relation {
    /// `x = v` (or `v = x`) with `v` free of variables: the value assigned, the way an
    /// answer `x = 11` means `11`.
    pub fn assigned(&self) -> Option<&Scalar> {
        if self.ops != [RelOp::Eq] {
            return None;
        }
        let (l, r) = (&self.sides[0], &self.sides[1]);
        if l.variable.is_some() {
            Some(r)
        } else if r.variable.is_some() && !l.has_variables {
            Some(l)
        } else {
            None
        }
    }

    /// The variable and the interval when the chain bounds one variable by constants
    /// (`x \le 3`, `3 > x`, `-1 < x \le 2`).
    pub fn interval(&self) -> Option<(&str, Interval)> {
        let position = self.sides.iter().position(|s| s.variable.is_some())?;
        let variable = self.sides[position].variable.as_deref()?;
        let mut interval = Interval::whole_line();
        for (i, op) in self.ops.iter().enumerate() {
            let (left, right) = (&self.sides[i], &self.sides[i + 1]);
            let (other, var_on_left) = if i == position {
                (right, true)
            } else if i + 1 == position {
                (left, false)
            } else {
                return None;
            };
            let bound = other.bound()?;
            // Write the relation as `x OP bound`.
            let op = if var_on_left { *op } else { flip(*op)? };
            match op {
                RelOp::Lt | RelOp::Le => {
                    interval.hi = Endpoint {
                        bound,
                        closed: op == RelOp::Le,
                    }
                }
                RelOp::Gt | RelOp::Ge => {
                    interval.lo = Endpoint {
                        bound,
                        closed: op == RelOp::Ge,
                    }
                }
                RelOp::Eq | RelOp::Ne => return None,
            }
        }
        Some((variable, interval))
    }
}

/// `a OP b` as `b OP' a`.
fn flip(op: RelOp) -> Option<RelOp> {
    Some(match op {
        RelOp::Lt => RelOp::Gt,
        RelOp::Le => RelOp::Ge,
        RelOp::Gt => RelOp::Lt,
        RelOp::Ge => RelOp::Le,
        RelOp::Eq => RelOp::Eq,
        RelOp::Ne => RelOp::Ne,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    NegInf,
    Finite(Num),
    PosInf,
}

impl Bound {
    fn key(self) -> f64 {
        match self {
            Self::NegInf => f64::NEG_INFINITY,
            Self::Finite(n) => n.to_f64(),
            Self::PosInf => f64::INFINITY,
        }
    }

    fn same(self, other: Self) -> bool {
        match (self, other) {
            (Self::Finite(a), Self::Finite(b)) => a.same_as(b),
            (a, b) => a == b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Endpoint {
    pub bound: Bound,
    pub closed: bool,
}

/// An interval of the real line; an infinite end is open whatever its bracket says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl Interval {
    fn whole_line() -> Self {
        Self {
            lo: Endpoint {
                bound: Bound::NegInf,
                closed: false,
            },
            hi: Endpoint {
                bound: Bound::PosInf,
                closed: false,
            },
        }
    }

    fn same(&self, other: &Self) -> bool {
        let end = |a: Endpoint, b: Endpoint| {
            a.bound.same(b.bound) && (a.closed == b.closed || !matches!(a.bound, Bound::Finite(_)))
        };
        end(self.lo, other.lo) && end(self.hi, other.hi)
    }
}

/// A finite union of intervals, sorted and with overlapping or touching pieces merged, so
/// that equal sets have equal lists.
pub fn normalize(mut pieces: Vec<Interval>) -> Vec<Interval> {
    pieces.sort_by(|a, b| a.lo.bound.key().total_cmp(&b.lo.bound.key()));
    let mut merged: Vec<Interval> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        if let Some(last) = merged.last_mut() {
            let (end, start) = (last.hi.bound.key(), piece.lo.bound.key());
            if end > start || (end == start && (last.hi.closed || piece.lo.closed)) {
                if piece.hi.bound.key() > end || (piece.hi.bound.key() == end && piece.hi.closed) {
                    last.hi = piece.hi;
                }
                continue;
            }
        }
        merged.push(piece);
    }
    merged
}

/// Whether two unions of intervals (normalised) are the same set.
pub fn same_intervals(a: &[Interval], b: &[Interval]) -> bool {
    let (a, b) = (normalize(a.to_vec()), normalize(b.to_vec()));
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.same(y))
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MathAnswer {
    Scalar(Scalar),
    Relation(Relation),
    /// `(a, b, …)` or `[a, b)`: a tuple, or an interval when it has two ends.
    Bracketed {
        open: Bracket,
        close: Bracket,
        items: Vec<MathAnswer>,
    },
    /// `A \cup B \cup …` of intervals.
    Union(Vec<MathAnswer>),
    /// `\{a, b\}`: order and repetition do not matter.
    Set(Vec<MathAnswer>),
    /// Rows of entries.
    Matrix(Vec<Vec<Scalar>>),
    /// Answers separated by commas (or `;`, `or`, `and`) outside brackets: a set.
    List(Vec<MathAnswer>),
    /// Words only, lower-cased and joined by single spaces.
    Text(String),
}

impl MathAnswer {
    /// The intervals this answer is, read as a subset of the real line: an interval
    /// `(a, b]` (ends constants or infinities, `a ≤ b`), a union of them, or — when
    /// `relations` — an inequality in one variable.
    pub fn intervals(&self, relations: bool) -> Option<Vec<Interval>> {
        match self {
            Self::Bracketed { open, close, items } if items.len() == 2 => {
                let end = |item: &MathAnswer| match item {
                    Self::Scalar(s) => s.bound(),
                    _ => None,
                };
                let bracket_closed = |b: &Bracket| match b {
                    Bracket::Square => Some(true),
                    Bracket::Paren => Some(false),
                    Bracket::Brace | Bracket::Set => None,
                };
                let (lo, hi) = (end(&items[0])?, end(&items[1])?);
                if lo.key() > hi.key() {
                    return None;
                }
                Some(vec![Interval {
                    lo: Endpoint {
                        bound: lo,
                        closed: bracket_closed(open)?,
                    },
                    hi: Endpoint {
                        bound: hi,
                        closed: bracket_closed(close)?,
                    },
                }])
            }
            Self::Union(parts) => {
                let mut all = Vec::new();
                for part in parts {
                    all.extend(part.intervals(relations)?);
                }
                Some(all)
            }
            Self::Relation(relation) if relations => Some(vec![relation.interval()?.1]),
            _ => None,
        }
    }
}
