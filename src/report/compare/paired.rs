//! Report (`compare`): the paired, hierarchical bootstrap behind `compare`'s verdicts.
//! Two arms scored on the same prompts: each resample draws the prompts with replacement
//! once, for both arms (so a prompt's scores stay paired), and each arm's seeds with
//! replacement, independently; the statistic is the difference of the grand means (arm −
//! baseline). The 95 % interval is the 2.5th and 97.5th percentile of the resampled
//! differences (the percentile method); the verdict is `different` when it excludes 0.
//! See docs/src/compare-statistics.md for the assumptions.

use crate::report::stats::percentile;
use crate::tasks::SeededRng;

/// The resamples `compare` draws unless told otherwise.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// The interval's coverage.
pub const CONFIDENCE: f64 = 0.95;

/// An estimate of a difference and its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The observed difference, arm − baseline.
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// Whether an interval rules out "no difference".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The interval excludes 0.
    Different,
    /// The interval includes 0 (a zero-width interval at 0 included).
    WithinNoise,
}

impl Verdict {
    pub fn of(interval: &Interval) -> Self {
        if interval.low > 0.0 || interval.high < 0.0 {
            Self::Different
        } else {
            Self::WithinNoise
        }
    }

    /// As printed: `different` or `within noise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Different => "different",
            Self::WithinNoise => "within noise",
        }
    }
}

/// The paired bootstrap of `arm − baseline`. Each argument holds one row per seed and one
/// column per prompt, the columns of both in the same prompt order. `None` when an arm
/// has no seed, there is no prompt, or a row's length differs from the others'.
pub fn paired_bootstrap(
    baseline: &[Vec<f64>],
    arm: &[Vec<f64>],
    resamples: usize,
    rng: &mut SeededRng,
) -> Option<Interval> {
    let prompts = baseline.first()?.len();
    if prompts == 0 || arm.is_empty() || baseline.iter().chain(arm).any(|s| s.len() != prompts) {
        return None;
    }
    let all_once = vec![1u32; prompts];
    let estimate = grand_mean(arm, &all_once) - grand_mean(baseline, &all_once);
    let mut weights = vec![0u32; prompts];
    let mut differences = Vec::with_capacity(resamples.max(1));
    for _ in 0..resamples.max(1) {
        weights.fill(0);
        for _ in 0..prompts {
            weights[rng.index(prompts)] += 1;
        }
        let base = resampled_seed_mean(baseline, &weights, rng);
        let other = resampled_seed_mean(arm, &weights, rng);
        differences.push(other - base);
    }
    differences.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some(Interval {
        estimate,
        low: percentile(&differences, tail),
        high: percentile(&differences, 1.0 - tail),
    })
}

/// The mean over seeds of each seed's mean score, prompts weighted by `weights`.
fn grand_mean(seeds: &[Vec<f64>], weights: &[u32]) -> f64 {
    seeds.iter().map(|s| weighted_mean(s, weights)).sum::<f64>() / seeds.len() as f64
}

/// Draws `seeds.len()` seeds with replacement and averages their weighted means.
fn resampled_seed_mean(seeds: &[Vec<f64>], weights: &[u32], rng: &mut SeededRng) -> f64 {
    let means: Vec<f64> = seeds.iter().map(|s| weighted_mean(s, weights)).collect();
    let total: f64 = (0..means.len())
        .map(|_| means[rng.index(means.len())])
        .sum();
    total / means.len() as f64
}

fn weighted_mean(scores: &[f64], weights: &[u32]) -> f64 {
    let (sum, count) = scores
        .iter()
        .zip(weights)
        .fold((0.0, 0u64), |(sum, count), (score, &w)| {
            (sum + score * f64::from(w), count + u64::from(w))
        });
    sum / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> SeededRng {
        SeededRng::new(7)
    }

    /// Scores of `n` prompts: 1 where a uniform draw is below `p`, else 0 (a prompt
    /// solved or not).
    fn solved(n: usize, p: f64, rng: &mut SeededRng) -> Vec<f64> {
        (0..n).map(|_| f64::from(u8::from(rng.chance(p)))).collect()
    }

    #[test]
    fn equal_differences_give_a_zero_width_interval_at_that_value() {
        let base: Vec<f64> = (0..50).map(|i| f64::from(i % 7) / 10.0).collect();
        let arm: Vec<f64> = base.iter().map(|b| b + 0.25).collect();
        let interval = paired_bootstrap(&[base], &[arm], 2_000, &mut rng()).expect("interval");
        for value in [interval.estimate, interval.low, interval.high] {
            assert!((value - 0.25).abs() < 1e-12, "{interval:?}");
        }
        assert_eq!(Verdict::of(&interval), Verdict::Different);
    }

    #[test]
    fn identical_arms_are_within_noise_at_exactly_zero() {
        let scores = [solved(100, 0.5, &mut rng())];
        let interval = paired_bootstrap(&scores, &scores, 1_000, &mut rng()).expect("interval");
        assert_eq!(
            interval,
            Interval {
                estimate: 0.0,
                low: 0.0,
                high: 0.0
            }
        );
        assert_eq!(Verdict::of(&interval), Verdict::WithinNoise);
    }

    #[test]
    fn a_real_shift_is_different_and_independent_draws_are_not() {
        // 200 prompts; the arm solves 30 points more often: different.
        let mut draws = SeededRng::new(11);
        let base = [solved(200, 0.3, &mut draws)];
        let better = [solved(200, 0.6, &mut draws)];
        let shifted =
            paired_bootstrap(&base, &better, DEFAULT_RESAMPLES, &mut rng()).expect("interval");
        assert_eq!(Verdict::of(&shifted), Verdict::Different, "{shifted:?}");
        assert!(shifted.low > 0.15 && shifted.high < 0.45, "{shifted:?}");
        // The same rate, drawn afresh: the interval straddles 0.
        let same = [solved(200, 0.3, &mut draws)];
        let noise =
            paired_bootstrap(&base, &same, DEFAULT_RESAMPLES, &mut rng()).expect("interval");
        assert_eq!(Verdict::of(&noise), Verdict::WithinNoise, "{noise:?}");
        assert!(noise.low < 0.0 && noise.high > 0.0, "{noise:?}");
    }

    #[test]
    fn pairing_removes_what_prompts_share() {
        // Prompt difficulty varies a lot and both arms feel it; the arm is better by
        // 0.05 on every prompt, plus a little noise. Paired, that is clear.
        let mut draws = SeededRng::new(3);
        let difficulty: Vec<f64> = (0..100)
            .map(|_| draws.below(1000) as f64 / 1000.0)
            .collect();
        let jitter = |d: &f64, draws: &mut SeededRng| d + (draws.below(21) as f64 - 10.0) / 1000.0;
        let base: Vec<f64> = difficulty.iter().map(|d| jitter(d, &mut draws)).collect();
        let arm: Vec<f64> = difficulty
            .iter()
            .map(|d| jitter(d, &mut draws) + 0.05)
            .collect();
        let interval = paired_bootstrap(&[base], &[arm], 5_000, &mut rng()).expect("interval");
        assert_eq!(Verdict::of(&interval), Verdict::Different, "{interval:?}");
        assert!(interval.high - interval.low < 0.01, "{interval:?}");
    }

    #[test]
    fn seeds_are_resampled_too() {
        // Two seeds per arm that disagree wildly: the prompts alone would call the
        // difference real; with the seeds resampled the interval is wide.
        let prompts = 100;
        let flat = |v: f64| vec![v; prompts];
        let base = [flat(0.10), flat(0.50)];
        let arm = [flat(0.20), flat(0.60)];
        let interval = paired_bootstrap(&base, &arm, 5_000, &mut rng()).expect("interval");
        assert!((interval.estimate - 0.10).abs() < 1e-12);
        assert_eq!(Verdict::of(&interval), Verdict::WithinNoise, "{interval:?}");
        assert!(interval.low <= -0.3 + 1e-9 && interval.high >= 0.5 - 1e-9);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let mut draws = SeededRng::new(5);
        let base = [solved(60, 0.4, &mut draws)];
        let arm = [solved(60, 0.5, &mut draws)];
        let once = paired_bootstrap(&base, &arm, 3_000, &mut rng());
        let again = paired_bootstrap(&base, &arm, 3_000, &mut rng());
        assert_eq!(once, again);
        let other = paired_bootstrap(&base, &arm, 3_000, &mut SeededRng::new(8));
        assert_ne!(once, other, "another seed, other resamples");
    }

    #[test]
    fn nothing_to_resample_is_no_interval() {
        assert_eq!(paired_bootstrap(&[], &[vec![1.0]], 10, &mut rng()), None);
        assert_eq!(paired_bootstrap(&[vec![]], &[vec![]], 10, &mut rng()), None);
        assert_eq!(
            paired_bootstrap(&[vec![1.0, 2.0]], &[vec![1.0]], 10, &mut rng()),
            None
        );
    }
}
