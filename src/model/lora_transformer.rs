//! Model layer (used by execute): a [`Transformer`] with LoRA adapters — adding them with
//! the base frozen (so autodiff gives gradients, and AdamW keeps state, for the adapters
//! only), the base's forward without them (the KL term's reference), and merging them
//! into the weights.
//!
//! The adapters live in `Option` slots beside the projections they adapt; a model
//! without adapters has every slot empty, and its weights, its safetensors bytes and its
//! logits are those of a model that never heard of LoRA. [`LoraAdapters`] is every
//! adapter of a model on its own: what a training checkpoint keeps (the frozen base is
//! the stage's input, loaded again on resume).

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::block::DecoderLayer;
use super::kernels::KernelBackend;
use super::lora::{Lora, LoraConfig, LoraTarget};
use super::rng::SeededRng;
use super::{ModelError, Transformer};

impl<B: Backend> DecoderLayer<B> {
    /// The projection `target` names and its adapter slot.
    pub(super) fn lora_slot(&self, target: LoraTarget) -> (&Linear<B>, &Option<Lora<B>>) {
        let (a, m) = (&self.self_attn, &self.mlp);
        match target {
            LoraTarget::QProj => (&a.q_proj, &a.q_lora),
            LoraTarget::KProj => (&a.k_proj, &a.k_lora),
            LoraTarget::VProj => (&a.v_proj, &a.v_lora),
            LoraTarget::OProj => (&a.o_proj, &a.o_lora),
            LoraTarget::GateProj => (&m.gate_proj, &m.gate_lora),
            LoraTarget::UpProj => (&m.up_proj, &m.up_lora),
            LoraTarget::DownProj => (&m.down_proj, &m.down_lora),
        }
    }

    /// [`Self::lora_slot`], mutable.
    pub(super) fn lora_slot_mut(
        &mut self,
        target: LoraTarget,
    ) -> (&mut Linear<B>, &mut Option<Lora<B>>) {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        match target {
            LoraTarget::QProj => (&mut a.q_proj, &mut a.q_lora),
            LoraTarget::KProj => (&mut a.k_proj, &mut a.k_lora),
            LoraTarget::VProj => (&mut a.v_proj, &mut a.v_lora),
            LoraTarget::OProj => (&mut a.o_proj, &mut a.o_lora),
            LoraTarget::GateProj => (&mut m.gate_proj, &mut m.gate_lora),
            LoraTarget::UpProj => (&mut m.up_proj, &mut m.up_lora),
            LoraTarget::DownProj => (&mut m.down_proj, &mut m.down_lora),
        }
    }
}

/// Every adapter of a model, in [`Transformer::lora_adapters`] order, without the base:
/// a module of its own, so its record (values and parameter ids, which an optimizer's
/// state is keyed by) can be written and read back apart from the frozen weights.
#[derive(Module, Debug)]
pub struct LoraAdapters<B: Backend> {
    /// Layer by layer, in [`LoraTarget::ALL`] order within a layer.
    pub adapters: Vec<Lora<B>>,
}

/// `[d_in, d_out]` of a projection.
pub(super) fn linear_dims<B: Backend>(linear: &Linear<B>) -> [usize; 2] {
    linear.weight.dims()
}

/// Marks every float parameter trainable again (what a freshly built model is).
struct RequireGrad;

impl<B: Backend> ModuleMapper<B> for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|t| t.set_require_grad(true))
    }
}

impl<B: Backend> Transformer<B> {
    /// This model with fresh adapters on `targets` in every layer (PEFT's default
    /// initialisation, drawn from `seed`: A of layer `l`, target `t` from the stream
    /// `l · 7 + t`, so one adapter's values do not depend on which others exist) and every
    /// base weight frozen: on an autodiff backend only the adapters get gradients, and an
    /// optimizer over this model keeps state for them only.
    ///
    /// Refuses a dropout other than 0 (the forward applies none), an empty target list,
    /// and a model that already has adapters (merge them first).
    pub fn with_lora(
        self,
        config: &LoraConfig,
        targets: &[LoraTarget],
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if config.dropout != 0.0 {
            return Err(ModelError::adapter(format!(
                "lora_dropout = {}: r1flow's LoRA applies no dropout yet, so only 0 is \
                 accepted",
                config.dropout
            )));
        }
        if targets.is_empty() {
            return Err(ModelError::adapter("no LoRA target modules given"));
        }
        if self.has_lora() {
            return Err(ModelError::adapter(
                "the model already has LoRA adapters: merge them before adding new ones",
            ));
        }
        let mut model = self.no_grad();
        for (l, layer) in model.layers.iter_mut().enumerate() {
            for (t, target) in LoraTarget::ALL.into_iter().enumerate() {
                if !targets.contains(&target) {
                    continue;
                }
                let (linear, slot) = layer.lora_slot_mut(target);
                let [d_in, d_out] = linear_dims(linear);
                let stream = (l * LoraTarget::ALL.len() + t) as u64;
                let mut rng = SeededRng::stream(seed, stream);
                *slot = Some(Lora::init(d_in, d_out, config, &mut rng, device));
            }
        }
        Ok(model)
    }

    /// Whether any projection carries an adapter.
    pub fn has_lora(&self) -> bool {
        self.lora_adapters().next().is_some()
    }

    /// Every adapter with its layer and target, layer by layer in [`LoraTarget::ALL`]
    /// order.
    pub fn lora_adapters(&self) -> impl Iterator<Item = (usize, LoraTarget, &Lora<B>)> + '_ {
        self.layers.iter().enumerate().flat_map(|(l, layer)| {
            LoraTarget::ALL
                .into_iter()
                .filter_map(move |t| layer.lora_slot(t).1.as_ref().map(|a| (l, t, a)))
        })
    }

    /// The targets that carry an adapter in some layer, in [`LoraTarget::ALL`] order.
    pub fn lora_targets(&self) -> Vec<LoraTarget> {
        let mut targets: Vec<LoraTarget> = self.lora_adapters().map(|(_, t, _)| t).collect();
        targets.sort();
        targets.dedup();
        targets
    }

    /// The model's adapters on their own (sharing the model's tensors, not copies).
    pub fn adapter_set(&self) -> LoraAdapters<B> {
        LoraAdapters {
            adapters: self.lora_adapters().map(|(_, _, a)| a.clone()).collect(),
        }
    }

    /// This model with its adapters replaced, slot for slot, by `set`'s (a set taken from
    /// this model by [`Self::adapter_set`], then changed: read back from a checkpoint).
    /// Refuses a set of another length, or an adapter whose shapes differ from the one it
    /// replaces.
    pub fn with_adapter_set(mut self, set: LoraAdapters<B>) -> Result<Self, ModelError> {
        let expected = self.lora_adapters().count();
        if set.adapters.len() != expected {
            return Err(ModelError::adapter(format!(
                "{} saved adapters for a model with {expected}",
                set.adapters.len()
            )));
        }
        let mut saved = set.adapters.into_iter();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            for target in LoraTarget::ALL {
                let slot = layer.lora_slot_mut(target).1;
                let Some(current) = slot.as_ref() else {
                    continue;
                };
                let Some(adapter) = saved.next() else {
                    break;
                };
                let shapes = |a: &Lora<B>| (a.a.dims(), a.b.dims());
                if shapes(&adapter) != shapes(current) {
                    return Err(ModelError::adapter(format!(
                        "the saved adapter of layer {l}'s {} has shapes {:?}, the model's {:?}",
                        target.peft_name(),
                        shapes(&adapter),
                        shapes(current)
                    )));
                }
                *slot = Some(adapter);
            }
        }
        Ok(self)
    }

    /// Trainable numbers in the adapters (0 without adapters).
    pub fn lora_num_values(&self) -> usize {
        self.lora_adapters().map(|(_, _, a)| a.num_values()).sum()
    }

    /// The base model: the same weights (shared, not copied) with every adapter slot
    /// empty, so its forward is the model's without the adapters — bit for bit the model
    /// before [`Self::with_lora`] (the reference of a KL term needs no second copy).
    pub fn without_lora(&self) -> Self {
        let mut base = self.clone();
        for layer in &mut base.layers {
            for target in LoraTarget::ALL {
                *layer.lora_slot_mut(target).1 = None;
            }
        }
        base
    }
}

impl<B: KernelBackend> Transformer<B> {
    /// A plain model with each adapter folded into its weight, `W + scale · A · B`, and
    /// every parameter trainable again. Equal to the adapted model in value, not in bits
    /// (`x · (W + sAB)` groups its sums differently from `x · W + s(xA)B`).
    pub fn merge_lora(mut self) -> Self {
        for layer in &mut self.layers {
            for target in LoraTarget::ALL {
                let (linear, slot) = layer.lora_slot_mut(target);
                if let Some(adapter) = slot.take() {
                    let merged = adapter.merged_into(linear.weight.val()).detach();
                    linear.weight = Param::initialized(linear.weight.id, merged);
                }
            }
        }
        self.map(&mut RequireGrad)
    }
}
