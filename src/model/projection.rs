//! Model layer (used by execute): applying a `Linear` to `[batch, seq, features]` as one
//! 2-D matrix product.
//!
//! burn's `Linear::forward` on a 3-D input runs one small matmul per batch row against
//! a broadcast weight (and sums per-row weight gradients in backward); in generation,
//! with one token per row, that streams the whole weight once per row. Flattening the
//! rows first makes it one GEMM (measured: the dominant cost of KV-cache generation),
//! run by the backend's own product ([`super::kernels::matmul`]) with the bias added as
//! burn's `linear` adds it, and a LoRA adapter's update after it as PEFT adds it.

use burn::nn::Linear;
use burn::tensor::Tensor;

use super::kernels::{matmul, KernelBackend};
use super::lora::Lora;

/// `[batch, seq, d_in]` → `[batch, seq, d_out]`: `x · weight + bias`, as burn's `linear`
/// computes it, with the backend's own matrix product.
pub(crate) fn project<B: KernelBackend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    project_adapted(layer, None, x)
}

/// [`project`] plus an adapter's update when there is one:
/// `x · weight + bias + scale · (x · A) · B` (without one, exactly [`project`]).
pub(crate) fn project_adapted<B: KernelBackend>(
    layer: &Linear<B>,
    adapter: Option<&Lora<B>>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [b, s, d_in] = x.dims();
    let x = x.reshape([b * s, d_in]);
    let y = matmul(x.clone(), layer.weight.val());
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze::<2>(),
        None => y,
    };
    let y = match adapter {
        Some(adapter) => y + adapter.update(x),
        None => y,
    };
    let d_out = y.dims()[1];
    y.reshape([b, s, d_out])
}
