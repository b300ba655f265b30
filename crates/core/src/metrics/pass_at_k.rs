//! Report (the `eval` stage): unbiased pass@k — the chance that at least one of k samples
//! drawn without replacement from n, c of them correct, is correct: 1 − C(n−c, k)/C(n, k).

/// pass@k from `n` samples of which `c` are correct; `None` when `k` is 0, `k > n` or
/// `c > n`.
///
/// The ratio of binomials is computed as the product Π_{i=n−c+1}^{n} (1 − k/i), which
/// stays in [0, 1] at every step, so large n (hundreds of samples) neither overflows nor
/// loses precision the way factorials would.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if k == 1 {
        // The product would equal this up to rounding; pass@1 is reported exactly.
        return Some(c as f64 / n as f64);
    }
    if n - c < k {
        // Every k-subset contains a correct sample.
        return Some(1.0);
    }
    let all_wrong: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - all_wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binomial(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_1_is_the_fraction_correct() {
        assert_eq!(pass_at_k(64, 16, 1), Some(0.25));
        assert_eq!(pass_at_k(4, 0, 1), Some(0.0));
        assert_eq!(pass_at_k(4, 4, 1), Some(1.0));
    }

    #[test]
    fn matches_the_binomial_formula() {
        for (n, c, k) in [(10, 3, 5), (20, 1, 4), (16, 8, 8), (64, 5, 32), (7, 2, 7)] {
            let exact = 1.0 - binomial((n - c) as u64, k as u64) / binomial(n as u64, k as u64);
            let got = pass_at_k(n, c, k).expect("valid");
            assert!(
                (got - exact).abs() < 1e-12,
                "n={n} c={c} k={k}: {got} vs {exact}"
            );
        }
        assert_eq!(pass_at_k(10, 8, 3), Some(1.0));
    }

    #[test]
    fn large_n_is_stable_and_invalid_inputs_are_none() {
        let p = pass_at_k(10_000, 1, 5_000).expect("valid");
        assert!((p - 0.5).abs() < 1e-9);
        assert!(pass_at_k(1000, 3, 1000) == Some(1.0));
        assert_eq!(pass_at_k(4, 1, 0), None);
        assert_eq!(pass_at_k(4, 1, 5), None);
        assert_eq!(pass_at_k(4, 5, 1), None);
    }
}
