//! Model layer (used by execute): [`KernelBackend`] on burn's flex CPU backend, running the
//! fused kernels of [`super::cpu`] on the tensors' `f32` buffers.
//!
//! A tensor in another precision falls back to the composed burn ops (the trait's default
//! methods), so every dtype flex supports keeps working.

#![cfg(feature = "flex")]

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{DType, Int, Tensor, TensorData, TensorPrimitive};

use r1flow_kernels::cpu;

use super::{composed, profile, KernelBackend, TargetLogprobs};
use crate::manifest::Numerics;

/// The contiguous `f32` buffer of `t` (copied only when `t` is a strided view), or `None`
/// for another dtype.
fn f32_buffer<const D: usize>(t: Tensor<Flex, D>) -> Option<(FlexTensor, [usize; D])> {
    let dims = t.dims();
    let primitive = t.into_primitive().tensor();
    (primitive.dtype() == DType::F32).then(|| (primitive.to_contiguous(), dims))
}

/// Row indices as `usize`, or `None` for a dtype other than `i32`/`i64` or an index
/// outside `0..cols`.
fn indices(t: Tensor<Flex, 1, Int>, cols: usize) -> Option<Vec<usize>> {
    let t = t.into_primitive().to_contiguous();
    let out: Vec<usize> = match t.dtype() {
        DType::I32 => t.storage::<i32>().iter().map(|&v| v as usize).collect(),
        DType::I64 => t.storage::<i64>().iter().map(|&v| v as usize).collect(),
        _ => return None,
    };
    out.iter().all(|&v| v < cols).then_some(out)
}

/// [`cpu::rotary`] on `f32` tensors, the composed ops otherwise.
fn rotary(
    x: Tensor<Flex, 2>,
    cos: Tensor<Flex, 2>,
    sin: Tensor<Flex, 2>,
    backward: bool,
) -> Tensor<Flex, 2> {
    let buffers = (
        f32_buffer(x.clone()),
        f32_buffer(cos.clone()),
        f32_buffer(sin.clone()),
    );
    match buffers {
        (Some((v, dims)), Some((c, _)), Some((s, _))) => tensor(
            cpu::rotary(v.storage(), c.storage(), s.storage(), dims[1], backward),
            dims,
        ),
        _ if backward => composed::rotary_backward(x, cos, sin),
        _ => composed::rotary(x, cos, sin),
    }
}

/// `kernel` on the `f32` buffers of `a` and `b` and the width of `a`'s rows, as a tensor
/// of `a`'s shape; `None` when either is in another dtype.
fn on_f32_rows<const D: usize>(
    a: &Tensor<Flex, 2>,
    b: &Tensor<Flex, D>,
    kernel: impl FnOnce(&[f32], &[f32], usize) -> Vec<f32>,
) -> Option<Tensor<Flex, 2>> {
    match (f32_buffer(a.clone()), f32_buffer(b.clone())) {
        (Some((a, dims)), Some((b, _))) => {
            Some(tensor(kernel(a.storage(), b.storage(), dims[1]), dims))
        }
        _ => None,
    }
}

/// The gradients with respect to `a` and `b`, in their shapes, that `kernel` computes from
/// the `f32` buffers of `a`, `b` and `grad`; `None` when any is in another dtype.
fn gradients_on_f32<const D: usize>(
    a: &Tensor<Flex, 2>,
    b: &Tensor<Flex, D>,
    grad: &Tensor<Flex, 2>,
    kernel: impl FnOnce(&[f32], &[f32], &[f32]) -> (Vec<f32>, Vec<f32>),
) -> Option<(Tensor<Flex, 2>, Tensor<Flex, D>)> {
    let buffers = (
        f32_buffer(a.clone()),
        f32_buffer(b.clone()),
        f32_buffer(grad.clone()),
    );
    match buffers {
        (Some((a, a_dims)), Some((b, b_dims)), Some((g, _))) => {
            let (d_a, d_b) = kernel(a.storage(), b.storage(), g.storage());
            Some((tensor(d_a, a_dims), tensor(d_b, b_dims)))
        }
        _ => None,
    }
}

fn tensor<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::from_data(
        TensorData::new(values, dims),
    )))
}

impl KernelBackend for Flex {
    fn matmul<const D: usize>(lhs: Tensor<Self, D>, rhs: Tensor<Self, D>) -> Tensor<Self, D> {
        let numerics = profile::numerics();
        let (l, r) = (
            lhs.clone().into_primitive().tensor(),
            rhs.clone().into_primitive().tensor(),
        );
        let out = super::gemm::matmul(&l, &r, numerics).or_else(|| match numerics {
            // A layout the routine does not read (a negative stride) is copied, never
            // handed to burn's product, whose bits follow the CPU.
            Numerics::Portable => {
                super::gemm::matmul(&l.to_contiguous(), &r.to_contiguous(), numerics)
            }
            Numerics::Native => None,
        });
        match out {
            Some(out) => Tensor::from_primitive(TensorPrimitive::Float(out)),
            None => lhs.matmul(rhs),
        }
    }

    fn sum<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, 1> {
        match f32_buffer(x.clone()) {
            Some((values, _)) => tensor(vec![cpu::sum(values.storage())], [1]),
            None => x.sum(),
        }
    }

    fn sum_rows(x: Tensor<Self, 2>) -> Tensor<Self, 1> {
        match f32_buffer(x.clone()) {
            Some((values, [rows, cols])) => tensor(cpu::sum_rows(values.storage(), cols), [rows]),
            None => composed::sum_rows(x),
        }
    }

    fn masked_softmax(
        scores: Tensor<Self, 2>,
        mask: Tensor<Self, 2>,
        scale: f32,
    ) -> Tensor<Self, 2> {
        on_f32_rows(&scores, &mask, |s, m, cols| {
            cpu::masked_softmax(s, m, scale, cols)
        })
        .unwrap_or_else(|| composed::masked_softmax(scores, mask, scale))
    }

    fn masked_softmax_backward(
        probs: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
        scale: f32,
    ) -> Tensor<Self, 2> {
        on_f32_rows(&probs, &grad, |p, g, cols| {
            cpu::masked_softmax_backward(p, g, scale, cols)
        })
        .unwrap_or_else(|| composed::masked_softmax_backward(probs, grad, scale))
    }

    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        on_f32_rows(&gate, &up, |g, u, _| cpu::swiglu(g, u))
            .unwrap_or_else(|| composed::swiglu(gate, up))
    }

    fn swiglu_backward(
        gate: Tensor<Self, 2>,
        up: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
    ) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        gradients_on_f32(&gate, &up, &grad, cpu::swiglu_backward)
            .unwrap_or_else(|| composed::swiglu_backward(gate, up, grad))
    }

    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        on_f32_rows(&x, &gamma, |x, w, _| cpu::rms_norm(x, w, eps))
            .unwrap_or_else(|| composed::rms_norm(x, gamma, eps))
    }

    fn rms_norm_backward(
        x: Tensor<Self, 2>,
        gamma: Tensor<Self, 1>,
        grad: Tensor<Self, 2>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        gradients_on_f32(&x, &gamma, &grad, |x, w, g| {
            cpu::rms_norm_backward(x, w, g, eps)
        })
        .unwrap_or_else(|| composed::rms_norm_backward(x, gamma, grad, eps))
    }

    fn rotary(x: Tensor<Self, 2>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 2> {
        rotary(x, cos, sin, false)
    }

    fn rotary_backward(
        grad: Tensor<Self, 2>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
    ) -> Tensor<Self, 2> {
        rotary(grad, cos, sin, true)
    }

    fn swap_middle(x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let [a, m, n, d] = x.dims();
        let p = x.clone().into_primitive().tensor();
        let layout = p.layout();
        if p.dtype() == DType::F32 && layout.has_positive_strides() {
            let s = layout.strides();
            let strides = [s[0], s[1], s[2], s[3]].map(|v| v.unsigned_abs());
            let out = cpu::swap_middle(p.storage(), layout.start_offset(), [a, m, n, d], strides);
            if let Some(out) = out {
                return tensor(out, [a, n, m, d]);
            }
        }
        composed::swap_middle(x)
    }

    fn target_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
        with_entropy: bool,
    ) -> TargetLogprobs<Self> {
        let [rows, cols] = logits.dims();
        match (f32_buffer(logits.clone()), indices(targets.clone(), cols)) {
            (Some((l, _)), Some(t)) => {
                let (logprobs, lse, entropy) =
                    cpu::target_logprobs(l.storage(), &t, cols, with_entropy);
                TargetLogprobs {
                    logprobs: tensor(logprobs, [rows]),
                    log_sum_exp: tensor(lse, [rows]),
                    entropy: entropy.map(|e| tensor(e, [rows])),
                }
            }
            _ => composed::target_logprobs(logits, targets, with_entropy),
        }
    }

    fn target_logprobs_backward(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
        log_sum_exp: Tensor<Self, 1>,
        grad: Tensor<Self, 1>,
    ) -> Tensor<Self, 2> {
        let [rows, cols] = logits.dims();
        let buffers = (
            f32_buffer(logits.clone()),
            indices(targets.clone(), cols),
            f32_buffer(log_sum_exp.clone()),
            f32_buffer(grad.clone()),
        );
        match buffers {
            (Some((l, _)), Some(t), Some((s, _)), Some((g, _))) => tensor(
                cpu::target_logprobs_backward(l.storage(), &t, s.storage(), g.storage(), cols),
                [rows, cols],
            ),
            _ => composed::target_logprobs_backward(logits, targets, log_sum_exp, grad),
        }
    }
}
