//! Execute (training): the resumable state of a training stage — weights, optimizer
//! moments, step, the loss scale in f16, and the stage's own progress — written as
//! checkpoint files and read back so that a resumed run ends bit-identical to an
//! uninterrupted one on the CPU. A model with LoRA adapters checkpoints its adapters only:
//! its frozen base is the stage's input, which the stage's key pins and a resumed run
//! loads again.

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::loss_scale::LossScale;
use super::models::failed;
use crate::exec::{StageContext, StageError};
use crate::model::{RewardModel, Transformer};

pub(super) const STATE_FILE: &str = "state.json";
pub(super) const OPTIMIZER_FILE: &str = "optimizer.bin";

/// The layout of a checkpoint's weights and optimizer files. 2 since the model has adapter
/// slots (LoRA): burn's record writes a byte for each absent adapter, so a file of layout
/// 1 would be read with its bytes shifted. 3 since a model with adapters checkpoints them
/// alone ([`ADAPTERS_FILE`]). A checkpoint of another layout is not resumed.
pub(super) const CHECKPOINT_FORMAT: u32 = 3;

/// Progress of a training loop; `extra` holds what a stage kind adds (rollout logs …).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    /// Optimizer steps completed.
    pub step: u64,
    #[serde(default)]
    pub extra: serde_json::Value,
    /// `CHECKPOINT_FORMAT` of the binary that wrote it (1 when it was written before the
    /// field existed).
    #[serde(default = "first_format")]
    pub format: u32,
    /// The loss scaler's state, in a stage that trains in f16 (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
}

impl Default for LoopState {
    fn default() -> Self {
        Self {
            step: 0,
            extra: serde_json::Value::Null,
            format: CHECKPOINT_FORMAT,
            loss_scale: None,
        }
    }
}

fn first_format() -> u32 {
    1
}

/// Serialises an optimizer's state.
pub(super) fn optimizer_bytes<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(
    optimizer: &O,
) -> Result<Vec<u8>, StageError> {
    record_bytes::<B, _>(optimizer.to_record(), "optimizer state")
}

/// Restores an optimizer's state.
pub(super) fn load_optimizer<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(
    optimizer: O,
    bytes: Vec<u8>,
    device: &B::Device,
) -> Result<O, StageError> {
    Ok(optimizer.load_record(read_record::<B, _>(bytes, device, "optimizer state")?))
}

/// The loop state of the checkpoint the context resumes from, if any.
pub(super) fn resumed_state(context: &StageContext<'_>) -> Result<Option<LoopState>, StageError> {
    if context.resume_point().is_none() {
        return Ok(None);
    }
    let bytes = context.read_checkpoint(STATE_FILE)?;
    let state: LoopState =
        serde_json::from_slice(&bytes).map_err(|e| failed(format!("checkpoint state: {e}")))?;
    Ok(resumable(state))
}

/// `state`, when this binary can read the files of its checkpoint; otherwise (a checkpoint
/// written by an r1flow with another layout) nothing, and the stage trains from step 0 —
/// to the same bits an uninterrupted run gives, at the cost of the steps it had done.
fn resumable(state: LoopState) -> Option<LoopState> {
    if state.format == CHECKPOINT_FORMAT {
        return Some(state);
    }
    tracing::warn!(
        step = state.step,
        format = state.format,
        expected = CHECKPOINT_FORMAT,
        "the stage's checkpoint was written by an r1flow whose checkpoint layout this one \
         cannot read: training starts again from step 0 (the result is the same)"
    );
    None
}

/// At a checkpoint point — every `save_steps` steps, or when the run was cancelled, but
/// not after the last step, whose outputs are written instead — saves the weights, the
/// optimizer state, the stage's `extra` files and the loop state; a cancelled run then
/// stops with `Cancelled`. The training loop (`training_loop`) calls it once per step.
pub(super) fn checkpoint_if_due<B, M, O>(
    context: &mut StageContext<'_>,
    model: &M,
    optimizer: &O,
    state: &LoopState,
    (total, save_steps): (u64, u64),
    extra: impl FnOnce() -> Result<Vec<(String, Vec<u8>)>, StageError>,
) -> Result<(), StageError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + CheckpointedWeights<B>,
    O: Optimizer<M, B>,
{
    let cancelled = context.cancelled();
    if state.step >= total || !(cancelled || state.step.is_multiple_of(save_steps)) {
        return Ok(());
    }
    let mut files = vec![
        model.checkpoint_weights()?,
        (
            OPTIMIZER_FILE.to_string(),
            optimizer_bytes::<B, M, _>(optimizer)?,
        ),
    ];
    files.extend(extra()?);
    files.push((STATE_FILE.to_string(), state_bytes(state)?));
    context.save_checkpoint(state.step, files)?;
    if cancelled {
        return Err(StageError::Cancelled { step: state.step });
    }
    Ok(())
}

pub(super) fn state_bytes(state: &LoopState) -> Result<Vec<u8>, StageError> {
    serde_json::to_vec(state).map_err(|e| failed(format!("checkpoint state: {e}")))
}

/// Checkpoint file of the weights, as a burn record: it keeps each parameter's id, which
/// the optimizer's state is keyed by.
pub(super) const WEIGHTS_FILE: &str = "weights.bin";

/// Checkpoint file of a model with LoRA adapters: the adapters' record alone
/// ([`LoraAdapters`]), with the parameter ids the optimizer's state is keyed by.
pub(super) const ADAPTERS_FILE: &str = "adapters.bin";

/// What a checkpoint keeps of the model a loop trains, and how a resumed run puts it back
/// into the model it built from the stage's inputs: the whole record by default.
pub(super) trait CheckpointedWeights<B: Backend>: Module<B> {
    /// The checkpoint file (name, bytes) of this model's trained values.
    fn checkpoint_weights(&self) -> Result<(String, Vec<u8>), StageError> {
        whole_record(self)
    }

    /// This model with the values of the checkpoint the context resumes from.
    fn restore_weights(
        self,
        context: &StageContext<'_>,
        device: &B::Device,
    ) -> Result<Self, StageError> {
        restore_whole_record(self, context, device)
    }
}

/// The whole record of `module` as its checkpoint file.
fn whole_record<B: Backend, M: Module<B>>(module: &M) -> Result<(String, Vec<u8>), StageError> {
    Ok((WEIGHTS_FILE.to_string(), module_bytes(module)?))
}

/// `module` with the whole record of the checkpoint the context resumes from.
fn restore_whole_record<B: Backend, M: Module<B>>(
    module: M,
    context: &StageContext<'_>,
    device: &B::Device,
) -> Result<M, StageError> {
    load_module(module, context.read_checkpoint(WEIGHTS_FILE)?, device)
}

impl<B: Backend> CheckpointedWeights<B> for RewardModel<B> {}

/// A model with adapters keeps its adapters only: at 0.5B the frozen base is about 2 GB
/// that the stage's input already holds, against a few MB of adapters. Without adapters,
/// the whole record.
impl<B: Backend> CheckpointedWeights<B> for Transformer<B> {
    fn checkpoint_weights(&self) -> Result<(String, Vec<u8>), StageError> {
        if !self.has_lora() {
            return whole_record(self);
        }
        Ok((
            ADAPTERS_FILE.to_string(),
            module_bytes(&self.adapter_set())?,
        ))
    }

    fn restore_weights(
        self,
        context: &StageContext<'_>,
        device: &B::Device,
    ) -> Result<Self, StageError> {
        if !self.has_lora() {
            return restore_whole_record(self, context, device);
        }
        let set = load_module(
            self.adapter_set(),
            context.read_checkpoint(ADAPTERS_FILE)?,
            device,
        )?;
        self.with_adapter_set(set)
            .map_err(|e| failed(format!("resuming the adapters: {e}")))
    }
}

/// Serialises a module's record (values and parameter ids).
pub(super) fn module_bytes<B: Backend, M: Module<B>>(module: &M) -> Result<Vec<u8>, StageError> {
    record_bytes::<B, _>(module.clone().into_record(), "weights")
}

/// Loads a record written by [`module_bytes`] into `module` (same architecture).
pub(super) fn load_module<B: Backend, M: Module<B>>(
    module: M,
    bytes: Vec<u8>,
    device: &B::Device,
) -> Result<M, StageError> {
    Ok(module.load_record(read_record::<B, _>(bytes, device, "weights")?))
}

/// How a checkpoint's records (weights, optimizer state) are written: burn's binary
/// records at full precision, the one encoding [`record_bytes`] and [`read_record`] share.
type CheckpointRecorder = BinBytesRecorder<FullPrecisionSettings>;

/// `record` as checkpoint bytes; `what` names it in the error.
fn record_bytes<B: Backend, R: Record<B>>(record: R, what: &str) -> Result<Vec<u8>, StageError> {
    CheckpointRecorder::default()
        .record(record, ())
        .map_err(|e| failed(format!("saving {what}: {e}")))
}

/// A record written by [`record_bytes`]; `what` names it in the error.
fn read_record<B: Backend, R: Record<B>>(
    bytes: Vec<u8>,
    device: &B::Device,
    what: &str,
) -> Result<R, StageError> {
    CheckpointRecorder::default()
        .load(bytes, device)
        .map_err(|e| failed(format!("loading {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CpuBackend, LoraConfig, LoraTarget, ModelConfig, Preset};
    use burn::backend::Autodiff;
    use burn::tensor::Tensor;

    type A = Autodiff<CpuBackend>;

    fn values<const D: usize>(tensor: Tensor<A, D>) -> Vec<f32> {
        tensor.into_data().to_vec().expect("f32 values")
    }

    /// A LoRA model's checkpoint is its adapters alone — a small file — and reading it
    /// back into the model a resumed run builds (the same base, fresh adapters) gives the
    /// checkpointed adapters, with the parameter ids the optimizer's state is keyed by, and
    /// leaves the base as it was.
    #[test]
    fn a_model_with_adapters_checkpoints_them_alone_and_gets_them_back() {
        let device = Default::default();
        let config = ModelConfig {
            num_hidden_layers: 2,
            ..Preset::Tiny.config()
        };
        let base = Transformer::<A>::init(&config, 5, &device).expect("model");
        let lora = LoraConfig {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
        };
        let targets = [LoraTarget::QProj, LoraTarget::DownProj];
        let adapted = |seed| {
            base.clone()
                .with_lora(&lora, &targets, seed, &device)
                .expect("adapters")
        };
        let (trained, fresh) = (adapted(1), adapted(2));

        let (name, bytes) = trained.checkpoint_weights().expect("checkpoint");
        assert_eq!(name, ADAPTERS_FILE);
        let (full_name, full) = base.checkpoint_weights().expect("checkpoint");
        assert_eq!(full_name, WEIGHTS_FILE);
        assert!(
            bytes.len() * 10 < full.len(),
            "adapters {} bytes against the whole model's {}",
            bytes.len(),
            full.len()
        );

        let set = load_module(fresh.adapter_set(), bytes, &device).expect("read back");
        let restored = fresh.with_adapter_set(set).expect("same shapes");
        assert_eq!(restored.lora_adapters().count(), 2 * targets.len());
        for ((_, _, got), (_, _, want)) in restored.lora_adapters().zip(trained.lora_adapters()) {
            assert_eq!(got.a.id, want.a.id);
            assert_eq!(got.b.id, want.b.id);
            assert_eq!(values(got.a.val()), values(want.a.val()));
            assert_eq!(values(got.b.val()), values(want.b.val()));
            assert!(got.a.val().is_require_grad(), "the adapters stay trainable");
        }
        let weight = |m: &Transformer<A>| values(m.layers[0].self_attn.q_proj.weight.val());
        assert_eq!(weight(&restored), weight(&base));

        // A set of the wrong shape is refused, naming the adapter.
        let other = LoraConfig { r: 2, ..lora };
        let wrong = base
            .clone()
            .with_lora(&other, &targets, 1, &device)
            .expect("adapters")
            .adapter_set();
        let refused = adapted(3).with_adapter_set(wrong).expect_err("other rank");
        assert!(refused.to_string().contains("q_proj"), "{refused}");
    }

    /// A checkpoint written before the layout was recorded is not read back (its weights
    /// would be read shifted); one of this layout is.
    #[test]
    fn only_a_checkpoint_of_this_layout_is_resumed() {
        let old: LoopState = serde_json::from_str(r#"{"step": 40, "extra": null}"#).expect("json");
        assert_eq!(old.format, 1);
        assert!(resumable(old).is_none());
        let written = serde_json::to_string(&LoopState {
            step: 40,
            ..LoopState::default()
        })
        .expect("json");
        let current: LoopState = serde_json::from_str(&written).expect("json");
        assert_eq!(resumable(current).map(|s| s.step), Some(40));
    }

    /// An f16 stage's loss scale comes back from its checkpoint as it was saved; an f32
    /// stage's state is written without the field, as before it existed.
    #[test]
    fn the_loss_scale_is_checkpointed_only_where_there_is_one() {
        let plain =
            String::from_utf8(state_bytes(&LoopState::default()).expect("json")).expect("utf-8");
        assert!(!plain.contains("loss_scale"), "{plain}");
        let scale = LossScale {
            scale: 4096.0,
            good_steps: 12,
            skipped: 4,
        };
        let saved = state_bytes(&LoopState {
            step: 16,
            loss_scale: Some(scale),
            ..LoopState::default()
        })
        .expect("json");
        let back: LoopState = serde_json::from_slice(&saved).expect("json");
        assert_eq!(resumable(back).and_then(|s| s.loss_scale), Some(scale));
    }
}
