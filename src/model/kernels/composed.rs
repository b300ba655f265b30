//! Model layer (used by execute): the fused operations of [`super::KernelBackend`] written
//! as compositions of burn ops — what a backend without its own kernels runs, and the
//! reference the fused kernels are tested against.

use burn::tensor::activation::{log_softmax, sigmoid, silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor};

use super::TargetLogprobs;

/// The sum of each row, `[rows]`.
pub(crate) fn sum_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let [rows, _] = x.dims();
    x.sum_dim(1).reshape([rows])
}

/// `softmax(scores · scale + mask)` along each row.
pub(crate) fn masked_softmax<B: Backend>(
    scores: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    scale: f32,
) -> Tensor<B, 2> {
    softmax(scores * scale + mask, 1)
}

/// `scale · p ⊙ (g − Σ g ⊙ p)` along each row.
pub(crate) fn masked_softmax_backward<B: Backend>(
    probs: Tensor<B, 2>,
    grad: Tensor<B, 2>,
    scale: f32,
) -> Tensor<B, 2> {
    let dot = (probs.clone() * grad.clone()).sum_dim(1);
    probs * (grad - dot) * scale
}

/// `silu(gate) ⊙ up`.
pub(crate) fn swiglu<B: Backend>(gate: Tensor<B, 2>, up: Tensor<B, 2>) -> Tensor<B, 2> {
    silu(gate) * up
}

/// `(g ⊙ up ⊙ σ(x)(1 + x(1 − σ(x))), g ⊙ x σ(x))` for `x = gate`.
pub(crate) fn swiglu_backward<B: Backend>(
    gate: Tensor<B, 2>,
    up: Tensor<B, 2>,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let s = sigmoid(gate.clone());
    let d_up = grad.clone() * gate.clone() * s.clone();
    let d_gate = grad * up * s.clone() * ((s.neg() + 1.0) * gate + 1.0);
    (d_gate, d_up)
}

/// `x / sqrt(mean(x²) + eps) ⊙ gamma` along each row.
pub(crate) fn rms_norm<B: Backend>(x: Tensor<B, 2>, gamma: Tensor<B, 1>, eps: f32) -> Tensor<B, 2> {
    let rms = (x.clone().powi_scalar(2).mean_dim(1) + eps).sqrt();
    (x / rms) * gamma.unsqueeze()
}

/// With `r = 1 / rms(x)`: `d x = r (g ⊙ γ − x r² mean(g ⊙ γ ⊙ x))`, `d γ = Σ_rows g ⊙ x r`.
pub(crate) fn rms_norm_backward<B: Backend>(
    x: Tensor<B, 2>,
    gamma: Tensor<B, 1>,
    grad: Tensor<B, 2>,
    eps: f32,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let cols = x.dims()[1] as f32;
    let r = (x.clone().powi_scalar(2).mean_dim(1) + eps).sqrt().recip();
    let gw = grad.clone() * gamma.unsqueeze();
    let mean = (gw.clone() * x.clone()).sum_dim(1) * r.clone().powi_scalar(2) / cols;
    let d_x = (gw - x.clone() * mean) * r.clone();
    let d_gamma = (grad * x * r).sum_dim(0).squeeze_dim(0);
    (d_x, d_gamma)
}

/// Log-probabilities of the targets, log-sum-exps and entropies through `log_softmax`.
pub(crate) fn target_logprobs<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    with_entropy: bool,
) -> TargetLogprobs<B> {
    let rows = logits.dims()[0];
    let logp = log_softmax(logits.clone(), 1);
    let logprobs = logp
        .clone()
        .gather(1, targets.reshape([rows, 1]))
        .reshape([rows]);
    let log_sum_exp = (logits - logp.clone()).narrow(1, 0, 1).reshape([rows]);
    let entropy =
        with_entropy.then(|| (logp.clone().exp() * logp).sum_dim(1).reshape([rows]).neg());
    TargetLogprobs {
        logprobs,
        log_sum_exp,
        entropy,
    }
}

/// `g · (onehot(target) − softmax(row))` for each row.
pub(crate) fn target_logprobs_backward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    log_sum_exp: Tensor<B, 1>,
    grad: Tensor<B, 1>,
) -> Tensor<B, 2> {
    let rows = logits.dims()[0];
    let grad = grad.reshape([rows, 1]);
    let probs = (logits - log_sum_exp.reshape([rows, 1])).exp();
    (probs * grad.clone().neg()).scatter(1, targets.reshape([rows, 1]), grad, IndexingUpdateOp::Add)
}

/// `x ⊙ cos + rotate_half(x) ⊙ sin` along each row, `rotate_half([a, b]) = [−b, a]`.
pub(crate) fn rotary<B: Backend>(
    x: Tensor<B, 2>,
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let half = x.dims()[1] / 2;
    let first = x.clone().narrow(1, 0, half);
    let second = x.clone().narrow(1, half, half);
    let rotated = Tensor::cat(vec![second.neg(), first], 1);
    x * cos + rotated * sin
}

/// The gradient of [`rotary`] with respect to `x`: `g ⊙ cos + [v, −u]` for `g ⊙ sin = [u, v]`.
pub(crate) fn rotary_backward<B: Backend>(
    grad: Tensor<B, 2>,
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let half = grad.dims()[1] / 2;
    let gs = grad.clone() * sin;
    let first = gs.clone().narrow(1, 0, half);
    let second = gs.narrow(1, half, half);
    grad * cos + Tensor::cat(vec![second, first.neg()], 1)
}

/// `[a, m, n, d]` → `[a, n, m, d]`.
pub(crate) fn swap_middle<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.swap_dims(1, 2)
}
