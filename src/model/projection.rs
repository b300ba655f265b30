//! Model layer (used by execute): applying a `Linear` to `[batch, seq, features]` as one
//! 2-D matrix product.
//!
//! burn's `Linear::forward` on a 3-D input runs one small matmul per batch row against
//! a broadcast weight (and sums per-row weight gradients in backward); in generation,
//! with one token per row, that streams the whole weight once per row. Flattening the
//! rows first makes it one GEMM (measured: the dominant cost of KV-cache generation).

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `[batch, seq, d_in]` → `[batch, seq, d_out]`
pub(crate) fn project<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d_in] = x.dims();
    let y = layer.forward(x.reshape([b * s, d_in]));
    let d_out = y.dims()[1];
    y.reshape([b, s, d_out])
}
