//! Execute (training): keeping GRPO's reference model near the policy — TRL's
//! `sync_ref_model`: every `sync_ref_model` steps the reference becomes
//! α·policy + (1 − α)·reference, parameter by parameter (α = `ref_model_mixup_alpha`).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::models::failed;
use crate::exec::StageError;
use crate::model::Transformer;

/// Every float parameter of a module, flattened, in visiting order.
struct Flattened<B: Backend> {
    tensors: Vec<(Vec<usize>, Tensor<B, 1>)>,
}

impl<B: Backend> ModuleVisitor<B> for Flattened<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let count: usize = dims.iter().product();
        self.tensors.push((dims, tensor.reshape([count])));
    }
}

fn flattened<B: Backend>(model: &Transformer<B>) -> Vec<(Vec<usize>, Tensor<B, 1>)> {
    let mut visitor = Flattened {
        tensors: Vec::new(),
    };
    model.visit(&mut visitor);
    visitor.tensors
}

/// Mixes the policy's parameters (visited in the same order) into the reference's.
struct Mixup<B: Backend> {
    policy: std::vec::IntoIter<(Vec<usize>, Tensor<B, 1>)>,
    alpha: f64,
}

impl<B: Backend> ModuleMapper<B> for Mixup<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, reference, mapper) = param.consume();
        let mixed = match self.policy.next() {
            Some((_, policy)) => {
                let dims = reference.dims();
                policy.reshape(dims).mul_scalar(self.alpha) + reference.mul_scalar(1.0 - self.alpha)
            }
            None => reference,
        };
        Param::from_mapped_value(id, mixed, mapper)
    }
}

/// Checks that `reference` has the policy's parameters (shape by shape), so that it can be
/// synced; run once before training.
pub(super) fn check_syncable<B: Backend>(
    policy: &Transformer<B>,
    reference: &Transformer<B>,
) -> Result<(), StageError> {
    let shapes = |model: &Transformer<B>| {
        flattened(model)
            .into_iter()
            .map(|(dims, _)| dims)
            .collect::<Vec<_>>()
    };
    if shapes(policy) != shapes(reference) {
        return Err(failed(
            "sync_ref_model mixes the policy into the reference model, but `reference` has a \
             different architecture; leave `reference` out (the policy's start is the \
             reference) or set `sync_ref_model: 0`",
        ));
    }
    Ok(())
}

/// reference ← α·policy + (1 − α)·reference.
pub(super) fn mix_into_reference<B: Backend>(
    reference: Transformer<B>,
    policy: &Transformer<B>,
    alpha: f64,
) -> Transformer<B> {
    reference.map(&mut Mixup {
        policy: flattened(policy).into_iter(),
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, Preset};

    type B = crate::model::CpuBackend;

    fn weights(model: &Transformer<B>) -> Vec<f32> {
        flattened(model)
            .into_iter()
            .flat_map(|(_, t)| t.into_data().to_vec::<f32>().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_reference_moves_alpha_of_the_way_to_the_policy() {
        let config: ModelConfig = Preset::Tiny.config();
        let device = Default::default();
        let policy = Transformer::<B>::init(&config, 1, &device).expect("policy");
        let reference = Transformer::<B>::init(&config, 2, &device).expect("reference");
        check_syncable(&policy, &reference).expect("same architecture");
        let (p, r) = (weights(&policy), weights(&reference));
        let mixed = weights(&mix_into_reference(reference, &policy, 0.25));
        assert_eq!(mixed.len(), p.len());
        for i in (0..p.len()).step_by(997) {
            let expected = 0.25 * p[i] + 0.75 * r[i];
            assert!(
                (mixed[i] - expected).abs() < 1e-6,
                "{i}: {} vs {expected}",
                mixed[i]
            );
        }
        let copied = weights(&mix_into_reference(
            Transformer::<B>::init(&config, 2, &device).expect("reference"),
            &policy,
            1.0,
        ));
        assert_eq!(copied, p);
    }
}
