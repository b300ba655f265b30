//! Execute (training): the one training loop behind every training kind — AdamW from the
//! stage's settings, resume from the last checkpoint, then for each step the kind's update
//! at the scheduled learning rate, metrics logged every `logging_steps`, the progress line,
//! and a checkpoint every `save_steps` and on Ctrl-C; in f16, the loss scaler around it. A kind supplies only a [`Learner`]:
//! how one step trains (its batches and loss, or its rollouts), what it reports, and what
//! it adds to a checkpoint. Supervised training (`pretrain`, `sft`, `distill`), the reward
//! model and GRPO (`grpo`, `rlhf`) all run here, so they cannot drift apart in how a step
//! is scheduled, logged, checkpointed or resumed.

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};

use super::loss_scale;
use super::state::{
    checkpoint_if_due, load_optimizer, resumed_state, CheckpointedWeights, LoopState,
    OPTIMIZER_FILE,
};
use super::update::{apply_gradients, learning_rate_at};
use crate::exec::{StageContext, StageError};
use crate::metric_names as names;
use crate::model::kernels::precision;
use crate::model::TrainBackend;
use crate::stages::TrainingSettings;

/// The optimizer of every training kind: AdamW with the stage's betas and weight decay.
pub(super) type AdamW<B, M> = OptimizerAdaptor<burn::optim::AdamW, M, B>;

/// Where the loop stands when it asks for a step.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepAt {
    /// Steps completed before this one (0-based index of this step).
    pub step: u64,
    /// The scheduled learning rate of this step.
    pub learning_rate: f64,
}

/// What one step reports to the loop.
#[derive(Debug, Default)]
pub(super) struct StepReport {
    /// Metrics logged as their mean over the steps since the last logged point (the loss,
    /// as transformers' trainer logs it).
    pub averaged: Vec<(&'static str, f64)>,
    /// Metrics logged as this step's own values; a value that is not finite (a mean over
    /// no samples) is left out of the point.
    pub latest: BTreeMap<String, f64>,
    /// The progress line's message.
    pub progress: String,
    /// The kind's loop state after this step (`LoopState::extra`), where it has one.
    pub extra: Option<serde_json::Value>,
}

impl StepReport {
    /// The report of a step that minimised `loss` with one optimizer update: the loss
    /// averaged between logged points, the learning rate and the gradient norm (before
    /// clipping) as they were at the logged step.
    pub(super) fn of_update(loss: f64, grad_norm: f64, at: StepAt) -> Self {
        Self {
            averaged: vec![(names::LOSS, loss)],
            latest: BTreeMap::from([
                (names::LEARNING_RATE.to_string(), at.learning_rate),
                (names::GRAD_NORM.to_string(), grad_norm),
            ]),
            progress: format!("loss {loss:.4}"),
            extra: None,
        }
    }
}

/// What a training kind supplies to the loop.
pub(super) trait Learner<B: TrainBackend> {
    /// The module trained (and what its checkpoints keep of it).
    type Model: AutodiffModule<B> + CheckpointedWeights<B>;

    /// Restores what the kind keeps beside the weights and the optimizer, from the
    /// checkpoint the run resumes (its `extra` state and files).
    fn resume(&mut self, context: &StageContext<'_>, state: &LoopState) -> Result<(), StageError> {
        let _ = (context, state);
        Ok(())
    }

    /// Before the first step of a run that did not resume (a baseline to log at step 0).
    fn before_training(
        &mut self,
        context: &StageContext<'_>,
        model: &Self::Model,
    ) -> Result<(), StageError> {
        let _ = (context, model);
        Ok(())
    }

    /// Takes step `at.step + 1`: computes the gradients and applies them through
    /// `optimizer` (once, or once per iteration over the same data).
    fn step(
        &mut self,
        model: Self::Model,
        optimizer: &mut AdamW<B, Self::Model>,
        at: StepAt,
    ) -> Result<(Self::Model, StepReport), StageError>;

    /// Metrics of the trained model, logged with the last step's point.
    fn final_metrics(&mut self, model: &Self::Model) -> Result<BTreeMap<String, f64>, StageError> {
        let _ = model;
        Ok(BTreeMap::new())
    }

    /// Files the kind adds to a checkpoint, beside the weights, the optimizer and the
    /// loop state.
    fn checkpoint_files(&self) -> Result<Vec<(String, Vec<u8>)>, StageError> {
        Ok(Vec::new())
    }
}

/// Trains `model` for `total` steps with `learner`, resuming from the stage's last
/// checkpoint if it has one; returns the trained model (the optimizer is dropped before
/// the caller serialises the weights).
pub(super) fn train<B, L>(
    context: &mut StageContext<'_>,
    mut model: L::Model,
    learner: &mut L,
    training: &TrainingSettings,
    total: u64,
    device: &B::Device,
) -> Result<L::Model, StageError>
where
    B: TrainBackend,
    L: Learner<B>,
{
    let mut optimizer: AdamW<B, L::Model> = AdamWConfig::new()
        .with_beta_1(training.adam_beta1 as f32)
        .with_beta_2(training.adam_beta2 as f32)
        .with_weight_decay(training.weight_decay as f32)
        .init();
    let mut state = LoopState::default();
    if let Some(resumed) = resumed_state(context)? {
        learner.resume(context, &resumed)?;
        model = model.restore_weights(context, device)?;
        optimizer = load_optimizer(optimizer, context.read_checkpoint(OPTIMIZER_FILE)?, device)?;
        state = resumed;
    }
    // In f16, the loss scaler (a checkpoint's, when resuming): see `loss_scale`.
    let _scaler = loss_scale::scoped(precision::compute_dtype(), state.loss_scale);
    if state.step == 0 {
        learner.before_training(context, &model)?;
    }
    let mut window: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    while state.step < total {
        let at = StepAt {
            step: state.step,
            learning_rate: learning_rate_at(training, state.step, total),
        };
        let report;
        (model, report) = learner.step(model, &mut optimizer, at)?;
        state.step += 1;
        if let Some(extra) = report.extra {
            state.extra = extra;
        }
        for (name, value) in report.averaged {
            window.entry(name).or_default().push(value);
        }
        if state.step % training.logging_steps == 0 || state.step == total {
            let mut metrics: BTreeMap<String, f64> = window
                .iter()
                .map(|(name, values)| {
                    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
                    (name.to_string(), mean)
                })
                .collect();
            window.clear();
            metrics.extend(report.latest);
            if let Some(scaler) = loss_scale::current() {
                metrics.insert(names::LOSS_SCALE.to_string(), scaler.scale);
                metrics.insert(names::SKIPPED_STEPS.to_string(), scaler.skipped as f64);
            }
            if state.step == total {
                metrics.extend(learner.final_metrics(&model)?);
            }
            // JSON, where the store keeps the point, has no spelling for NaN.
            metrics.retain(|_, value| value.is_finite());
            context.log_metrics(state.step, metrics)?;
        }
        context.progress(state.step, total, &report.progress);
        state.loss_scale = loss_scale::current();
        checkpoint_if_due(
            context,
            &model,
            &optimizer,
            &state,
            (total, training.save_steps),
            || learner.checkpoint_files(),
        )?;
    }
    Ok(model)
}

/// One optimizer step over `training.accumulation` micro-batches: `micro(model, index)`
/// gives the gradients and loss of micro-batch `index` (counted over the whole run, so
/// the data order is a function of the step), already scaled by `1 / accumulation`.
/// Returns the updated model, the step's loss and the gradient norm before clipping.
pub(super) fn accumulated_step<B, M>(
    model: M,
    optimizer: &mut AdamW<B, M>,
    training: &TrainingSettings,
    at: StepAt,
    mut micro: impl FnMut(&M, u64) -> Result<(GradientsParams, f64), StageError>,
) -> Result<(M, f64, f64), StageError>
where
    B: TrainBackend,
    M: AutodiffModule<B>,
{
    let accumulation = training.accumulation as u64;
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut loss = 0.0;
    for index in 0..accumulation {
        let (grads, value) = micro(&model, at.step * accumulation + index)?;
        loss += value;
        accumulator.accumulate(&model, grads);
    }
    let (model, grad_norm) = apply_gradients(
        model,
        optimizer,
        accumulator.grads(),
        training,
        at.learning_rate,
        (at.step + 1, loss),
    )?;
    Ok((model, loss, grad_norm))
}
