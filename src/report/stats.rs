//! Report: the statistics tables and plots share — mean and sample standard deviation
//! across seeds.

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
