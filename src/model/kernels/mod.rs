//! Model layer (used by execute): fused operations of the decoder — attention's masked
//! softmax, rotary embeddings, the heads/positions swap around it, SwiGLU, RMSNorm and the
//! log-probability of a target token — each one operation with its own backward pass
//! instead of a chain of element-wise burn ops.
//!
//! [`KernelBackend`] extends burn's `Backend` with them. Its default methods compose burn
//! ops (what the GPU backends run where `cube` has no CubeCL kernel yet, and burn's fusion
//! does the rest); burn's flex CPU backend runs the kernels of [`cpu`]; `Autodiff<B>`
//! records each as one node whose backward calls `B`'s backward kernel. Profiles of a training step on the CPU showed
//! the composed forms spending more time in scalar `expf`, strided copies and autodiff
//! bookkeeping than in anything but the matrix products.
//!
//! The model is written against [`KernelBackend`]; training code against [`TrainBackend`].

mod autodiff;
pub(crate) mod composed;
#[cfg(feature = "gpu-kernels")]
mod cube;
mod flex;
mod gemm;
pub mod precision;
pub mod profile;
pub mod thread_setting;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

/// Per row of a `[rows, vocab]` logits matrix: the log-probability of the row's target,
/// the row's log-sum-exp (what the backward pass needs), and its entropy when asked.
#[derive(Debug, Clone)]
pub struct TargetLogprobs<B: Backend> {
    /// `log softmax(row)[target]`, `[rows]`.
    pub logprobs: Tensor<B, 1>,
    /// `ln Σ exp(row)`, `[rows]`.
    pub log_sum_exp: Tensor<B, 1>,
    /// `−Σ p ln p`, `[rows]`; a measurement, carrying no gradient.
    pub entropy: Option<Tensor<B, 1>>,
}

/// A backend with the decoder's fused operations. Matrices are `[rows, cols]`, operated
/// on row by row. The default methods are the compositions of [`composed`].
pub trait KernelBackend: Backend {
    /// The matrix product of the last two axes, batched over the leading ones (equal in
    /// both operands): burn's `matmul`, which is the default, in the thread's compute
    /// precision (the operands cast to it and the output back to f32: [`precision`]);
    /// flex writes its output in place (see `gemm.rs`), in f32 always.
    fn matmul<const D: usize>(lhs: Tensor<Self, D>, rhs: Tensor<Self, D>) -> Tensor<Self, D> {
        matmul_in_precision(lhs, rhs)
    }

    /// The sum of every element, `[1]`: burn's `sum` by default; flex adds in an order
    /// fixed by the length (`r1flow_kernels::cpu::sum`), whatever the vector width or the
    /// thread count.
    fn sum<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, 1> {
        x.sum()
    }

    /// The sum of each row of `[rows, cols]`, `[rows]`: flex adds each row lane-wise in a
    /// fixed order.
    fn sum_rows(x: Tensor<Self, 2>) -> Tensor<Self, 1> {
        composed::sum_rows(x)
    }

    /// `[rows]` → `[rows, cols]`, each value repeated along its row: burn's `expand`,
    /// whose gradient under autodiff is [`Self::sum_rows`] (burn's would sum with the
    /// backend's own reduction).
    fn expand_rows(x: Tensor<Self, 1>, cols: usize) -> Tensor<Self, 2> {
        let [rows] = x.dims();
        x.reshape([rows, 1]).expand([rows, cols])
    }

    /// `softmax(scores · scale + mask)` along each row. The mask is additive (0 where a key
    /// is visible, a large negative where not) and carries no gradient.
    fn masked_softmax(
        scores: Tensor<Self, 2>,
        mask: Tensor<Self, 2>,
        scale: f32,
    ) -> Tensor<Self, 2> {
        composed::masked_softmax(scores, mask, scale)
    }

    /// The gradient of [`Self::masked_softmax`] with respect to the scores, from its
    /// output `probs` and the output's gradient.
    fn masked_softmax_backward(
        probs: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
        scale: f32,
    ) -> Tensor<Self, 2> {
        composed::masked_softmax_backward(probs, grad, scale)
    }

    /// SwiGLU's product `silu(gate) ⊙ up`.
    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        composed::swiglu(gate, up)
    }

    /// The gradients of [`Self::swiglu`] with respect to `gate` and `up`.
    fn swiglu_backward(
        gate: Tensor<Self, 2>,
        up: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
    ) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        composed::swiglu_backward(gate, up, grad)
    }

    /// RMSNorm along each row: `x / sqrt(mean(x²) + eps) ⊙ gamma`.
    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        composed::rms_norm(x, gamma, eps)
    }

    /// The gradients of [`Self::rms_norm`] with respect to `x` and `gamma`.
    fn rms_norm_backward(
        x: Tensor<Self, 2>,
        gamma: Tensor<Self, 1>,
        grad: Tensor<Self, 2>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        composed::rms_norm_backward(x, gamma, grad, eps)
    }

    /// Rotary position embedding of each row (one head of one position; the cos and sin
    /// tables have the rows' shape): `x ⊙ cos + rotate_half(x) ⊙ sin`. The tables carry
    /// no gradient.
    fn rotary(x: Tensor<Self, 2>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 2> {
        composed::rotary(x, cos, sin)
    }

    /// The gradient of [`Self::rotary`] with respect to `x`.
    fn rotary_backward(
        grad: Tensor<Self, 2>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
    ) -> Tensor<Self, 2> {
        composed::rotary_backward(grad, cos, sin)
    }

    /// `[a, m, n, d]` → `[a, n, m, d]` (a batch's positions and heads exchanged), laid out
    /// contiguously where the backend lays tensors out (the CPU): attention's matrix
    /// products then read it in place, and its gradient is the same swap.
    fn swap_middle(x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        composed::swap_middle(x)
    }

    /// The log-probability of each row's target under the row's softmax (and the row's
    /// entropy when `with_entropy`).
    fn target_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
        with_entropy: bool,
    ) -> TargetLogprobs<Self> {
        composed::target_logprobs(logits, targets, with_entropy)
    }

    /// The gradient of [`Self::target_logprobs`]' log-probabilities with respect to the
    /// logits: `g · (onehot(target) − softmax(row))` for each row.
    fn target_logprobs_backward(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
        log_sum_exp: Tensor<Self, 1>,
        grad: Tensor<Self, 1>,
    ) -> Tensor<Self, 2> {
        composed::target_logprobs_backward(logits, targets, log_sum_exp, grad)
    }
}

/// burn's `matmul` in the thread's compute precision: the operands cast to it and the
/// output back to f32 ([`precision`]); [`KernelBackend::matmul`]'s default.
fn matmul_in_precision<B: Backend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Tensor<B, D> {
    match precision::low_precision() {
        None => lhs.matmul(rhs),
        Some(low) => lhs
            .cast(low)
            .matmul(rhs.cast(low))
            .cast(burn::tensor::FloatDType::F32),
    }
}

/// The operations of [`KernelBackend`] by name, as `tests/model_wgpu.rs` checks each on
/// wgpu against the CPU kernels and `bench_launches` counts the GPU kernels each launches.
pub const OPERATIONS: [&str; 7] = [
    "masked_softmax",
    "swiglu",
    "rms_norm",
    "rotary",
    "swap_middle",
    "target_logprobs",
    "matmul",
];

/// A backend training runs on: autodiff over an inner backend, both with the fused
/// operations (generation runs on the inner one).
pub trait TrainBackend: AutodiffBackend<InnerBackend: KernelBackend> + KernelBackend {}

impl<T> TrainBackend for T
where
    T: AutodiffBackend + KernelBackend,
    T::InnerBackend: KernelBackend,
{
}

#[cfg(feature = "ndarray")]
impl KernelBackend for burn::backend::NdArray {}
// wgpu and cuda (`Fusion<CubeBackend<…>>`, and `CubeBackend` alone): in `cube`.

/// `[d0, …, cols]` → `[rows, cols]` and the dims to restore.
fn as_rows<B: Backend, const D: usize>(x: Tensor<B, D>) -> (Tensor<B, 2>, [usize; D]) {
    let dims = x.dims();
    let cols = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    (x.reshape([rows, cols]), dims)
}

/// `lhs · rhs` over the last two axes, batched over the leading ones (equal in both).
pub fn matmul<B: KernelBackend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Tensor<B, D> {
    B::matmul(lhs, rhs)
}

/// `Σ x`, `[1]`: the backend's ordered sum (training code sums through this, never
/// burn's `sum`, whose order follows the CPU's vector width: `tests/it/layers.rs`).
pub fn sum<B: KernelBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, 1> {
    B::sum(x)
}

/// The mean of every element, `[1]`.
pub fn mean<B: KernelBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, 1> {
    let count = x.shape().num_elements().max(1);
    B::sum(x).div_scalar(count as f64)
}

/// The sums along the last axis: `[…, cols]` → `[…]` with the last axis kept as 1.
pub fn sum_last<B: KernelBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let (rows, mut dims) = as_rows(x);
    dims[D - 1] = 1;
    B::sum_rows(rows).reshape(dims)
}

/// `[…, 1]` → `[…, cols]`, each value repeated along the last axis (its gradient summed
/// by [`KernelBackend::sum_rows`]).
pub fn expand_last<B: KernelBackend, const D: usize>(x: Tensor<B, D>, cols: usize) -> Tensor<B, D> {
    let mut dims = x.dims();
    let rows: usize = dims[..D - 1].iter().product();
    dims[D - 1] = cols;
    B::expand_rows(x.reshape([rows]), cols).reshape(dims)
}

/// `log softmax` along the last axis, composed of the backend's ordered row sums: the
/// rows' maximum (without gradient, which cancels) is taken out before the exponential.
pub fn log_softmax<B: KernelBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let cols = x.dims()[D - 1];
    let max = x.clone().detach().max_dim(D - 1);
    let shifted = x - expand_last(max, cols);
    let log_sum_exp = sum_last(shifted.clone().exp()).log();
    shifted - expand_last(log_sum_exp, cols)
}

/// `softmax(scores · scale + mask)` along the last axis; `mask` has the shape of `scores`.
pub fn masked_softmax<B: KernelBackend, const D: usize>(
    scores: Tensor<B, D>,
    mask: Tensor<B, D>,
    scale: f64,
) -> Tensor<B, D> {
    let (scores, dims) = as_rows(scores);
    let (mask, _) = as_rows(mask);
    B::masked_softmax(scores, mask, scale as f32).reshape(dims)
}

/// `silu(gate) ⊙ up`, element-wise; both have the same shape.
pub fn swiglu<B: KernelBackend, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Tensor<B, D> {
    let (gate, dims) = as_rows(gate);
    let (up, _) = as_rows(up);
    B::swiglu(gate, up).reshape(dims)
}

/// RMSNorm along the last axis, as burn's `RmsNorm` module computes it.
pub fn rms_norm<B: KernelBackend, const D: usize>(
    x: Tensor<B, D>,
    norm: &burn::nn::RmsNorm<B>,
) -> Tensor<B, D> {
    let (x, dims) = as_rows(x);
    B::rms_norm(x, norm.gamma.val(), norm.epsilon as f32).reshape(dims)
}

/// Rotary position embedding of `x` (`[…, head_dim]`) by tables of the same shape.
pub fn rotary<B: KernelBackend, const D: usize>(
    x: Tensor<B, D>,
    cos: Tensor<B, D>,
    sin: Tensor<B, D>,
) -> Tensor<B, D> {
    let (x, dims) = as_rows(x);
    let (cos, _) = as_rows(cos);
    let (sin, _) = as_rows(sin);
    B::rotary(x, cos, sin).reshape(dims)
}

/// `[a, m, n, d]` → `[a, n, m, d]`: see [`KernelBackend::swap_middle`].
pub fn swap_middle<B: KernelBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    B::swap_middle(x)
}

/// The log-probability of `targets[i]` under the softmax of row `i` of `logits`
/// (`[rows, vocab]`), and the rows' entropies when asked (without gradient).
pub fn target_logprobs<B: KernelBackend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    with_entropy: bool,
) -> (Tensor<B, 1>, Option<Tensor<B, 1>>) {
    let out = B::target_logprobs(logits, targets, with_entropy);
    (out.logprobs, out.entropy)
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::{Distribution, Tensor, TensorData};

    use super::*;
    use crate::model::CpuBackend;

    type A = Autodiff<CpuBackend>;

    fn random<B: Backend, const D: usize>(dims: [usize; D], seed: u64) -> Tensor<B, D> {
        B::seed(&Default::default(), seed);
        Tensor::random(dims, Distribution::Normal(0.0, 2.0), &Default::default())
    }

    fn assert_close<B: Backend, const D: usize>(what: &str, got: Tensor<B, D>, want: Tensor<B, D>) {
        let got: Vec<f32> = got.into_data().to_vec().expect("f32");
        let want: Vec<f32> = want.into_data().to_vec().expect("f32");
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// The composed backward passes (what GPU backends run under autodiff) agree with the
    /// CPU kernels, which the tests of `cpu` check against finite differences.
    #[test]
    fn composed_backward_passes_match_the_cpu_kernels() {
        let (rows, cols) = (5, 16);
        let a = random::<CpuBackend, 2>([rows, cols], 30);
        let b = random::<CpuBackend, 2>([rows, cols], 31);
        let g = random::<CpuBackend, 2>([rows, cols], 32);
        let probs = CpuBackend::masked_softmax(a.clone(), b.clone() * 0.0, 1.0);
        assert_close(
            "softmax backward",
            composed::masked_softmax_backward(probs.clone(), g.clone(), 0.7),
            CpuBackend::masked_softmax_backward(probs, g.clone(), 0.7),
        );
        let (d_gate, d_up) = composed::swiglu_backward(a.clone(), b.clone(), g.clone());
        let (k_gate, k_up) = CpuBackend::swiglu_backward(a.clone(), b.clone(), g.clone());
        assert_close("swiglu d gate", d_gate, k_gate);
        assert_close("swiglu d up", d_up, k_up);
        let gamma = random::<CpuBackend, 1>([cols], 33);
        let (d_x, d_gamma) = composed::rms_norm_backward(a.clone(), gamma.clone(), g.clone(), 1e-6);
        let (k_x, k_gamma) = CpuBackend::rms_norm_backward(a.clone(), gamma, g.clone(), 1e-6);
        assert_close("rms_norm d x", d_x, k_x);
        assert_close("rms_norm d gamma", d_gamma, k_gamma);
        assert_close(
            "rotary backward",
            composed::rotary_backward(g.clone(), a.clone().cos(), a.clone().sin()),
            CpuBackend::rotary_backward(g.clone(), a.clone().cos(), a.clone().sin()),
        );
        let targets = Tensor::<CpuBackend, 1, Int>::from_data(
            TensorData::new(vec![0i32, 15, 3, 7, 9], [rows]),
            &Default::default(),
        );
        let lse = CpuBackend::target_logprobs(a.clone(), targets.clone(), false).log_sum_exp;
        let row_grad = random::<CpuBackend, 1>([rows], 34);
        assert_close(
            "log-probs backward",
            composed::target_logprobs_backward(
                a.clone(),
                targets.clone(),
                lse.clone(),
                row_grad.clone(),
            ),
            CpuBackend::target_logprobs_backward(a, targets, lse, row_grad),
        );
    }

    /// A parameter-like leaf of the graph.
    fn leaf<const D: usize>(t: Tensor<CpuBackend, D>) -> Tensor<A, D> {
        Tensor::from_inner(t).require_grad()
    }

    type Grads = <A as burn::tensor::backend::AutodiffBackend>::Gradients;

    /// Asserts that a fused operation's output equals its composition's, and returns the
    /// gradients of `loss` of each (fused first).
    fn forward_close<const D: usize>(
        what: &str,
        fused: Tensor<A, D>,
        reference: Tensor<A, D>,
        loss: impl Fn(Tensor<A, D>) -> Tensor<A, 1>,
    ) -> (Grads, Grads) {
        assert_close(what, fused.clone().inner(), reference.clone().inner());
        (loss(fused).backward(), loss(reference).backward())
    }

    /// Asserts that the leaf of the fused graph got from its gradients the gradient the
    /// leaf of the composition's got from its own.
    fn grad_close<const D: usize>(
        what: &str,
        (fused, reference): (&Tensor<A, D>, &Tensor<A, D>),
        (fused_grads, reference_grads): &(Grads, Grads),
    ) {
        assert_close(
            what,
            fused.grad(fused_grads).expect("grad"),
            reference.grad(reference_grads).expect("grad"),
        );
    }

    /// Each fused operation's output and gradients on the CPU backend equal those of its
    /// composition of burn ops, differentiated by burn's autodiff.
    #[test]
    fn fused_operations_match_their_compositions_forward_and_backward() {
        let (rows, cols) = (6, 37);
        let weights = random::<CpuBackend, 2>([rows, cols], 1);
        // Loss = Σ weights ⊙ op(x), so every output element gets its own gradient.
        let loss = |y: Tensor<A, 2>| (y * Tensor::from_inner(weights.clone())).sum();

        let scores = random::<CpuBackend, 2>([rows, cols], 2);
        let mask_values: Vec<f32> = (0..rows * cols)
            .map(|i| if i % cols > i / cols * 5 { -1.0e9 } else { 0.0 })
            .collect();
        let mask = Tensor::<CpuBackend, 2>::from_data(
            TensorData::new(mask_values, [rows, cols]),
            &Default::default(),
        );
        let (a, b) = (leaf(scores.clone()), leaf(scores));
        let fused = A::masked_softmax(a.clone(), Tensor::from_inner(mask.clone()), 0.3);
        let reference = composed::masked_softmax(b.clone(), Tensor::from_inner(mask), 0.3);
        let grads = forward_close("softmax", fused, reference, loss);
        grad_close("softmax grad", (&a, &b), &grads);

        let (gate, up) = (
            random::<CpuBackend, 2>([rows, cols], 3),
            random::<CpuBackend, 2>([rows, cols], 4),
        );
        let (g1, u1, g2, u2) = (leaf(gate.clone()), leaf(up.clone()), leaf(gate), leaf(up));
        let fused = A::swiglu(g1.clone(), u1.clone());
        let reference = composed::swiglu(g2.clone(), u2.clone());
        let grads = forward_close("swiglu", fused, reference, loss);
        grad_close("swiglu d gate", (&g1, &g2), &grads);
        grad_close("swiglu d up", (&u1, &u2), &grads);

        let (x, gamma) = (
            random::<CpuBackend, 2>([rows, cols], 5),
            random::<CpuBackend, 1>([cols], 6),
        );
        let (x1, w1, x2, w2) = (leaf(x.clone()), leaf(gamma.clone()), leaf(x), leaf(gamma));
        let fused = A::rms_norm(x1.clone(), w1.clone(), 1e-6);
        let reference = composed::rms_norm(x2.clone(), w2.clone(), 1e-6);
        let grads = forward_close("rms_norm", fused, reference, loss);
        grad_close("rms_norm d x", (&x1, &x2), &grads);
        grad_close("rms_norm d gamma", (&w1, &w2), &grads);

        let (x, angles) = (
            random::<CpuBackend, 2>([rows, 8], 9),
            random::<CpuBackend, 2>([rows, 8], 10),
        );
        let (cos, sin) = (
            Tensor::from_inner(angles.clone().cos()),
            Tensor::from_inner(angles.sin()),
        );
        let (x1, x2) = (leaf(x.clone()), leaf(x));
        let fused = A::rotary(x1.clone(), cos.clone(), sin.clone());
        let reference = composed::rotary(x2.clone(), cos, sin);
        let w8 = random::<CpuBackend, 2>([rows, 8], 11);
        let loss8 = |y: Tensor<A, 2>| (y * Tensor::from_inner(w8.clone())).sum();
        let grads = forward_close("rotary", fused, reference, loss8);
        grad_close("rotary grad", (&x1, &x2), &grads);

        let x = random::<CpuBackend, 4>([2, 3, 4, 5], 12);
        let (x1, x2) = (leaf(x.clone()), leaf(x));
        let fused = A::swap_middle(x1.clone());
        let reference = composed::swap_middle(x2.clone());
        let w4 = random::<CpuBackend, 4>([2, 4, 3, 5], 13);
        let loss4 = |y: Tensor<A, 4>| (y * Tensor::from_inner(w4.clone())).sum();
        let grads = forward_close("swap", fused, reference, loss4);
        grad_close("swap grad", (&x1, &x2), &grads);

        let logits = random::<CpuBackend, 2>([rows, cols], 7);
        let targets: Vec<i32> = vec![0, 36, 5, 17, 3, 36];
        let targets = || {
            Tensor::<A, 1, Int>::from_data(
                TensorData::new(targets.clone(), [rows]),
                &Default::default(),
            )
        };
        let row_weights = random::<CpuBackend, 1>([rows], 8);
        let row_loss = |y: Tensor<A, 1>| (y * Tensor::from_inner(row_weights.clone())).sum();
        let (l1, l2) = (leaf(logits.clone()), leaf(logits));
        let fused = A::target_logprobs(l1.clone(), targets(), true);
        let reference = composed::target_logprobs(l2.clone(), targets(), true);
        assert_close(
            "log-probs",
            fused.logprobs.clone().inner(),
            reference.logprobs.clone().inner(),
        );
        assert_close(
            "log-sum-exp",
            fused.log_sum_exp.inner(),
            reference.log_sum_exp.inner(),
        );
        assert_close(
            "entropy",
            fused.entropy.expect("asked").inner(),
            reference.entropy.expect("asked").inner(),
        );
        let grads = (
            row_loss(fused.logprobs).backward(),
            row_loss(reference.logprobs).backward(),
        );
        grad_close("log-probs grad", (&l1, &l2), &grads);
    }

    fn bits<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<u32> {
        let values: Vec<f32> = t.into_data().to_vec().expect("f32");
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// In the native profile, the backend's matrix product gives burn's own bits, forward
    /// and backward, at the shapes of each threading path (one product split by `gemm`, a
    /// batch split by matrix, small ones on one thread), on transposed views, and where it
    /// falls back (broadcast batch axes).
    #[test]
    fn matmul_is_burns_matmul_bit_for_bit_forward_and_backward() {
        fn check<const D: usize>(lhs: [usize; D], rhs: [usize; D], seed: u64) {
            let (a, b) = (
                random::<CpuBackend, D>(lhs, seed),
                random::<CpuBackend, D>(rhs, seed + 1),
            );
            let what = format!("{lhs:?} · {rhs:?}");
            assert_eq!(
                bits(matmul(a.clone(), b.clone())),
                bits(a.clone().matmul(b.clone())),
                "{what}"
            );
            let (a1, b1, a2, b2) = (leaf(a.clone()), leaf(b.clone()), leaf(a), leaf(b));
            let ours = matmul(a1.clone(), b1.clone());
            let theirs = a2.clone().matmul(b2.clone());
            let weights = random::<CpuBackend, D>(ours.dims(), seed + 2);
            let loss = |y: Tensor<A, D>| (y * Tensor::from_inner(weights.clone())).sum();
            let (g1, g2) = (loss(ours).backward(), loss(theirs).backward());
            assert_eq!(
                bits(a1.grad(&g1).expect("grad")),
                bits(a2.grad(&g2).expect("grad")),
                "{what}: d lhs"
            );
            assert_eq!(
                bits(b1.grad(&g1).expect("grad")),
                bits(b2.grad(&g2).expect("grad")),
                "{what}: d rhs"
            );
        }
        let _native = profile::scoped(crate::manifest::Numerics::Native);
        check([5, 7], [7, 3], 40);
        check([300, 200], [200, 250], 43);
        check([2, 3, 17, 8], [2, 3, 8, 19], 46);
        check([8, 70, 64], [8, 64, 72], 49);
        check([1, 3, 4], [2, 4, 5], 52);

        // A transposed right operand, as attention's keys.
        let (q, k) = (
            random::<CpuBackend, 4>([2, 2, 9, 16], 55),
            random::<CpuBackend, 4>([2, 2, 11, 16], 56),
        );
        assert_eq!(
            bits(matmul(q.clone(), k.clone().swap_dims(2, 3))),
            bits(q.matmul(k.swap_dims(2, 3)))
        );
    }
}
