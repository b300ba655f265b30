//! Execute (training): the resumable state of a training stage — weights, optimizer
//! moments, step, and the stage's own progress — written as checkpoint files and read back
//! so that a resumed run ends bit-identical to an uninterrupted one on the CPU.

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::models::failed;
use crate::exec::{StageContext, StageError};

pub(super) const STATE_FILE: &str = "state.json";
pub(super) const OPTIMIZER_FILE: &str = "optimizer.bin";

/// Progress of a training loop; `extra` holds what a stage kind adds (rollout logs …).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoopState {
    /// Optimizer steps completed.
    pub step: u64,
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// Serialises an optimizer's state.
pub(super) fn optimizer_bytes<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(
    optimizer: &O,
) -> Result<Vec<u8>, StageError> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(optimizer.to_record(), ())
        .map_err(|e| failed(format!("saving optimizer state: {e}")))
}

/// Restores an optimizer's state.
pub(super) fn load_optimizer<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(
    optimizer: O,
    bytes: Vec<u8>,
    device: &B::Device,
) -> Result<O, StageError> {
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, device)
        .map_err(|e| failed(format!("loading optimizer state: {e}")))?;
    Ok(optimizer.load_record(record))
}

/// The loop state of the checkpoint the context resumes from, if any.
pub(super) fn resumed_state(context: &StageContext<'_>) -> Result<Option<LoopState>, StageError> {
    if context.resume_point().is_none() {
        return Ok(None);
    }
    let bytes = context.read_checkpoint(STATE_FILE)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| failed(format!("checkpoint state: {e}")))
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
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let cancelled = context.cancelled();
    if state.step >= total || !(cancelled || state.step.is_multiple_of(save_steps)) {
        return Ok(());
    }
    let mut files = vec![
        (WEIGHTS_FILE.to_string(), module_bytes::<B, _>(model)?),
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

/// Serialises a module's record (values and parameter ids).
pub(super) fn module_bytes<B: Backend, M: Module<B>>(module: &M) -> Result<Vec<u8>, StageError> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(module.clone().into_record(), ())
        .map_err(|e| failed(format!("saving weights: {e}")))
}

/// Loads a record written by [`module_bytes`] into `module` (same architecture).
pub(super) fn load_module<B: Backend, M: Module<B>>(
    module: M,
    bytes: Vec<u8>,
    device: &B::Device,
) -> Result<M, StageError> {
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, device)
        .map_err(|e| failed(format!("loading weights: {e}")))?;
    Ok(module.load_record(record))
}
