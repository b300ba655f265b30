//! Execute (training): the reward model's objective — the Bradley–Terry loss
//! `−log σ(r_chosen − r_rejected)` averaged over pairs, with TRL's optional
//! `center_rewards_coefficient` term — and the pair statistics reported on held-out data.

use burn::tensor::activation::log_sigmoid;
use burn::tensor::Tensor;

use crate::model::kernels::{mean, KernelBackend};

/// Mean Bradley–Terry loss over pairs, `[1]`: `mean(−log σ(chosen − rejected))`, plus
/// `center · mean((chosen + rejected)²)` when `center` > 0 (TRL's
/// `center_rewards_coefficient`, which keeps scores near zero).
pub fn bradley_terry_loss<B: KernelBackend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    center: f64,
) -> Tensor<B, 1> {
    let loss = mean(log_sigmoid(chosen.clone() - rejected.clone())).neg();
    if center > 0.0 {
        let sum = chosen + rejected;
        loss + mean(sum.clone() * sum).mul_scalar(center)
    } else {
        loss
    }
}

/// How well scores order pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairStats {
    /// Share of pairs with `chosen > rejected` (a tie counts as wrong); NaN for no pairs.
    pub accuracy: f64,
    /// Mean of `chosen − rejected`; NaN for no pairs.
    pub margin: f64,
    pub pairs: usize,
}

/// Pair accuracy and mean margin of paired scores.
pub fn pair_stats(chosen: &[f64], rejected: &[f64]) -> PairStats {
    let pairs = chosen.len().min(rejected.len());
    if pairs == 0 {
        return PairStats {
            accuracy: f64::NAN,
            margin: f64::NAN,
            pairs,
        };
    }
    let right = chosen.iter().zip(rejected).filter(|(c, r)| c > r).count();
    let margin: f64 = chosen.iter().zip(rejected).map(|(c, r)| c - r).sum();
    PairStats {
        accuracy: right as f64 / pairs as f64,
        margin: margin / pairs as f64,
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CpuBackend;
    use burn::tensor::TensorData;

    fn scores(values: &[f32]) -> Tensor<CpuBackend, 1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &Default::default(),
        )
    }

    fn scalar(t: Tensor<CpuBackend, 1>) -> f64 {
        let v: Vec<f32> = t.into_data().into_vec().expect("f32");
        f64::from(v[0])
    }

    #[test]
    fn loss_and_accuracy_match_hand_computed_values() {
        let chosen = [2.0f32, 0.5, -1.0];
        let rejected = [1.0f32, 1.5, -1.0];
        // Differences 1, −1, 0: −log σ(1) = ln(1 + e^−1), −log σ(−1) = ln(1 + e), −log σ(0) = ln 2.
        let expected =
            ((1.0 + (-1.0f64).exp()).ln() + (1.0 + 1.0f64.exp()).ln() + 2.0f64.ln()) / 3.0;
        assert!((expected - 0.773_223_518_532_130_3).abs() < 1e-12);
        let loss = scalar(bradley_terry_loss(scores(&chosen), scores(&rejected), 0.0));
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
        // (c + r)² = 9, 4, 4: mean 17/3, times 0.01.
        let centred = scalar(bradley_terry_loss(scores(&chosen), scores(&rejected), 0.01));
        assert!(
            (centred - (expected + 0.17 / 3.0)).abs() < 1e-6,
            "{centred}"
        );

        let c: Vec<f64> = chosen.iter().map(|&x| f64::from(x)).collect();
        let r: Vec<f64> = rejected.iter().map(|&x| f64::from(x)).collect();
        let stats = pair_stats(&c, &r);
        assert_eq!(stats.pairs, 3);
        assert!(
            (stats.accuracy - 1.0 / 3.0).abs() < 1e-12,
            "the tie is wrong"
        );
        assert!(stats.margin.abs() < 1e-12);
        assert!(pair_stats(&[], &[]).accuracy.is_nan());
    }
}
