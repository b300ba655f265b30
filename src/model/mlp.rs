//! Model layer (used by execute): the SwiGLU feed-forward block of a decoder layer.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::kernels::{swiglu, KernelBackend};
use super::projection::project;

/// `down(silu(gate(x)) * up(x))`, no biases.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[hidden, intermediate]`
    pub gate_proj: Linear<B>,
    /// `[hidden, intermediate]`
    pub up_proj: Linear<B>,
    /// `[intermediate, hidden]`
    pub down_proj: Linear<B>,
}

impl<B: KernelBackend> Mlp<B> {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = project(&self.gate_proj, x.clone());
        project(&self.down_proj, swiglu(gate, project(&self.up_proj, x)))
    }
}
