//! Execute (training): one optimizer update from accumulated gradients — global
//! gradient-norm clipping as PyTorch's `clip_grad_norm_`, then AdamW at the scheduled
//! learning rate. Applied by the training loop's `accumulated_step` and by GRPO's
//! `policy_update` (once per iteration), so no kind applies a step its own way.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};

use super::clip::clip_global_norm;
use super::schedule::learning_rate;
use crate::exec::StageError;
use crate::model::TrainBackend;
use crate::stages::TrainingSettings;

/// The learning rate of step `step` (0-based) of `total`, after warm-up and schedule.
pub(super) fn learning_rate_at(training: &TrainingSettings, step: u64, total: u64) -> f64 {
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
///
/// `loss` is the loss of step `step` (1-based) whose gradients these are. A loss or a
/// gradient norm that is not finite means training diverged: every later step would be
/// NaN, and the weights with it. The stage fails here, saying where and what to change,
/// instead of storing NaN weights and metrics.
pub(super) fn apply_gradients<B, M, O>(
    model: M,
    optimizer: &mut O,
    mut grads: GradientsParams,
    hyper: &TrainingSettings,
    lr: f64,
    (step, loss): (u64, f64),
) -> Result<(M, f64), StageError>
where
    B: TrainBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    if !loss.is_finite() {
        return Err(diverged("the loss", loss, step, hyper));
    }
    let grad_norm = clip_global_norm(&model, &mut grads, hyper.max_grad_norm);
    if !grad_norm.is_finite() {
        return Err(diverged("the gradient norm", grad_norm, step, hyper));
    }
    Ok((optimizer.step(lr, model, grads), grad_norm))
}

fn diverged(what: &str, value: f64, step: u64, hyper: &TrainingSettings) -> StageError {
    let value = if value.is_nan() { "NaN" } else { "infinite" };
    let rate = hyper.learning_rate;
    // As a manifest writes it: 1e30 and 1e-5, not thirty zeros.
    let rate = if rate != 0.0 && !(1e-3..1e6).contains(&rate.abs()) {
        format!("{rate:e}")
    } else {
        format!("{rate}")
    };
    StageError::Failed(format!(
        "training diverged: {what} became {value} at step {step} (learning_rate {rate}); lower \
         `learning_rate`, or clip gradients with `max_grad_norm`"
    ))
}
