//! Execute (every training loop): one optimizer update from accumulated gradients —
//! global gradient-norm clipping as PyTorch's `clip_grad_norm_`, then AdamW at the
//! scheduled learning rate. Shared by `supervised`, `grpo` and `reward_model`, so the
//! loops cannot drift apart in how a step is applied.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;

use super::clip::clip_global_norm;
use super::schedule::learning_rate;
use crate::stages::TrainingSettings;

/// The learning rate of step `step` (0-based) of `total`, after warm-up and schedule.
pub fn learning_rate_at(training: &TrainingSettings, step: u64, total: u64) -> f64 {
    learning_rate(
        training.learning_rate,
        training.scheduler,
        training.warmup_ratio,
        step,
        total,
    )
}

/// Clips `grads` to `hyper.max_grad_norm` (global norm) and takes an optimizer step at
/// `lr`; returns the updated model and the gradient norm before clipping.
pub fn apply_gradients<B, M, O>(
    model: M,
    optimizer: &mut O,
    mut grads: GradientsParams,
    hyper: &TrainingSettings,
    lr: f64,
) -> (M, f64)
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let grad_norm = clip_global_norm(&model, &mut grads, hyper.max_grad_norm);
    (optimizer.step(lr, model, grads), grad_norm)
}
