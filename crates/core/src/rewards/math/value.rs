//! Execute (rewards): the numbers the math grader computes with — an exact [`Rational`]
//! while every step stays rational and fits, an `f64` once a step is irrational (a root
//! that is not a perfect power, `\pi`, a logarithm) or too large — and when two of them
//! are the same answer.
//!
//! Every operation is bounded: integer powers by squaring with an exponent of at most
//! [`MAX_EXACT_EXPONENT`] (beyond, `f64`), factorials up to [`MAX_FACTORIAL`], binomials
//! up to [`MAX_BINOMIAL`]. A value that leaves `f64`'s finite range is an error, never an
//! infinity that would equal `\infty`.

use std::fmt;

use super::super::rational::{ArithmeticError, Rational};

/// Integer exponents up to this size are applied exactly (by squaring); larger ones in
/// `f64`, where anything but a base of 0 or ±1 leaves the finite range or reaches 0.
pub const MAX_EXACT_EXPONENT: u32 = 1024;

/// `n!` is computed for `n` up to this (170! is the largest `f64` holds).
pub const MAX_FACTORIAL: i128 = 170;

/// `\binom{n}{k}` is computed for `n` up to this.
pub const MAX_BINOMIAL: i128 = 10_000;

/// Relative tolerance between two values when at least one is not exact.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Absolute tolerance near zero when at least one value is not exact (`\sin \pi` is about
/// 1.2e-16 in `f64`).
pub const ABSOLUTE_TOLERANCE: f64 = 1e-12;

/// A real number: exact when it can be, else the nearest `f64` (always finite).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Exact(Rational),
    Approx(f64),
}

/// Why a value cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    DivisionByZero,
    /// Outside the function's domain (`\sqrt{-1}`, `\ln 0`, `(-8)^{1/2}`, `(-1)!`).
    Domain,
    /// Beyond `f64`'s finite range.
    Overflow,
    /// Something that is not a number where one is needed (`\infty + 1`).
    NotANumber,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DivisionByZero => "division by zero",
            Self::Domain => "a value outside a function's domain",
            Self::Overflow => "a value too large to compute",
            Self::NotANumber => "infinity inside an expression",
        })
    }
}

pub type EvalResult = Result<Num, EvalError>;

fn approx(x: f64) -> EvalResult {
    if x.is_finite() {
        Ok(Num::Approx(x))
    } else if x.is_nan() {
        Err(EvalError::Domain)
    } else {
        Err(EvalError::Overflow)
    }
}

impl Num {
    pub const ZERO: Self = Self::Exact(Rational::ZERO);

    pub fn one() -> Self {
        Self::integer(1)
    }

    pub fn integer(n: i128) -> Self {
        Self::Exact(Rational::integer(n))
    }

    pub fn from_f64(x: f64) -> EvalResult {
        approx(x)
    }

    pub fn to_f64(self) -> f64 {
        match self {
            Self::Exact(q) => q.to_f64(),
            Self::Approx(x) => x,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Self::Exact(_))
    }

    pub fn is_zero(self) -> bool {
        match self {
            Self::Exact(q) => q == Rational::ZERO,
            Self::Approx(x) => x == 0.0,
        }
    }

    /// The exact integer this is, if it is one.
    pub fn as_integer(self) -> Option<i128> {
        match self {
            Self::Exact(q) if q.is_integer() => Some(q.numerator()),
            _ => None,
        }
    }

    /// An exact operation, or the same in `f64` when the exact result overflows `i128`.
    fn exact_or_approx(
        self,
        rhs: Self,
        exact: fn(Rational, Rational) -> Result<Rational, ArithmeticError>,
        float: fn(f64, f64) -> f64,
    ) -> EvalResult {
        if let (Self::Exact(a), Self::Exact(b)) = (self, rhs) {
            match exact(a, b) {
                Ok(q) => return Ok(Self::Exact(q)),
                Err(ArithmeticError::DivisionByZero) => return Err(EvalError::DivisionByZero),
                Err(ArithmeticError::Overflow) => {}
            }
        }
        approx(float(self.to_f64(), rhs.to_f64()))
    }

    pub fn checked_add(self, rhs: Self) -> EvalResult {
        self.exact_or_approx(rhs, Rational::checked_add, |a, b| a + b)
    }

    pub fn checked_sub(self, rhs: Self) -> EvalResult {
        self.exact_or_approx(rhs, Rational::checked_sub, |a, b| a - b)
    }

    pub fn checked_mul(self, rhs: Self) -> EvalResult {
        self.exact_or_approx(rhs, Rational::checked_mul, |a, b| a * b)
    }

    pub fn checked_div(self, rhs: Self) -> EvalResult {
        if rhs.is_zero() {
            return Err(EvalError::DivisionByZero);
        }
        self.exact_or_approx(rhs, Rational::checked_div, |a, b| a / b)
    }

    pub fn checked_neg(self) -> EvalResult {
        match self {
            Self::Exact(q) => match q.checked_neg() {
                Ok(q) => Ok(Self::Exact(q)),
                Err(_) => approx(-q.to_f64()),
            },
            Self::Approx(x) => Ok(Self::Approx(-x)),
        }
    }

    pub fn abs(self) -> EvalResult {
        if self.to_f64() < 0.0 {
            self.checked_neg()
        } else {
            Ok(self)
        }
    }

    /// `self ^ exp`: exact for a rational base and an integer exponent (by squaring, the
    /// exponent bounded), exact for a rational exponent `p/q` when the base is a perfect
    /// `q`-th power, else `f64`.
    pub fn pow(self, exp: Self) -> EvalResult {
        if let (Self::Exact(base), Self::Exact(e)) = (self, exp) {
            if e.is_integer() {
                return integer_power(base, e.numerator());
            }
            if let Some(root) = exact_root(base, e.denominator()) {
                return integer_power(root, e.numerator());
            }
            // An odd root of a negative number is real; f64's powf says NaN.
            if base < Rational::ZERO && e.denominator() % 2 == 1 {
                let magnitude = (-base.to_f64()).powf(e.to_f64());
                let sign = if e.numerator() % 2 == 0 { 1.0 } else { -1.0 };
                return approx(sign * magnitude);
            }
        }
        let (b, e) = (self.to_f64(), exp.to_f64());
        if b == 0.0 && e < 0.0 {
            return Err(EvalError::DivisionByZero);
        }
        approx(b.powf(e))
    }

    /// The `n`-th root (`n` ≥ 2): exact for perfect powers; odd roots of negatives are real.
    pub fn root(self, n: Self) -> EvalResult {
        let Some(index) = n.as_integer().filter(|&k| k >= 1) else {
            return Err(EvalError::Domain);
        };
        if let Self::Exact(q) = self {
            if let Some(r) = exact_root(q, index) {
                return Ok(Self::Exact(r));
            }
        }
        let x = self.to_f64();
        if x < 0.0 {
            if index % 2 == 0 {
                return Err(EvalError::Domain);
            }
            return approx(-(-x).powf(1.0 / index as f64));
        }
        approx(x.powf(1.0 / index as f64))
    }

    /// `n!` for an integer `0 ≤ n ≤ MAX_FACTORIAL`.
    pub fn factorial(self) -> EvalResult {
        let n = self.as_integer().ok_or(EvalError::Domain)?;
        if !(0..=MAX_FACTORIAL).contains(&n) {
            return Err(if n < 0 {
                EvalError::Domain
            } else {
                EvalError::Overflow
            });
        }
        let mut acc = Self::one();
        for k in 2..=n {
            acc = acc.checked_mul(Self::integer(k))?;
        }
        Ok(acc)
    }

    /// `\binom{n}{k}` for integers `0 ≤ k`, `0 ≤ n ≤ MAX_BINOMIAL` (0 when `k > n`).
    pub fn binomial(self, k: Self) -> EvalResult {
        let (n, k) = (
            self.as_integer().ok_or(EvalError::Domain)?,
            k.as_integer().ok_or(EvalError::Domain)?,
        );
        if n < 0 || k < 0 {
            return Err(EvalError::Domain);
        }
        if n > MAX_BINOMIAL {
            return Err(EvalError::Overflow);
        }
        if k > n {
            return Ok(Self::ZERO);
        }
        let k = k.min(n - k);
        let mut acc = Self::one();
        for j in 0..k {
            acc = acc
                .checked_mul(Self::integer(n - j))?
                .checked_div(Self::integer(j + 1))?;
        }
        Ok(acc)
    }

    /// A real function of `f64`; exact at the points where the answer is a small
    /// rational anyway (`\sin 0`, `\ln 1`, `e^0`), so that those compare exactly.
    pub fn apply(self, f: fn(f64) -> f64) -> EvalResult {
        let y = f(self.to_f64());
        if y.is_nan() {
            return Err(EvalError::Domain);
        }
        approx(y)
    }

    /// Whether two values are the same answer: exactly equal when both are exact (so
    /// `0.333` is not `1/3`); otherwise within [`RELATIVE_TOLERANCE`] of the larger, or
    /// [`ABSOLUTE_TOLERANCE`] of each other near zero.
    pub fn same_as(self, other: Self) -> bool {
        if let (Self::Exact(a), Self::Exact(b)) = (self, other) {
            return a == b;
        }
        close(self.to_f64(), other.to_f64())
    }
}

/// The tolerance rule of [`Num::same_as`] on two floats.
pub fn close(a: f64, b: f64) -> bool {
    let diff = (a - b).abs();
    diff <= ABSOLUTE_TOLERANCE || diff <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

fn integer_power(base: Rational, exp: i128) -> EvalResult {
    if base == Rational::ZERO {
        return match exp.cmp(&0) {
            std::cmp::Ordering::Less => Err(EvalError::DivisionByZero),
            std::cmp::Ordering::Equal => Ok(Num::one()),
            std::cmp::Ordering::Greater => Ok(Num::ZERO),
        };
    }
    if base == Rational::integer(1) {
        return Ok(Num::one());
    }
    if base == Rational::integer(-1) {
        return Ok(Num::integer(if exp % 2 == 0 { 1 } else { -1 }));
    }
    // |base| ≠ 0, 1: when numerator or denominator would need more than 126 bits, the
    // exact value is beyond any i128 fraction, so do not try.
    let bits = |n: i128| u128::from(128 - n.unsigned_abs().leading_zeros());
    let widest = bits(base.numerator()).max(bits(base.denominator()));
    if exp.unsigned_abs() > u128::from(MAX_EXACT_EXPONENT)
        || (widest - 1).saturating_mul(exp.unsigned_abs()) > 126
    {
        return approx(base.to_f64().powf(exp as f64));
    }
    let mut result = Rational::integer(1);
    let mut square = base;
    let mut n = exp.unsigned_abs();
    let mut exact = true;
    while n > 0 && exact {
        if n & 1 == 1 {
            match result.checked_mul(square) {
                Ok(r) => result = r,
                Err(_) => exact = false,
            }
        }
        n >>= 1;
        if n > 0 && exact {
            match square.checked_mul(square) {
                Ok(s) => square = s,
                Err(_) => exact = false,
            }
        }
    }
    if !exact {
        return approx(base.to_f64().powf(exp as f64));
    }
    if exp < 0 {
        return match Rational::integer(1).checked_div(result) {
            Ok(r) => Ok(Num::Exact(r)),
            Err(_) => approx(1.0 / result.to_f64()),
        };
    }
    Ok(Num::Exact(result))
}

/// The exact `n`-th root of `q` when numerator and denominator are perfect `n`-th powers
/// (a negative `q` only for odd `n`).
fn exact_root(q: Rational, n: i128) -> Option<Rational> {
    if n == 1 {
        return Some(q);
    }
    if !(2..=128).contains(&n) {
        return None;
    }
    let negative = q < Rational::ZERO;
    if negative && n % 2 == 0 {
        return None;
    }
    let num = integer_root(q.numerator().unsigned_abs(), n as u32)?;
    let den = integer_root(q.denominator().unsigned_abs(), n as u32)?;
    let num = i128::try_from(num).ok()?;
    let den = i128::try_from(den).ok()?;
    Rational::new(if negative { -num } else { num }, den).ok()
}

/// The exact integer `n`-th root of `x`, if `x` is a perfect `n`-th power (binary search:
/// at most 128 steps).
fn integer_root(x: u128, n: u32) -> Option<u128> {
    if x < 2 {
        return Some(x);
    }
    let (mut lo, mut hi) = (1u128, 1u128 << (128 / n + 1).min(127));
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match checked_pow(mid, n) {
            Some(p) if p == x => return Some(mid),
            Some(p) if p < x => lo = mid + 1,
            _ => hi = mid - 1,
        }
    }
    None
}

fn checked_pow(base: u128, n: u32) -> Option<u128> {
    let mut acc: u128 = 1;
    for _ in 0..n {
        acc = acc.checked_mul(base)?;
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Num {
        Num::Exact(Rational::new(n, d).expect("fraction"))
    }

    #[test]
    fn rational_arithmetic_stays_exact() {
        assert_eq!(q(1, 2).checked_add(q(1, 3)), Ok(q(5, 6)));
        assert_eq!(q(2, 3).pow(Num::integer(-2)), Ok(q(9, 4)));
        assert_eq!(q(4, 9).pow(q(1, 2)), Ok(q(2, 3)));
        assert_eq!(q(8, 27).pow(q(2, 3)), Ok(q(4, 9)));
        assert_eq!(q(-8, 1).root(Num::integer(3)), Ok(q(-2, 1)));
        assert_eq!(Num::integer(5).factorial(), Ok(Num::integer(120)));
        assert_eq!(
            Num::integer(10).binomial(Num::integer(3)),
            Ok(Num::integer(120))
        );
        assert_eq!(
            q(1, 1).checked_div(Num::ZERO),
            Err(EvalError::DivisionByZero)
        );
    }

    #[test]
    fn irrational_steps_become_floats_and_compare_with_tolerance() {
        let root2 = Num::integer(2).root(Num::integer(2)).expect("root");
        assert!(!root2.is_exact());
        let half_root2 = root2.checked_div(Num::integer(2)).expect("div");
        let inverse = Num::one().checked_div(root2).expect("div");
        assert!(half_root2.same_as(inverse));
        assert!(!q(333, 1000).same_as(q(1, 3)), "0.333 is not 1/3");
        assert_eq!(
            Num::integer(-1).root(Num::integer(2)),
            Err(EvalError::Domain)
        );
    }

    #[test]
    fn huge_powers_are_errors_not_infinities() {
        assert_eq!(
            Num::integer(2).pow(Num::integer(1 << 100)),
            Err(EvalError::Overflow)
        );
        assert_eq!(Num::integer(1).pow(Num::integer(1 << 100)), Ok(Num::one()));
        assert_eq!(Num::integer(171).factorial(), Err(EvalError::Overflow));
        let big = Num::integer(10)
            .pow(Num::integer(300))
            .expect("1e300 fits f64");
        assert!(!big.is_exact());
        assert_eq!(big.checked_mul(big), Err(EvalError::Overflow));
    }
}
