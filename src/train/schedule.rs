//! Execute (training): the learning-rate schedule — linear warm-up to the peak, then
//! constant, linear decay or cosine decay to 0 at the last step (transformers' schedules).

use crate::manifest::LrScheduler;

/// The learning rate after `step` completed steps of `total`.
pub fn learning_rate(
    peak: f64,
    kind: LrScheduler,
    warmup_ratio: f64,
    step: u64,
    total: u64,
) -> f64 {
    let total = total.max(1) as f64;
    let step = step as f64;
    let warmup = (warmup_ratio * total).ceil();
    if warmup > 0.0 && step < warmup {
        return peak * (step + 1.0) / warmup;
    }
    let progress = if total > warmup {
        ((step - warmup) / (total - warmup)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    match kind {
        LrScheduler::Constant => peak,
        LrScheduler::Linear => peak * (1.0 - progress),
        LrScheduler::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays() {
        let lr = |s| learning_rate(1.0, LrScheduler::Cosine, 0.1, s, 100);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(55) - 0.5).abs() < 1e-12);
        assert!(lr(100).abs() < 1e-12);
        assert!((learning_rate(2.0, LrScheduler::Linear, 0.0, 50, 100) - 1.0).abs() < 1e-12);
        assert_eq!(learning_rate(2.0, LrScheduler::Constant, 0.0, 99, 100), 2.0);
    }
}
