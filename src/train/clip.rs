//! Execute (training): global gradient-norm clipping, as PyTorch's `clip_grad_norm_` does
//! it — one norm over every parameter's gradient, every gradient scaled by the same factor.
//! burn's built-in clipping works per parameter tensor, which is not the same.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor};

use crate::model::kernels;
use crate::model::TrainBackend;

struct SquaredNorm<'g> {
    grads: &'g GradientsParams,
    total: f64,
}

impl<B: TrainBackend> ModuleVisitor<B> for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sum: f64 = kernels::sum(grad.clone() * grad).into_scalar().elem();
            self.total += sum;
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
    let mut norm = SquaredNorm { grads, total: 0.0 };
    Module::<B>::visit(model, &mut norm);
    let total = norm.total.sqrt();
    if max_norm > 0.0 && total > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (total + 1e-6),
        };
        Module::<B>::visit(model, &mut scale);
    }
    total
}
