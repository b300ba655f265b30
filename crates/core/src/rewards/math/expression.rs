//! Execute (rewards): a parsed math expression and its value at a point — the variables
//! bound to numbers — as the grader evaluates it. Sums and products are flat lists, so
//! the tree is no deeper than the parser's nesting limit and evaluation recursion is
//! bounded with it.

use super::lexer::Func;
use super::value::{EvalError, EvalResult, Num};

/// The sign in front of a term of a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Plus,
    Minus,
    /// `\pm`: the answer is two answers; resolved before evaluation.
    PlusMinus,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(Num),
    Var(String),
    Pi,
    Euler,
    Infinity,
    Sum(Vec<(Sign, Expr)>),
    /// Factors, each `true` when it divides.
    Product(Vec<(bool, Expr)>),
    Neg(Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Root {
        index: Box<Expr>,
        radicand: Box<Expr>,
    },
    Func(Func, Box<Expr>),
    Log {
        base: Box<Expr>,
        arg: Box<Expr>,
    },
    Factorial(Box<Expr>),
    /// `p\%`, which is `p/100` inside an expression (see `structures` for a whole answer).
    Percent(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The sign of an infinity (`\infty`, `-\infty`, `+\infty`), if this is one.
    pub fn infinity(&self) -> Option<bool> {
        match self {
            Self::Infinity => Some(false),
            Self::Neg(inner) => inner.infinity().map(|negative| !negative),
            Self::Sum(terms) if terms.len() == 1 => match &terms[0] {
                (Sign::Plus, e) => e.infinity(),
                (Sign::Minus, e) => e.infinity().map(|negative| !negative),
                (Sign::PlusMinus, _) => None,
            },
            _ => None,
        }
    }

    /// The variable's name, when the expression is one variable alone.
    pub fn lone_variable(&self) -> Option<&str> {
        match self {
            Self::Var(name) => Some(name),
            _ => None,
        }
    }

    /// Every variable's name, in order of appearance, each once.
    pub fn variables(&self, into: &mut Vec<String>) {
        match self {
            Self::Var(name) => {
                if !into.contains(name) {
                    into.push(name.clone());
                }
            }
            Self::Num(_) | Self::Pi | Self::Euler | Self::Infinity => {}
            Self::Sum(terms) => terms.iter().for_each(|(_, e)| e.variables(into)),
            Self::Product(factors) => factors.iter().for_each(|(_, e)| e.variables(into)),
            Self::Neg(e) | Self::Func(_, e) | Self::Factorial(e) | Self::Percent(e) => {
                e.variables(into)
            }
            Self::Pow(a, b) | Self::Binom(a, b) => {
                a.variables(into);
                b.variables(into);
            }
            Self::Root { index, radicand } => {
                index.variables(into);
                radicand.variables(into);
            }
            Self::Log { base, arg } => {
                base.variables(into);
                arg.variables(into);
            }
        }
    }

    /// Whether a `\pm` occurs in a sum anywhere inside.
    pub fn has_plus_minus(&self) -> bool {
        match self {
            Self::Sum(terms) => terms
                .iter()
                .any(|(s, e)| *s == Sign::PlusMinus || e.has_plus_minus()),
            Self::Num(_) | Self::Var(_) | Self::Pi | Self::Euler | Self::Infinity => false,
            Self::Product(factors) => factors.iter().any(|(_, e)| e.has_plus_minus()),
            Self::Neg(e) | Self::Func(_, e) | Self::Factorial(e) | Self::Percent(e) => {
                e.has_plus_minus()
            }
            Self::Pow(a, b) | Self::Binom(a, b) => a.has_plus_minus() || b.has_plus_minus(),
            Self::Root { index, radicand } => index.has_plus_minus() || radicand.has_plus_minus(),
            Self::Log { base, arg } => base.has_plus_minus() || arg.has_plus_minus(),
        }
    }

    /// This expression with every `\pm` read as `+` (`minus == false`) or `-`.
    pub fn resolve_plus_minus(&self, minus: bool) -> Self {
        let r = |e: &Expr| Box::new(e.resolve_plus_minus(minus));
        match self {
            Self::Sum(terms) => Self::Sum(
                terms
                    .iter()
                    .map(|(s, e)| {
                        let sign = match s {
                            Sign::PlusMinus if minus => Sign::Minus,
                            Sign::PlusMinus => Sign::Plus,
                            other => *other,
                        };
                        (sign, e.resolve_plus_minus(minus))
                    })
                    .collect(),
            ),
            Self::Product(factors) => Self::Product(
                factors
                    .iter()
                    .map(|(d, e)| (*d, e.resolve_plus_minus(minus)))
                    .collect(),
            ),
            Self::Neg(e) => Self::Neg(r(e)),
            Self::Func(f, e) => Self::Func(*f, r(e)),
            Self::Factorial(e) => Self::Factorial(r(e)),
            Self::Percent(e) => Self::Percent(r(e)),
            Self::Pow(a, b) => Self::Pow(r(a), r(b)),
            Self::Binom(a, b) => Self::Binom(r(a), r(b)),
            Self::Root { index, radicand } => Self::Root {
                index: r(index),
                radicand: r(radicand),
            },
            Self::Log { base, arg } => Self::Log {
                base: r(base),
                arg: r(arg),
            },
            leaf => leaf.clone(),
        }
    }

    /// The value with each variable bound by `lookup`.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Num) -> EvalResult {
        match self {
            Self::Num(n) => Ok(*n),
            Self::Var(name) => Ok(lookup(name)),
            Self::Pi => Num::from_f64(std::f64::consts::PI),
            Self::Euler => Num::from_f64(std::f64::consts::E),
            Self::Infinity => Err(EvalError::NotANumber),
            Self::Sum(terms) => {
                let mut acc = Num::ZERO;
                for (sign, term) in terms {
                    let value = term.eval(lookup)?;
                    acc = match sign {
                        Sign::Plus => acc.checked_add(value)?,
                        Sign::Minus => acc.checked_sub(value)?,
                        Sign::PlusMinus => return Err(EvalError::NotANumber),
                    };
                }
                Ok(acc)
            }
            Self::Product(factors) => {
                let mut acc = Num::one();
                for (divides, factor) in factors {
                    let value = factor.eval(lookup)?;
                    acc = if *divides {
                        acc.checked_div(value)?
                    } else {
                        acc.checked_mul(value)?
                    };
                }
                Ok(acc)
            }
            Self::Neg(e) => e.eval(lookup)?.checked_neg(),
            Self::Pow(base, exp) => {
                if matches!(**base, Self::Euler) {
                    return exp.eval(lookup)?.apply(f64::exp);
                }
                base.eval(lookup)?.pow(exp.eval(lookup)?)
            }
            Self::Root { index, radicand } => radicand.eval(lookup)?.root(index.eval(lookup)?),
            Self::Func(f, e) => apply(*f, e.eval(lookup)?),
            Self::Log { base, arg } => {
                let (b, x) = (base.eval(lookup)?, arg.eval(lookup)?);
                if b.to_f64() <= 0.0 || b.same_as(Num::one()) || x.to_f64() <= 0.0 {
                    return Err(EvalError::Domain);
                }
                Num::from_f64(x.to_f64().ln() / b.to_f64().ln())
            }
            Self::Factorial(e) => e.eval(lookup)?.factorial(),
            Self::Percent(e) => e.eval(lookup)?.checked_div(Num::integer(100)),
            Self::Binom(n, k) => n.eval(lookup)?.binomial(k.eval(lookup)?),
        }
    }
}

fn apply(f: Func, x: Num) -> EvalResult {
    let positive = |x: Num| {
        if x.to_f64() > 0.0 {
            Ok(x)
        } else {
            Err(EvalError::Domain)
        }
    };
    match f {
        Func::Sin => x.apply(f64::sin),
        Func::Cos => x.apply(f64::cos),
        Func::Tan => x.apply(f64::tan),
        Func::Sec => Num::one().checked_div(x.apply(f64::cos)?),
        Func::Csc => Num::one().checked_div(x.apply(f64::sin)?),
        Func::Cot => Num::one().checked_div(x.apply(f64::tan)?),
        Func::Arcsin => x.apply(f64::asin),
        Func::Arccos => x.apply(f64::acos),
        Func::Arctan => x.apply(f64::atan),
        Func::Sinh => x.apply(f64::sinh),
        Func::Cosh => x.apply(f64::cosh),
        Func::Tanh => x.apply(f64::tanh),
        Func::Ln => positive(x)?.apply(f64::ln),
        Func::Exp => x.apply(f64::exp),
        Func::Abs => x.abs(),
    }
}
