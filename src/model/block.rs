//! Model layer (used by execute): one pre-norm decoder layer (attention, then SwiGLU).

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::attention::{Attention, LayerKv};
use super::kernels::{rms_norm, KernelBackend};
use super::mlp::Mlp;
use super::rope::RopeTables;

/// `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// RMSNorm before attention, `[hidden]`.
    pub input_layernorm: RmsNorm<B>,
    /// Grouped-query self-attention.
    pub self_attn: Attention<B>,
    /// RMSNorm before the MLP, `[hidden]`.
    pub post_attention_layernorm: RmsNorm<B>,
    /// SwiGLU feed-forward.
    pub mlp: Mlp<B>,
}

impl<B: KernelBackend> DecoderLayer<B> {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: &Tensor<B, 5>,
        cache: Option<&mut LayerKv<B>>,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward(
            rms_norm(x.clone(), &self.input_layernorm),
            rope,
            mask,
            cache,
        );
        let x = x + attn;
        let mlp = self
            .mlp
            .forward(rms_norm(x.clone(), &self.post_attention_layernorm));
        x + mlp
    }
}
