//! Execute (training): the GRPO objective on one batch — group-normalised advantages, the
//! clipped surrogate with `epsilon`/`epsilon_high` on token ratios or on GSPO's sequence
//! ratios (`importance_sampling_level`), the k3 KL estimator against the reference, and
//! TRL's loss aggregations (`grpo`, `dr_grpo`, `dapo`, `bnpo`).

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use crate::model::kernels::{self, expand_last, sum_last, KernelBackend};

use crate::manifest::{ImportanceSamplingLevel, LossType, ScaleRewards};

/// Advantages of `rewards` (one per completion, `group` consecutive completions per
/// prompt): minus the group mean, divided by the group's (or batch's) standard deviation
/// plus 1e-4 unless `scale` is `none`. A completion without a reward gets 0.
pub fn group_advantages(rewards: &[Option<f64>], group: usize, scale: ScaleRewards) -> Vec<f64> {
    let std_of = |values: &[f64]| {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        // Sample standard deviation, as torch.std (and TRL) compute it.
        let dof = (values.len().max(2) - 1) as f64;
        (
            mean,
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dof).sqrt(),
        )
    };
    let known: Vec<f64> = rewards.iter().flatten().copied().collect();
    let (_, batch_std) = std_of(&known);
    let mut advantages = Vec::with_capacity(rewards.len());
    for chunk in rewards.chunks(group.max(1)) {
        let values: Vec<f64> = chunk.iter().flatten().copied().collect();
        let (mean, group_std) = std_of(&values);
        for reward in chunk {
            advantages.push(match reward {
                None => 0.0,
                Some(r) => {
                    let centred = r - mean;
                    match scale {
                        ScaleRewards::Group => centred / (group_std + 1e-4),
                        ScaleRewards::Batch => centred / (batch_std + 1e-4),
                        ScaleRewards::None => centred,
                    }
                }
            });
        }
    }
    advantages
}

/// Settings of the objective.
#[derive(Debug, Clone, Copy)]
pub struct LossSettings {
    pub epsilon_low: f64,
    pub epsilon_high: f64,
    pub beta: f64,
    pub loss_type: LossType,
    pub max_completion_length: usize,
    pub level: ImportanceSamplingLevel,
}

/// The loss and what the step logs about it.
pub struct PolicyLoss<B: Backend> {
    pub loss: Tensor<B, 1>,
    /// Mean k3 KL over completion tokens (0 without a reference).
    pub kl: f64,
    /// Share of completion tokens (with sequence ratios: of trained completions) whose
    /// ratio was clipped.
    pub clip_ratio: f64,
}

/// The GRPO loss. `logp`, `old_logp`, `ref_logp` and `mask` are `[rows, tokens]` (mask 1
/// on completion tokens), `advantages` has one value per row.
pub fn policy_loss<B: KernelBackend>(
    logp: Tensor<B, 2>,
    old_logp: Tensor<B, 2>,
    ref_logp: Option<Tensor<B, 2>>,
    advantages: &[f64],
    mask: Tensor<B, 2>,
    settings: LossSettings,
) -> PolicyLoss<B> {
    let [rows, tokens] = logp.dims();
    let device = logp.device();
    let adv_values: Vec<f32> = advantages.iter().map(|&a| a as f32).collect();
    let adv = expand_last(
        Tensor::<B, 1>::from_floats(adv_values.as_slice(), &device).reshape([rows, 1]),
        tokens,
    );
    let log_ratio = logp.clone() - old_logp;
    let ratio = match settings.level {
        ImportanceSamplingLevel::Token => log_ratio.exp(),
        // GSPO (Zheng et al. 2025, arXiv:2507.18071), as TRL's GRPOTrainer computes it for
        // `importance_sampling_level == "sequence"` (trl/trainer/grpo_trainer.py,
        // `_compute_loss`): s_i = exp(Σ_t m_t (log π_θ − log π_old) / max(Σ_t m_t, 1)),
        // one ratio per completion, with its gradient through every token (no stop-gradient,
        // GSPO's sequence form, not GSPO-token). The same ratio stands at each token, so
        // the clipping and aggregation below are the token code's.
        ImportanceSamplingLevel::Sequence => {
            let per_row =
                sum_last(log_ratio * mask.clone()) / sum_last(mask.clone()).clamp_min(1.0);
            expand_last(per_row.exp(), tokens)
        }
    };
    let clipped = ratio
        .clone()
        .clamp(1.0 - settings.epsilon_low, 1.0 + settings.epsilon_high);
    let surrogate = (ratio.clone() * adv.clone()).min_pair(clipped * adv.clone());
    let mut per_token = surrogate.neg();
    let mut kl_mean = 0.0;
    let mask_sum: f64 = kernels::sum(mask.clone()).into_scalar().elem();
    if let Some(reference) = ref_logp {
        let delta = reference - logp;
        let kl = delta.clone().exp() - delta - 1.0;
        let kl_total: f64 = kernels::sum(kl.clone() * mask.clone()).into_scalar().elem();
        kl_mean = kl_total / mask_sum.max(1.0);
        if settings.beta > 0.0 {
            per_token = per_token + kl.mul_scalar(settings.beta);
        }
    }
    let low = ratio.clone().lower_elem(1.0 - settings.epsilon_low).float()
        * adv.clone().lower_elem(0.0).float();
    let high =
        ratio.greater_elem(1.0 + settings.epsilon_high).float() * adv.greater_elem(0.0).float();
    let clipped_mask = (low + high) * mask.clone();
    let clip_ratio = match settings.level {
        ImportanceSamplingLevel::Token => {
            let clipped_total: f64 = kernels::sum(clipped_mask).into_scalar().elem();
            clipped_total / mask_sum.max(1.0)
        }
        // One ratio per completion: the share of trained completions clipped (TRL takes
        // the mean over sequences for sequence-level ratios).
        ImportanceSamplingLevel::Sequence => {
            let trained = sum_last(mask.clone()).greater_elem(0.0).float();
            let clipped = sum_last(clipped_mask).greater_elem(0.0).float();
            let rows_trained: f64 = kernels::sum(trained).into_scalar().elem();
            let rows_clipped: f64 = kernels::sum(clipped).into_scalar().elem();
            rows_clipped / rows_trained.max(1.0)
        }
    };
    let masked = per_token * mask.clone();
    let loss = match settings.loss_type {
        LossType::Grpo => {
            let per_row = sum_last(masked) / sum_last(mask).clamp_min(1.0);
            kernels::mean(per_row)
        }
        LossType::Dapo | LossType::Bnpo => kernels::sum(masked) / kernels::sum(mask).clamp_min(1.0),
        LossType::DrGrpo => {
            kernels::sum(masked).div_scalar((rows * settings.max_completion_length.max(1)) as f64)
        }
    };
    PolicyLoss {
        loss,
        kl: kl_mean,
        clip_ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CpuBackend;
    use burn::tensor::TensorData;

    type B = CpuBackend;

    fn t(values: [[f32; 2]; 2]) -> Tensor<B, 2> {
        let flat: Vec<f32> = values.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [2, 2]), &Default::default())
    }

    /// A fixed batch: 2 completions of 2 tokens, the second row's last token masked; the
    /// expected values were computed by hand (Python, float64) from the formulas in
    /// reference.md.
    fn loss(loss_type: LossType, epsilon_high: f64, beta: f64) -> (f64, f64, f64) {
        let settings = LossSettings {
            epsilon_low: 0.2,
            epsilon_high,
            beta,
            loss_type,
            max_completion_length: 4,
            level: ImportanceSamplingLevel::Token,
        };
        let out = policy_loss(
            t([[-1.0, -2.0], [-0.5, -1.5]]),
            t([[-1.2, -1.9], [-0.5, -1.0]]),
            Some(t([[-1.1, -2.0], [-0.6, -1.5]])),
            &[1.0, -1.0],
            t([[1.0, 1.0], [1.0, 0.0]]),
            settings,
        );
        let value: f64 = out.loss.into_scalar().elem();
        (value, out.kl, out.clip_ratio)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    #[test]
    fn each_loss_type_matches_the_hand_computed_value() {
        let (grpo, kl, clip) = loss(LossType::Grpo, 0.2, 0.1);
        close(grpo, -0.025846548156292948);
        close(kl, 0.0032249453573064044);
        close(clip, 1.0 / 3.0);
        close(loss(LossType::Dapo, 0.2, 0.1).0, -0.36795664480958923);
        close(loss(LossType::Bnpo, 0.2, 0.1).0, -0.36795664480958923);
        close(loss(LossType::DrGrpo, 0.2, 0.1).0, -0.13798374180359596);
    }

    #[test]
    fn clip_higher_and_beta_change_the_loss_as_written() {
        let (grpo, _, clip) = loss(LossType::Grpo, 0.28, 0.1);
        close(grpo, -0.031197237696335423);
        close(clip, 0.0);
        close(loss(LossType::Grpo, 0.2, 0.0).0, -0.02620935450898987);
    }

    #[test]
    fn advantages_are_group_normalised() {
        let rewards = [
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
            Some(0.5),
            Some(0.5),
        ];
        let adv = group_advantages(&rewards, 2, ScaleRewards::Group);
        // Group [1, 0]: mean 0.5, sample std 0.7071.
        close(adv[0], 0.5 / (0.5f64.sqrt() + 1e-4));
        close(adv[1], -0.5 / (0.5f64.sqrt() + 1e-4));
        // A group whose rewards are equal teaches nothing.
        close(adv[4], 0.0);
        close(adv[5], 0.0);
        let centred = group_advantages(&rewards, 2, ScaleRewards::None);
        close(centred[0], 0.5);
        let missing = group_advantages(&[Some(1.0), None], 2, ScaleRewards::Group);
        close(missing[1], 0.0);
    }
}

/// GSPO's sequence ratios (`importance_sampling_level: sequence`) on the batch of `tests`:
/// values and gradients worked out by hand.
#[cfg(test)]
mod sequence_level_tests {
    use super::*;
    use crate::model::CpuBackend;
    use burn::backend::Autodiff;
    use burn::tensor::TensorData;

    type A = Autodiff<CpuBackend>;

    fn t(values: [[f32; 2]; 2]) -> Tensor<A, 2> {
        let flat: Vec<f32> = values.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [2, 2]), &Default::default())
    }

    fn settings(
        level: ImportanceSamplingLevel,
        loss_type: LossType,
        eps: (f64, f64),
    ) -> LossSettings {
        LossSettings {
            epsilon_low: eps.0,
            epsilon_high: eps.1,
            beta: 0.1,
            loss_type,
            max_completion_length: 4,
            level,
        }
    }

    /// [`settings`] with the default clip range, `epsilon` 0.2 on both sides (TRL's).
    fn default_clip(level: ImportanceSamplingLevel, loss_type: LossType) -> LossSettings {
        settings(level, loss_type, (0.2, 0.2))
    }

    /// The loss, clip ratio and d loss / d logp of 2 completions of 2 tokens (the second
    /// row's last token masked), advantages +1 and −1.
    fn run(
        logp: [[f32; 2]; 2],
        old: [[f32; 2]; 2],
        beta: f64,
        settings: LossSettings,
    ) -> (f64, f64, Vec<f32>) {
        let logp = t(logp).require_grad();
        let out = policy_loss(
            logp.clone(),
            t(old),
            Some(t([[-1.1, -2.0], [-0.6, -1.5]])),
            &[1.0, -1.0],
            t([[1.0, 1.0], [1.0, 0.0]]),
            LossSettings { beta, ..settings },
        );
        let value: f64 = out.loss.clone().into_scalar().elem();
        let grads = out.loss.backward();
        let grad = logp
            .grad(&grads)
            .expect("logp is tracked")
            .into_data()
            .to_vec::<f32>()
            .expect("values");
        (value, out.clip_ratio, grad)
    }

    const LOGP: [[f32; 2]; 2] = [[-1.0, -2.0], [-0.5, -1.5]];
    const OLD: [[f32; 2]; 2] = [[-1.2, -1.9], [-0.5, -1.0]];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    fn close_all(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((f64::from(*x) - y).abs() < 1e-6, "{a:?} != {b:?}");
        }
    }

    /// Row 0's log-ratios are 0.2 and −0.1: s₀ = exp((0.2 − 0.1)/2) = exp(0.05) =
    /// 1.0512711; row 1 has one trained token with log-ratio 0 (its masked token's −0.5
    /// does not count): s₁ = 1. Both lie inside [0.8, 1.2], so the surrogate of row 0 is
    /// −1.0512711 at each token and row 1's is +1. With `grpo`'s aggregation and no KL:
    /// (−1.0512711 + 1)/2 = −0.0256355. The KL terms (k3 of ref − logp = 0.1, 0 and −0.1:
    /// 0.0051709, 0, 0.0048374) add 0.1 × (0.0051709/2 + 0.0048374)/2 = 0.0003628.
    #[test]
    fn sequence_ratios_match_the_hand_computed_loss() {
        let grpo = default_clip(ImportanceSamplingLevel::Sequence, LossType::Grpo);
        let (loss, clip, _) = run(LOGP, OLD, 0.0, grpo);
        close(loss, -0.025635548188011947);
        close(clip, 0.0);
        close(run(LOGP, OLD, 0.1, grpo).0, -0.025272741835315027);
        let dapo = default_clip(ImportanceSamplingLevel::Sequence, LossType::Dapo);
        close(run(LOGP, OLD, 0.1, dapo).0, -0.367191569714952);
        let dr = default_clip(ImportanceSamplingLevel::Sequence, LossType::DrGrpo);
        close(run(LOGP, OLD, 0.1, dr).0, -0.137696838643107);
        // Token ratios on the same batch clip row 0's first token (exp(0.2) = 1.2214 >
        // 1.2): the two levels differ here.
        let token = default_clip(ImportanceSamplingLevel::Token, LossType::Grpo);
        close(run(LOGP, OLD, 0.1, token).0, -0.025846548156292948);
    }

    /// d loss / d logp with `grpo`'s aggregation and β = 0. Sequence level: every trained
    /// token of row 0 gets −½ · A₀ · s₀ · 1/|y₀| = −½ · 1.0512711 · ½ = −0.2628178 (both
    /// tokens pushed up together); row 1's token −½ · (−1) · 1 · 1 = +0.5 (pushed down);
    /// the masked token 0. Token level: row 0's first token is clipped (no gradient) and
    /// its second gets −½ · exp(−0.1) · ½ = −0.2262093.
    #[test]
    fn sequence_ratios_move_every_token_of_a_completion_together() {
        let sequence = default_clip(ImportanceSamplingLevel::Sequence, LossType::Grpo);
        let (_, _, grad) = run(LOGP, OLD, 0.0, sequence);
        close_all(&grad, &[-0.262817774094006, -0.262817774094006, 0.5, 0.0]);
        let token = default_clip(ImportanceSamplingLevel::Token, LossType::Grpo);
        let (_, _, grad) = run(LOGP, OLD, 0.0, token);
        close_all(&grad, &[0.0, -0.22620935450898987, 0.5, 0.0]);
    }

    /// GSPO's own clip range (3e-4, 4e-4): s₀ = 1.0513 > 1.0004 with A₀ > 0 is clipped, so
    /// row 0 contributes −1.0004 and no gradient; half the trained completions clipped.
    #[test]
    fn a_sequence_outside_the_range_is_clipped_whole() {
        let gspo = settings(
            ImportanceSamplingLevel::Sequence,
            LossType::Grpo,
            (3e-4, 4e-4),
        );
        let (loss, clip, grad) = run(LOGP, OLD, 0.0, gspo);
        close(loss, (-(1.0 + 4e-4) + 1.0) / 2.0);
        close(clip, 0.5);
        close_all(&grad, &[0.0, 0.0, 0.5, 0.0]);
    }

    /// When every token of a completion has the same ratio, the sequence ratio is that
    /// ratio, and both levels give the same loss and the same gradient, clipped or not,
    /// under every aggregation.
    #[test]
    fn equal_token_ratios_make_both_levels_coincide() {
        // Log-ratios 0.1 on row 0 and −0.1 on row 1 (its masked token too).
        let old = [[-1.1, -2.1], [-0.4, -1.4]];
        for loss_type in [
            LossType::Grpo,
            LossType::Dapo,
            LossType::DrGrpo,
            LossType::Bnpo,
        ] {
            // 0.2 leaves both ratios inside; 0.05 clips both (exp(0.1) > 1.05 with A > 0,
            // exp(−0.1) < 0.95 with A < 0).
            for eps in [(0.2, 0.2), (0.05, 0.05)] {
                let token = run(
                    LOGP,
                    old,
                    0.1,
                    settings(ImportanceSamplingLevel::Token, loss_type, eps),
                );
                let sequence = run(
                    LOGP,
                    old,
                    0.1,
                    settings(ImportanceSamplingLevel::Sequence, loss_type, eps),
                );
                close(token.0, sequence.0);
                let expected: Vec<f64> = token.2.iter().map(|&g| f64::from(g)).collect();
                close_all(&sequence.2, &expected);
            }
        }
    }
}

#[cfg(test)]
mod policy_step_tests {
    use super::*;
    use crate::model::{token_logprobs, CpuBackend, ModelConfig, Preset, TokenBatch, Transformer};
    use burn::backend::Autodiff;
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::tensor::TensorData;

    type A = Autodiff<CpuBackend>;

    /// Sum of the completion log-probs of each row.
    fn completion_logp(
        model: &Transformer<A>,
        batch: &TokenBatch,
        mask: &Tensor<A, 2>,
    ) -> Vec<f32> {
        let out = token_logprobs(model, batch, &Default::default()).expect("logprobs");
        (out.logprobs * mask.clone())
            .sum_dim(1)
            .into_data()
            .to_vec::<f32>()
            .expect("values")
    }

    #[test]
    fn one_step_raises_the_positively_advantaged_completion() {
        let config = ModelConfig {
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            intermediate_size: 64,
            ..Preset::Tiny.config()
        };
        let device = Default::default();
        let mut model = Transformer::<A>::init(&config, 3, &device).expect("model");
        // Same prompt (ids 10, 11), two completions.
        let rows = vec![vec![10, 11, 20, 21, 22], vec![10, 11, 30, 31, 32]];
        let batch = TokenBatch::right_padded(&rows, 0);
        let mask = Tensor::<A, 2>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0], [2, 4]),
            &device,
        );
        let before = completion_logp(&model, &batch, &mask);
        let out = token_logprobs(&model, &batch, &device).expect("logprobs");
        let settings = LossSettings {
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            beta: 0.0,
            loss_type: LossType::Grpo,
            max_completion_length: 3,
            level: ImportanceSamplingLevel::Token,
        };
        let loss = policy_loss(
            out.logprobs.clone(),
            out.logprobs.detach(),
            None,
            &[1.0, -1.0],
            mask.clone(),
            settings,
        )
        .loss;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optimizer = AdamWConfig::new().init::<A, Transformer<A>>();
        model = optimizer.step(1e-2, model, grads);
        let after = completion_logp(&model, &batch, &mask);
        assert!(
            after[0] > before[0],
            "advantage +1: {} -> {}",
            before[0],
            after[0]
        );
        assert!(
            after[1] < before[1],
            "advantage -1: {} -> {}",
            before[1],
            after[1]
        );
    }
}
