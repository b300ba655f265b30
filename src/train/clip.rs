//! Execute (training): global gradient-norm clipping, as PyTorch's `clip_grad_norm_` does
//! it — one norm over every parameter's gradient, every gradient scaled by the same factor
//! (in f16, the loss scale divided out by that factor too).
//! burn's built-in clipping works per parameter tensor, which is not the same.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::model::kernels;
use crate::model::TrainBackend;

/// Each gradient's sum of squares, `[1]` on the device, in the model's parameter order:
/// read back in one transfer (a read per parameter would stall a GPU's queue hundreds of
/// times a step).
struct SquaredNorms<'g, B: TrainBackend> {
    grads: &'g GradientsParams,
    sums: Vec<Tensor<B::InnerBackend, 1>>,
}

impl<B: TrainBackend> ModuleVisitor<B> for SquaredNorms<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.sums.push(kernels::sum(grad.clone() * grad));
        }
    }
}

struct Scale<'g> {
    grads: &'g mut GradientsParams,
    factor: f64,
}

impl<B: TrainBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (0 disables it);
/// returns the norm before clipping.
pub fn clip_global_norm<B: TrainBackend, M: Module<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    unscale_and_clip(model, grads, max_norm, 1.0)
}

/// [`clip_global_norm`] of gradients computed from a loss multiplied by `loss_scale`
/// (`dtype: f16`): the scale divided out of the norm, and out of the gradients in the
/// same multiplication as the clipping factor. A norm that is not finite (an overflow)
/// is returned without touching the gradients. A scale of 1 changes no bit: dividing by
/// it is exact.
pub fn unscale_and_clip<B: TrainBackend, M: Module<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    loss_scale: f64,
) -> f64 {
    let mut norms = SquaredNorms::<B> {
        grads,
        sums: Vec::new(),
    };
    Module::<B>::visit(model, &mut norms);
    // Added on the host in f64, in parameter order, as each was read one by one before.
    let scaled = if norms.sums.is_empty() {
        0.0
    } else {
        Tensor::cat(norms.sums, 0)
            .into_data()
            .convert::<f32>()
            .iter::<f32>()
            .map(f64::from)
            .sum::<f64>()
            .sqrt()
    };
    let total = scaled / loss_scale;
    if !total.is_finite() {
        return total;
    }
    let clip = if max_norm > 0.0 && total > max_norm {
        max_norm / (total + 1e-6)
    } else {
        1.0
    };
    let factor = clip / loss_scale;
    if factor != 1.0 {
        let mut scale = Scale { grads, factor };
        Module::<B>::visit(model, &mut scale);
    }
    total
}
