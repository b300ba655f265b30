//! Model layer (used by execute): the SwiGLU feed-forward block of a decoder layer.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::kernels::{swiglu, KernelBackend};
use super::lora::Lora;
use super::projection::project_adapted;

/// `down(silu(gate(x)) * up(x))`, no biases.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[hidden, intermediate]`
    pub gate_proj: Linear<B>,
    /// `[hidden, intermediate]`
    pub up_proj: Linear<B>,
    /// `[intermediate, hidden]`
    pub down_proj: Linear<B>,
    /// LoRA adapter of `gate_proj` (`None`: the projection alone).
    pub gate_lora: Option<Lora<B>>,
    /// LoRA adapter of `up_proj`.
    pub up_lora: Option<Lora<B>>,
    /// LoRA adapter of `down_proj`.
    pub down_lora: Option<Lora<B>>,
}

impl<B: KernelBackend> Mlp<B> {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = project_adapted(&self.gate_proj, self.gate_lora.as_ref(), x.clone());
        let up = project_adapted(&self.up_proj, self.up_lora.as_ref(), x);
        project_adapted(&self.down_proj, self.down_lora.as_ref(), swiglu(gate, up))
    }
}
