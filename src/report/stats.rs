//! Report: the statistics tables and plots share — mean and sample standard deviation
//! across seeds, and percentiles (of a bootstrap distribution).

/// Mean and sample standard deviation (n − 1; `None` below two values). The mean of no
/// values is NaN.
pub fn mean_std(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    (mean, Some(var.sqrt()))
}

/// The `q` quantile (0 ≤ q ≤ 1) of `sorted` (ascending), interpolating linearly between
/// order statistics (Hyndman and Fan's type 7, R's and NumPy's default): position
/// `q·(n − 1)`. NaN for no values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let (Some(&low), Some(&high)) = (sorted.get(below), sorted.get(above)) else {
        return f64::NAN;
    };
    if below == above {
        return low;
    }
    low + (high - low) * (position - below as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_order_statistics() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 1.0), 5.0);
        assert_eq!(percentile(&values, 0.5), 3.0);
        // Position 0.025 × 4 = 0.1: a tenth of the way from 1 to 2.
        assert!((percentile(&values, 0.025) - 1.1).abs() < 1e-12);
        assert!((percentile(&values, 0.975) - 4.9).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 0.975), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
