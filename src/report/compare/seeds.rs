//! Report (`compare`): how much a metric moves between seeds, and a rough number of seeds
//! that would resolve an observed difference. Two arms of `n` independent seeds each,
//! seed-to-seed standard deviation σ in both, a true difference Δ: a two-sided test at 5 %
//! has 80 % power when n ≈ 2·((z₀.₉₇₅ + z₀.₈)·σ / Δ)² (the normal approximation for
//! the difference of two means). See docs/src/compare-statistics.md.

/// The standard normal's 97.5th percentile (a two-sided 5 % test).
pub const Z_975: f64 = 1.959_963_984_540_054;
/// The standard normal's 80th percentile (80 % power).
pub const Z_80: f64 = 0.841_621_233_572_914_3;

/// The pooled sample standard deviation of several groups (each group's values around
/// its own mean, n − 1 per group); `None` without two values in some group.
pub fn pooled_sd(groups: &[&[f64]]) -> Option<f64> {
    let mut squares = 0.0;
    let mut freedom = 0usize;
    for group in groups {
        if group.len() < 2 {
            continue;
        }
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        squares += group.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        freedom += group.len() - 1;
    }
    (freedom > 0).then(|| (squares / freedom as f64).sqrt())
}

/// Seeds per arm for 80 % power at 5 % (two-sided) when the seeds' standard deviation is
/// `seed_sd` and the true difference is `difference`: ⌈2·((z₀.₉₇₅ + z₀.₈)·σ/Δ)²⌉, at
/// least 2 (fewer cannot show a spread). `None` when the difference is 0 (nothing to
/// resolve) or either number is not finite.
pub fn seeds_needed(seed_sd: f64, difference: f64) -> Option<u64> {
    if !seed_sd.is_finite() || !difference.is_finite() || difference == 0.0 {
        return None;
    }
    let n = 2.0 * ((Z_975 + Z_80) * seed_sd / difference).powi(2);
    // Saturates for astronomically many (a float above u64::MAX casts to u64::MAX).
    Some((n.ceil() as u64).max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_needed_on_a_worked_example() {
        // σ = 0.05 between seeds, Δ = 0.04: 2 × (2.8016 × 1.25)² = 24.53 → 25 per arm.
        assert_eq!(seeds_needed(0.05, 0.04), Some(25));
        // σ = Δ: 2 × 2.8016² = 15.70 → 16; the sign of Δ does not matter.
        assert_eq!(seeds_needed(0.1, 0.1), Some(16));
        assert_eq!(seeds_needed(0.1, -0.1), Some(16));
        // Twice the spread, four times the seeds (up to rounding): 62.79 → 63.
        assert_eq!(seeds_needed(0.2, 0.1), Some(63));
        // No spread: the minimum that can show one.
        assert_eq!(seeds_needed(0.0, 0.1), Some(2));
        assert_eq!(seeds_needed(0.1, 0.0), None);
        assert_eq!(seeds_needed(f64::NAN, 0.1), None);
    }

    #[test]
    fn r1_zero_s_two_seeds_need_many_more() {
        // pipelines/r1-zero.yaml: one seed reached 82.1 %, the other 33.2 %.
        let sd = pooled_sd(&[&[0.821, 0.332]]).expect("two seeds");
        assert!((sd - 0.489 / 2f64.sqrt()).abs() < 1e-12);
        // To tell a 4-point difference from that noise: over a thousand seeds per arm.
        assert_eq!(seeds_needed(sd, 0.04), Some(1174));
    }

    #[test]
    fn pooled_sd_weights_groups_by_their_degrees_of_freedom() {
        // Squares around each mean: 2 (1, 3) and 8 (4, 6, 8); 1 + 2 degrees of freedom.
        let sd = pooled_sd(&[&[1.0, 3.0], &[4.0, 6.0, 8.0]]).expect("pooled");
        assert!((sd - (10.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // A group of one adds nothing.
        assert_eq!(pooled_sd(&[&[1.0, 3.0], &[9.0]]), pooled_sd(&[&[1.0, 3.0]]));
        assert_eq!(pooled_sd(&[&[1.0], &[2.0]]), None);
    }
}
