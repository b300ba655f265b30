//! Execute (rewards): exact rational numbers for the verifiers — `i128` numerator and
//! denominator, reduced, with every operation checked so that overflow is a value the
//! caller turns into "invalid", never a panic or a wrong answer.

use std::cmp::Ordering;
use std::fmt;

/// Why an arithmetic result has no exact value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithmeticError {
    /// A division by zero.
    DivisionByZero,
    /// A value beyond what `i128` fractions hold exactly.
    Overflow,
}

impl fmt::Display for ArithmeticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DivisionByZero => "division by zero",
            Self::Overflow => "number too large to evaluate exactly",
        })
    }
}

/// A reduced fraction `num / den` with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

impl Rational {
    pub const ZERO: Self = Self { num: 0, den: 1 };

    /// The integer `n`.
    pub fn integer(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    /// `num / den`, reduced.
    pub fn new(num: i128, den: i128) -> Result<Self, ArithmeticError> {
        if den == 0 {
            return Err(ArithmeticError::DivisionByZero);
        }
        // i128::MIN has no positive counterpart; refusing it keeps negation total.
        if num == i128::MIN || den == i128::MIN {
            return Err(ArithmeticError::Overflow);
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        // g ≥ 1 because den ≠ 0, and g divides both, so the casts cannot truncate.
        let (mut num, mut den) = (num / g as i128, den / g as i128);
        if den < 0 {
            num = -num;
            den = -den;
        }
        Ok(Self { num, den })
    }

    pub fn numerator(self) -> i128 {
        self.num
    }

    pub fn denominator(self) -> i128 {
        self.den
    }

    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// The nearest `f64` (for tolerance comparisons and reports only).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    pub fn checked_add(self, rhs: Self) -> Result<Self, ArithmeticError> {
        let g = gcd(self.den.unsigned_abs(), rhs.den.unsigned_abs()) as i128;
        let (a, b) = (self.den / g, rhs.den / g);
        let num = mul(self.num, b)?
            .checked_add(mul(rhs.num, a)?)
            .ok_or(ArithmeticError::Overflow)?;
        Self::new(num, mul(self.den, b)?)
    }

    pub fn checked_neg(self) -> Result<Self, ArithmeticError> {
        Ok(Self {
            num: self.num.checked_neg().ok_or(ArithmeticError::Overflow)?,
            den: self.den,
        })
    }

    pub fn checked_sub(self, rhs: Self) -> Result<Self, ArithmeticError> {
        self.checked_add(rhs.checked_neg()?)
    }

    pub fn checked_mul(self, rhs: Self) -> Result<Self, ArithmeticError> {
        // Cross-reduce first so that products stay small when they can.
        let g1 = gcd(self.num.unsigned_abs(), rhs.den.unsigned_abs()).max(1) as i128;
        let g2 = gcd(rhs.num.unsigned_abs(), self.den.unsigned_abs()).max(1) as i128;
        Self::new(
            mul(self.num / g1, rhs.num / g2)?,
            mul(self.den / g2, rhs.den / g1)?,
        )
    }

    pub fn checked_div(self, rhs: Self) -> Result<Self, ArithmeticError> {
        if rhs.num == 0 {
            return Err(ArithmeticError::DivisionByZero);
        }
        self.checked_mul(Self::new(rhs.den, rhs.num)?)
    }

    /// `self × 10^exp` for a small exponent (|exp| ≤ 38, beyond which `i128` overflows).
    pub fn scaled_by_power_of_ten(self, exp: i32) -> Result<Self, ArithmeticError> {
        if exp.unsigned_abs() > 38 {
            return Err(ArithmeticError::Overflow);
        }
        let power = 10i128.pow(exp.unsigned_abs());
        if exp >= 0 {
            self.checked_mul(Self::integer(power))
        } else {
            self.checked_div(Self::integer(power))
        }
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        // Exact when the cross products fit; otherwise the f64 order, which only differs
        // for values closer than any answer comparison cares about.
        match (
            self.num.checked_mul(other.den),
            other.num.checked_mul(self.den),
        ) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

fn mul(a: i128, b: i128) -> Result<i128, ArithmeticError> {
    a.checked_mul(b).ok_or(ArithmeticError::Overflow)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).expect("valid test fraction")
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(1, -2).numerator(), -1);
        assert_eq!(
            r(1, 3).checked_mul(Rational::integer(3)),
            Ok(Rational::integer(1))
        );
        assert_eq!(r(1, 2).checked_add(r(1, 3)), Ok(r(5, 6)));
        assert_eq!(r(1, 2).checked_sub(r(1, 2)), Ok(Rational::ZERO));
        assert_eq!(
            r(1, 2).checked_div(Rational::ZERO),
            Err(ArithmeticError::DivisionByZero)
        );
        assert_eq!(r(1, 2).to_string(), "1/2");
        assert!(r(1, 3) < r(1, 2));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let big = Rational::integer(i128::MAX);
        assert_eq!(big.checked_add(big), Err(ArithmeticError::Overflow));
        assert_eq!(big.checked_mul(big), Err(ArithmeticError::Overflow));
        assert_eq!(Rational::new(i128::MIN, 1), Err(ArithmeticError::Overflow));
        assert_eq!(
            Rational::integer(1).scaled_by_power_of_ten(400),
            Err(ArithmeticError::Overflow)
        );
        assert_eq!(Rational::integer(5).scaled_by_power_of_ten(-1), Ok(r(1, 2)));
    }
}
