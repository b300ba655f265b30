//! Execute (rewards): when a given answer is the reference answer — the comparison rules
//! of `docs/src/grading.md`, over answers whose expressions are already evaluated.
//!
//! Not symmetric on purpose in one place: an inequality in the reference (`x \le 3`)
//! accepts the same set written as an interval (`(-\infty, 3]`), but an interval in the
//! reference asks for an interval (as math-verify does).

use super::lexer::RelOp;
use super::structures::{same_intervals, MathAnswer, Relation, Scalar};

/// Whether `given` is the same answer as `reference`.
pub fn equivalent(reference: &MathAnswer, given: &MathAnswer) -> bool {
    use MathAnswer as A;
    match (reference, given) {
        (A::Text(a), A::Text(b)) => a == b,
        (A::Text(_), _) | (_, A::Text(_)) => false,

        (A::Scalar(a), A::Scalar(b)) => a.same(b),
        (A::Relation(a), A::Relation(b)) => relations_equal(a, b),
        // `x = 11` is the answer 11 (either side).
        (A::Relation(r), other) if r.assigned().is_some() && !matches!(other, A::Relation(_)) => r
            .assigned()
            .is_some_and(|value| equivalent(&A::Scalar(value.clone()), other)),
        (other, A::Relation(r)) if r.assigned().is_some() => r
            .assigned()
            .is_some_and(|value| equivalent(other, &A::Scalar(value.clone()))),
        // An inequality accepts its interval.
        (A::Relation(r), other) if r.interval().is_some() => {
            match (reference.intervals(true), other.intervals(false)) {
                (Some(a), Some(b)) => same_intervals(&a, &b),
                _ => false,
            }
        }

        // Sets and lists: order-free; a one-element set is its element.
        (A::Set(a) | A::List(a), A::Set(b) | A::List(b)) => same_elements(a, b),
        (A::Set(a), other) if a.len() == 1 => equivalent(&a[0], other),
        (other, A::Set(b)) if b.len() == 1 => equivalent(other, &b[0]),

        (
            A::Bracketed {
                open: o1,
                close: c1,
                items: a,
            },
            A::Bracketed {
                open: o2,
                close: c2,
                items: b,
            },
        ) => {
            o1 == o2
                && c1 == c2
                && a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| equivalent(x, y))
        }
        (A::Bracketed { .. } | A::Union(_), A::Bracketed { .. } | A::Union(_)) => {
            match (reference.intervals(false), given.intervals(false)) {
                (Some(a), Some(b)) => same_intervals(&a, &b),
                _ => false,
            }
        }

        (A::Matrix(a), A::Matrix(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(r1, r2)| {
                    r1.len() == r2.len() && r1.iter().zip(r2).all(|(x, y)| x.same(y))
                })
        }
        _ => false,
    }
}

/// Each element of `a` is in `b` and each of `b` in `a` (repetitions do not count).
fn same_elements(a: &[MathAnswer], b: &[MathAnswer]) -> bool {
    a.iter().all(|x| b.iter().any(|y| equivalent(x, y)))
        && b.iter().all(|y| a.iter().any(|x| equivalent(x, y)))
}

fn relations_equal(a: &Relation, b: &Relation) -> bool {
    if let (Some((va, ia)), Some((vb, ib))) = (a.interval(), b.interval()) {
        return va == vb && same_intervals(&[ia], &[ib]);
    }
    if a.ops.len() == 1 && b.ops.len() == 1 {
        if let (Some(fa), Some(fb)) = (normal_form(a), normal_form(b)) {
            let (op_a, op_b) = (fa.1, fb.1);
            let constant = !a.sides.iter().chain(&b.sides).any(|s| s.has_variables);
            if op_a == op_b && !constant {
                let positive = !matches!(op_a, RelOp::Eq | RelOp::Ne);
                return fa.0.signature.proportional(&fb.0.signature, positive);
            }
        }
    }
    a.ops == b.ops
        && a.sides.len() == b.sides.len()
        && a.sides.iter().zip(&b.sides).all(|(x, y)| x.same(y))
}

/// `l OP r` as `f OP' 0` with `OP'` one of `=`, `≠`, `<`, `≤` (`l > r` is `r - l < 0`).
fn normal_form(relation: &Relation) -> Option<(Scalar, RelOp)> {
    let (l, r, op) = (&relation.sides[0], &relation.sides[1], relation.ops[0]);
    let (first, second, op) = match op {
        RelOp::Gt => (r, l, RelOp::Lt),
        RelOp::Ge => (r, l, RelOp::Le),
        other => (l, r, other),
    };
    let difference = first
        .signature
        .combine(&second.signature, |x, y| x.checked_sub(y));
    Some((
        Scalar {
            signature: difference,
            percent_of: None,
            variable: None,
            has_variables: first.has_variables || second.has_variables,
        },
        op,
    ))
}
