//! Execute (training): the policy update of one GRPO step — old-policy and reference
//! log-probs without gradients, then `num_iterations` passes of the clipped-surrogate loss
//! over the step's micro-batches, accumulated and applied as one AdamW step each.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, Optimizer};
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::chunked_logprobs::logprob_gradients;
use super::grpo_loss::{policy_loss, LossSettings};
use super::loss_mask::next_token_weights;
use super::models::failed;
use super::rollout::StepRollouts;
use super::update::apply_gradients;
use crate::exec::StageError;
use crate::model::kernels;
use crate::model::TrainBackend;
use crate::model::{self, TokenBatch, Transformer};
use crate::stages::{PolicySettings, TrainingSettings};

/// What an update reports, averaged over its iterations where it is a mean.
pub(super) struct UpdateStats {
    pub loss: f64,
    pub kl: f64,
    pub clip_ratio: f64,
    /// Mean entropy per trained completion token.
    pub entropy: f64,
    /// Gradient norm of the last iteration, before clipping.
    pub grad_norm: f64,
}

/// Everything the update reads besides the models.
pub(super) struct UpdateSettings<'a> {
    pub training: &'a TrainingSettings,
    pub policy: &'a PolicySettings,
    pub max_completion_length: usize,
    pub pad: u32,
    pub learning_rate: f64,
    /// The step being taken (1-based), for errors.
    pub step: u64,
}

/// Trains `model` on `rollouts`; returns it updated with the step's statistics.
pub(super) fn update_policy<B, O>(
    mut model: Transformer<B>,
    optimizer: &mut O,
    reference: Option<&Transformer<B::InnerBackend>>,
    rollouts: &StepRollouts,
    settings: &UpdateSettings<'_>,
    device: &B::Device,
) -> Result<(Transformer<B>, UpdateStats), StageError>
where
    B: TrainBackend,
    O: Optimizer<Transformer<B>, B>,
{
    let policy = settings.policy;
    // Sequences, and the completion-token mask (column t scores token t + 1).
    let sequences: Vec<Vec<u32>> = rollouts
        .rows
        .iter()
        .zip(&rollouts.completions)
        .map(|(p, c)| p.iter().chain(&c.token_ids).copied().collect())
        .collect();
    let seq_len = sequences.iter().map(Vec::len).max().unwrap_or(2).max(2);
    let weights = next_token_weights(sequences.len(), seq_len, |r, token| {
        let prompt = rollouts.rows[r].len();
        let completion = rollouts.completions[r].token_ids.len();
        rollouts.trained(r, policy.mask_truncated_completions)
            && token >= prompt
            && token < prompt + completion
    });
    let cols = seq_len - 1;
    let mask_of = |range: std::ops::Range<usize>| {
        let data = weights[range.start * cols..range.end * cols].to_vec();
        Tensor::<B, 2>::from_data(TensorData::new(data, [range.len(), cols]), device)
    };
    let batch_of =
        |range: std::ops::Range<usize>| padded_rows(&sequences[range], seq_len, settings.pad);
    let micro = settings.training.batch_size;
    let checkpointing = settings.training.gradient_checkpointing;
    let chunks: Vec<std::ops::Range<usize>> = (0..sequences.len())
        .step_by(micro)
        .map(|s| s..(s + micro).min(sequences.len()))
        .collect();

    // Old-policy and reference log-probs, without gradients. With one iteration the old
    // policy is the current one, detached (as TRL does).
    let inner = model.valid();
    let mut old_logps = Vec::new();
    let mut ref_logps = Vec::new();
    for range in &chunks {
        let batch = batch_of(range.clone());
        if policy.num_iterations > 1 {
            old_logps.push(
                model::token_logprobs(&inner, &batch, device)
                    .map_err(failed)?
                    .logprobs,
            );
        }
        if let Some(reference) = reference {
            ref_logps.push(
                model::token_logprobs(reference, &batch, device)
                    .map_err(failed)?
                    .logprobs,
            );
        }
    }
    let loss_settings = LossSettings {
        epsilon_low: policy.epsilon,
        epsilon_high: policy.epsilon_high,
        beta: policy.beta,
        loss_type: policy.loss_type,
        max_completion_length: settings.max_completion_length,
        level: policy.importance_sampling_level,
    };
    let mut kl_sum = 0.0;
    let mut clip_sum = 0.0;
    let mut entropy_sum = 0.0;
    let mut loss_sum = 0.0;
    let mut grad_norm = 0.0;
    for _ in 0..policy.num_iterations {
        let loss_before = loss_sum;
        let mut accumulator = GradientsAccumulator::<Transformer<B>>::new();
        for (c, range) in chunks.iter().enumerate() {
            let batch = batch_of(range.clone());
            let mask = mask_of(range.clone());
            let old = old_logps.get(c).map(|old| Tensor::from_inner(old.clone()));
            let reference_logp = ref_logps.get(c).map(|r| Tensor::from_inner(r.clone()));
            let advantages = &rollouts.advantages[range.clone()];
            // Only the trained completion tokens go through the head.
            let scored: Vec<bool> = weights[range.start * cols..range.end * cols]
                .iter()
                .map(|w| *w > 0.0)
                .collect();
            let (grads, pass) = logprob_gradients(
                &model,
                &batch,
                device,
                true,
                checkpointing,
                Some(&scored),
                |logp| {
                    // Where no token is trained, `logp` may be 0 (the head skipped it):
                    // the old and reference log-probs take its value there, so the
                    // masked-out terms stay finite (a ratio of 1, a KL of 0).
                    let detached = logp.clone().detach();
                    let unscored = mask.clone().equal_elem(0.0);
                    let aligned =
                        |x: Tensor<B, 2>| x.mask_where(unscored.clone(), detached.clone());
                    let old = old.map_or_else(|| detached.clone(), aligned);
                    let reference_logp = reference_logp.map(aligned);
                    let result = policy_loss(
                        logp,
                        old,
                        reference_logp,
                        advantages,
                        mask.clone(),
                        loss_settings,
                    );
                    let loss = result.loss.div_scalar(chunks.len() as f64);
                    let value = f64::from(loss.clone().into_scalar().elem::<f32>());
                    (loss, (value, result.kl, result.clip_ratio))
                },
            )
            .map_err(failed)?;
            let (loss, kl, clip) = pass.value;
            if let Some(entropy) = &pass.entropy {
                let e: f64 = kernels::sum(entropy.clone() * mask.clone().inner())
                    .into_scalar()
                    .elem();
                entropy_sum += e;
            }
            loss_sum += loss;
            kl_sum += kl / chunks.len() as f64;
            clip_sum += clip / chunks.len() as f64;
            accumulator.accumulate(&model, grads);
        }
        (model, grad_norm) = apply_gradients(
            model,
            optimizer,
            accumulator.grads(),
            settings.training,
            settings.learning_rate,
            (settings.step, loss_sum - loss_before),
        )?;
    }
    let iterations = policy.num_iterations as f64;
    let tokens = weights.iter().filter(|w| **w > 0.0).count();
    let stats = UpdateStats {
        loss: loss_sum / iterations,
        kl: kl_sum / iterations,
        clip_ratio: clip_sum / iterations,
        entropy: entropy_sum / iterations / tokens.max(1) as f64,
        grad_norm,
    };
    Ok((model, stats))
}

/// `rows` right-padded to `seq` columns (every chunk of a step has the same width, so
/// its mask columns line up).
fn padded_rows(rows: &[Vec<u32>], seq: usize, pad: u32) -> TokenBatch {
    let mut ids = Vec::with_capacity(rows.len() * seq);
    let mut valid = Vec::with_capacity(rows.len() * seq);
    for row in rows {
        let n = row.len().min(seq);
        ids.extend_from_slice(&row[..n]);
        valid.extend(std::iter::repeat_n(true, n));
        ids.extend(std::iter::repeat_n(pad, seq - n));
        valid.extend(std::iter::repeat_n(false, seq - n));
    }
    TokenBatch {
        ids,
        valid,
        batch: rows.len(),
        seq,
    }
}
