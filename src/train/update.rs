//! Execute (training): one optimizer update from accumulated gradients — global
//! gradient-norm clipping as PyTorch's `clip_grad_norm_`, then AdamW at the scheduled
//! learning rate. Applied by the training loop's `accumulated_step` and by GRPO's
//! `policy_update` (once per iteration), so no kind applies a step its own way.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};

use super::clip::{clip_global_norm, unscale_and_clip};
use super::loss_scale;
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
/// In f16 (a loss scaler installed: `loss_scale`) the gradients are divided by the scale
/// first, and a gradient norm that is not finite is an f16 overflow: the step is skipped
/// (the model returned as it was) and the scale halved.
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
    let Some(mut scaler) = loss_scale::current() else {
        let grad_norm = clip_global_norm(&model, &mut grads, hyper.max_grad_norm);
        if !grad_norm.is_finite() {
            return Err(diverged("the gradient norm", grad_norm, step, hyper));
        }
        return Ok((optimizer.step(lr, model, grads), grad_norm));
    };
    // f16: the gradients are the scaled loss's. One that overflowed skips the step.
    let grad_norm = unscale_and_clip(&model, &mut grads, hyper.max_grad_norm, scaler.scale);
    let applied = scaler.update(grad_norm.is_finite())?;
    loss_scale::set(scaler);
    if !applied {
        tracing::debug!(
            step,
            scale = scaler.scale,
            "f16 gradients overflowed: step skipped"
        );
        return Ok((model, grad_norm));
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

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::AdamWConfig;
    use burn::tensor::{Tensor, TensorData};

    use super::super::loss_scale::{self, LossScale};
    use super::super::training_loop::AdamW;
    use super::*;
    use crate::manifest::{Dtype, LrScheduler};
    use crate::model::CpuBackend;
    use crate::stages::TrainingLength;

    type A = Autodiff<CpuBackend>;

    fn settings() -> TrainingSettings {
        TrainingSettings {
            learning_rate: 1e-2,
            scheduler: LrScheduler::Constant,
            warmup_ratio: 0.0,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            max_grad_norm: 1.0,
            batch_size: 2,
            accumulation: 1,
            length: TrainingLength::MaxSteps(2),
            logging_steps: 1,
            save_steps: 1,
            gradient_checkpointing: false,
            lora: None,
        }
    }

    /// The gradients of `scale · Σ (x·W)²` for a fixed `x`.
    fn grads(model: &Linear<A>, scale: f32) -> GradientsParams {
        let x = Tensor::<A, 2>::from_data(
            TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75], [2, 3]),
            &Default::default(),
        );
        let y = model.forward(x);
        let loss = (y.clone() * y).sum().mul_scalar(scale);
        GradientsParams::from_grads(loss.backward(), model)
    }

    fn weights(model: &Linear<A>) -> Vec<f32> {
        model.weight.val().into_data().to_vec().expect("f32")
    }

    /// With a loss scaler (as in f16): gradients that overflowed skip the step — the
    /// weights as they were, the scale halved — and the stage goes on; gradients scaled by
    /// the scale give, once divided again, exactly the step unscaled gradients give (the
    /// scales are powers of two), and the clipped norm is the unscaled one.
    #[test]
    fn an_overflow_skips_the_step_and_scaled_gradients_step_as_unscaled_ones() {
        let mut model: Linear<A> = LinearConfig::new(3, 2)
            .with_bias(false)
            .init(&Default::default());
        // Set, not lazily drawn: each clone of a lazy parameter would draw its own.
        model.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.3f32, -0.2, 0.7, 0.1, -0.5, 0.4], [3, 2]),
            &Default::default(),
        ));
        let hyper = settings();
        let mut plain: AdamW<A, Linear<A>> = AdamWConfig::new().init();
        let (want, want_norm) = apply_gradients(
            model.clone(),
            &mut plain,
            grads(&model, 1.0),
            &hyper,
            1e-2,
            (1, 0.5),
        )
        .expect("a step");
        assert!(want_norm > hyper.max_grad_norm, "clipped: {want_norm}");

        let _scaler = loss_scale::scoped(Dtype::F16, None);
        let mut optimizer: AdamW<A, Linear<A>> = AdamWConfig::new().init();
        let overflowed = grads(&model, f32::INFINITY);
        let (same, norm) = apply_gradients(
            model.clone(),
            &mut optimizer,
            overflowed,
            &hyper,
            1e-2,
            (1, 0.5),
        )
        .expect("skipped, not failed");
        assert!(!norm.is_finite());
        assert_eq!(weights(&same), weights(&model));
        let halved = LossScale {
            scale: 32768.0,
            good_steps: 0,
            skipped: 1,
        };
        assert_eq!(loss_scale::current(), Some(halved));

        let scaled = grads(&model, 32768.0);
        let (got, got_norm) =
            apply_gradients(same, &mut optimizer, scaled, &hyper, 1e-2, (2, 0.5)).expect("a step");
        assert_eq!(got_norm, want_norm);
        assert_eq!(weights(&got), weights(&want));
        assert_eq!(loss_scale::current().map(|s| s.good_steps), Some(1));
    }
}
