//! Execute (training): dynamic loss scaling for `dtype: f16`, as `torch.amp.GradScaler`
//! does it. f16's smallest normal number is 6e-5: gradients of 1e-6 or less, common in
//! the products of a backward pass, would flush to zero in its matrix products. So the
//! loss is multiplied by a large scale before its backward pass (every gradient with it),
//! and the gradients divided by it again before clipping and the optimizer. A scale that
//! overflows f16 (65504) makes some gradient infinite or NaN: that step is skipped (the
//! weights and AdamW's moments untouched) and the scale halved; after
//! [`GROWTH_INTERVAL`] good steps in a row it doubles, to stay as large as f16 allows.
//!
//! The scaler's state is the running stage's, on its thread (as the compute precision,
//! `model::kernels::precision`): the training loop installs it when the stage computes in
//! f16 ([`scoped`]) and saves it in each checkpoint's loop state, so a resumed run scales
//! as an uninterrupted one; the loss sites backward through [`backward`], and
//! `update::apply_gradients` unscales, skips and updates. In f32 and bf16 (f32's exponent
//! range) nothing is installed, and nothing is scaled: those paths' bits do not change.

use std::cell::Cell;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::exec::StageError;
use crate::manifest::Dtype;

/// The first scale: 2^16, as torch's.
pub const INITIAL_SCALE: f64 = 65536.0;
/// Good steps in a row after which the scale doubles: torch's default.
pub const GROWTH_INTERVAL: u64 = 2000;

/// Where the scaler stands; saved in checkpoints. Scales are powers of two, written and
/// read back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// What the loss is multiplied by before its backward pass.
    pub scale: f64,
    /// Steps applied since the scale last changed.
    pub good_steps: u64,
    /// Steps skipped for an overflow, since the stage started.
    pub skipped: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        Self {
            scale: INITIAL_SCALE,
            good_steps: 0,
            skipped: 0,
        }
    }
}

impl LossScale {
    /// After a step's gradients were unscaled: `finite` says whether they all were.
    /// Returns whether the step is applied. A scale that would fall below 1 means the
    /// gradients overflow f16 unscaled: that is an error, not a step to skip forever.
    pub fn update(&mut self, finite: bool) -> Result<bool, StageError> {
        if finite {
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
            return Ok(true);
        }
        self.good_steps = 0;
        self.skipped += 1;
        self.scale *= 0.5;
        if self.scale < 1.0 {
            return Err(StageError::Failed(
                "training in f16 overflowed: the gradients are infinite or NaN even without \
                 loss scaling; train in `dtype: f32` (or `bf16` on cuda), or lower \
                 `learning_rate`"
                    .to_string(),
            ));
        }
        Ok(false)
    }
}

thread_local! {
    static SCALER: Cell<Option<LossScale>> = const { Cell::new(None) };
}

/// The running stage's scaler, when it computes in f16.
pub fn current() -> Option<LossScale> {
    SCALER.with(Cell::get)
}

/// Replaces the running stage's scaler state (after a step's update).
pub(super) fn set(scale: LossScale) {
    SCALER.with(|s| s.set(Some(scale)));
}

/// Installs a scaler on this thread for as long as the guard lives, when `dtype` is f16:
/// `resumed` (a checkpoint's) or a fresh one. In another precision, none.
#[must_use = "the scaler is installed until the guard is dropped"]
pub(super) fn scoped(dtype: Dtype, resumed: Option<LossScale>) -> ScalerGuard {
    let scaler = (dtype == Dtype::F16).then(|| resumed.unwrap_or_default());
    ScalerGuard {
        previous: SCALER.with(|s| s.replace(scaler)),
    }
}

/// Restores the thread's previous scaler when dropped (see [`scoped`]).
pub(super) struct ScalerGuard {
    previous: Option<LossScale>,
}

impl Drop for ScalerGuard {
    fn drop(&mut self) {
        SCALER.with(|s| s.set(self.previous));
    }
}

/// The gradients of `loss`, scaled by the running scaler if there is one (the loss sites'
/// backward pass: `update::apply_gradients` divides the scale out again).
pub(super) fn backward<B: AutodiffBackend, const D: usize>(loss: Tensor<B, D>) -> B::Gradients {
    match current() {
        None => loss.backward(),
        Some(s) => loss.mul_scalar(s.scale).backward(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overflow skips the step and halves the scale; `GROWTH_INTERVAL` good steps in a
    /// row double it; the count restarts at each change.
    #[test]
    fn overflows_halve_the_scale_and_good_runs_double_it() {
        let mut s = LossScale::default();
        assert_eq!(s.update(false).ok(), Some(false));
        assert_eq!((s.scale, s.good_steps, s.skipped), (32768.0, 0, 1));
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert_eq!(s.update(true).ok(), Some(true));
        }
        assert_eq!((s.scale, s.good_steps), (32768.0, GROWTH_INTERVAL - 1));
        assert_eq!(s.update(true).ok(), Some(true));
        assert_eq!((s.scale, s.good_steps, s.skipped), (65536.0, 0, 1));
        s.update(true).ok();
        s.update(false).ok();
        assert_eq!((s.scale, s.good_steps, s.skipped), (32768.0, 0, 2));
    }

    /// Gradients that overflow at every scale fail the stage once the scale would fall
    /// below 1, after 16 skipped steps from 2^16.
    #[test]
    fn gradients_that_overflow_unscaled_fail_the_stage() {
        let mut s = LossScale::default();
        for _ in 0..16 {
            assert_eq!(s.update(false).ok(), Some(false));
        }
        assert_eq!(s.scale, 1.0);
        let err = s.update(false).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .unwrap_or("")
                .contains("even without loss scaling"),
            "{err:?}"
        );
    }

    /// The state round-trips through a checkpoint's JSON exactly.
    #[test]
    fn the_state_is_saved_exactly() {
        let s = LossScale {
            scale: 2f64.powi(-3) * 65536.0,
            good_steps: 17,
            skipped: 4,
        };
        let back: LossScale =
            serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("json");
        assert_eq!(back, s);
    }

    /// A scaler is installed for f16 only, and the previous one comes back.
    #[test]
    fn only_f16_installs_a_scaler() {
        assert_eq!(current(), None);
        {
            let _bf16 = scoped(Dtype::Bf16, None);
            assert_eq!(current(), None);
            let resumed = LossScale {
                scale: 1024.0,
                ..LossScale::default()
            };
            let _f16 = scoped(Dtype::F16, Some(resumed));
            assert_eq!(current(), Some(resumed));
        }
        assert_eq!(current(), None);
    }
}
