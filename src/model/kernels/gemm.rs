//! Model layer (used by execute): the CPU's matrix product, `[…, m, k] · […, k, n]` on
//! burn flex's `f32` tensors, calling the `gemm` routine that burn-flex itself calls, with
//! the same arguments and the same threading decisions, so the results are the same bits.
//!
//! What differs is the output buffer. burn-flex allocates it as a zeroed byte vector and
//! then copies it into an aligned one (`FlexTensor::empty`): profiles of a training step
//! put that allocation, zeroing and copy at about a tenth of the step, more than all the
//! fused kernels together. Here the routine writes into a fresh `Vec<f32>` that becomes
//! the tensor's buffer as it is.
//!
//! In the portable profile the same threading decisions call the ordered product of
//! `r1flow_kernels::ordered_matmul` instead, whose bits do not depend on the CPU.
//!
//! This is the one module of r1flow allowed `unsafe` code: `gemm::gemm` takes raw
//! pointers and strides. Every pointer handed to it is checked first: the strides are
//! non-negative and the furthest element each matrix reaches lies inside its buffer.

#![cfg(feature = "flex")]
#![allow(unsafe_code)]

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use r1flow_kernels::ordered_matmul;

use crate::manifest::Numerics;

/// burn-flex's thresholds (ops/matmul.rs), kept equal so that every product is threaded
/// as burn-flex would thread it: one product of at least this many multiply-adds is
/// split across threads by `gemm`...
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
/// ...and a batch of smaller ones, this many in all, is split across threads by matrix.
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// Where one operand's matrices lie in its buffer.
struct Operand<'a> {
    data: &'a [f32],
    /// The offset of each batch entry's first element.
    starts: Vec<usize>,
    /// Non-negative (checked by [`Operand::of`]).
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Operand<'a> {
    /// The same matrices as the ordered product reads them.
    fn ordered(&self) -> ordered_matmul::Operand<'a> {
        ordered_matmul::Operand {
            data: self.data,
            starts: self.starts.clone(),
            row_stride: self.row_stride.unsigned_abs(),
            col_stride: self.col_stride.unsigned_abs(),
        }
    }
}

impl<'a> Operand<'a> {
    /// The operand's matrices of `rows × cols`, or `None` when its layout is not one this
    /// routine reads (another dtype, a negative stride) or would reach past its buffer.
    fn of(t: &'a FlexTensor, rows: usize, cols: usize) -> Option<Self> {
        if t.dtype() != DType::F32 {
            return None;
        }
        let layout = t.layout();
        let dims = layout.shape().to_vec();
        let strides = layout.strides();
        if strides.iter().any(|s| *s < 0) {
            return None;
        }
        let strides: Vec<usize> = strides.iter().map(|s| s.unsigned_abs()).collect();
        let d = dims.len();
        let data: &[f32] = t.storage();
        let furthest_in_matrix = (rows - 1) * strides[d - 2] + (cols - 1) * strides[d - 1];
        let mut starts = vec![layout.start_offset()];
        for axis in 0..d - 2 {
            let (size, stride) = (dims[axis], strides[axis]);
            starts = starts
                .iter()
                .flat_map(|s| (0..size).map(move |i| s + i * stride))
                .collect();
        }
        let furthest = starts.iter().max()? + furthest_in_matrix;
        (furthest < data.len()).then_some(Self {
            data,
            starts,
            row_stride: strides[d - 2] as isize,
            col_stride: strides[d - 1] as isize,
        })
    }
}

/// `lhs · rhs` over the last two axes, batched over the leading ones, or `None` when the
/// operands are not `f32` matrices of matching shapes that this routine reads (the
/// caller then falls back to burn's own product). Batch axes must be equal, not
/// broadcast. `numerics` picks the routine: `gemm` (native) or the ordered product
/// (portable), threaded by the same decisions.
pub(super) fn matmul(lhs: &FlexTensor, rhs: &FlexTensor, numerics: Numerics) -> Option<FlexTensor> {
    let lhs_dims = lhs.layout().shape().to_vec();
    let rhs_dims = rhs.layout().shape().to_vec();
    let d = lhs_dims.len();
    if d < 2 || rhs_dims.len() != d || lhs_dims[..d - 2] != rhs_dims[..d - 2] {
        return None;
    }
    let (m, k, n) = (lhs_dims[d - 2], lhs_dims[d - 1], rhs_dims[d - 1]);
    if rhs_dims[d - 2] != k {
        return None;
    }
    let mut out_dims = lhs_dims[..d - 2].to_vec();
    out_dims.extend([m, n]);
    let batch: usize = lhs_dims[..d - 2].iter().product();
    let per_matrix = m * n;
    let mut out = vec![0.0f32; batch * per_matrix];
    if per_matrix > 0 && k > 0 && batch > 0 {
        let a = Operand::of(lhs, m, k)?;
        let b = Operand::of(rhs, k, n)?;
        let per_matrix_ops = m.saturating_mul(n).saturating_mul(k);
        let total_ops = batch.saturating_mul(per_matrix_ops);
        let prefer_batch_parallel = batch >= 4 && total_ops >= BATCH_PARALLEL_THRESHOLD;
        // Large products are split by gemm; otherwise a large enough batch is split by
        // matrix; otherwise everything runs on this thread.
        let split_by_gemm = per_matrix_ops >= PARALLEL_THRESHOLD && !prefer_batch_parallel;
        let portable = (numerics == Numerics::Portable).then(|| (a.ordered(), b.ordered()));
        let one = |i: usize, out: &mut [f32], split: bool| {
            if let Some((a, b)) = &portable {
                ordered_matmul::product(a, b, i, (m, n, k), out, split);
            } else {
                let parallelism = if split {
                    gemm::Parallelism::Rayon(0)
                } else {
                    gemm::Parallelism::None
                };
                product(&a, &b, i, (m, n, k), out, parallelism);
            }
        };
        if !split_by_gemm && total_ops >= BATCH_PARALLEL_THRESHOLD && batch > 1 {
            out.par_chunks_mut(per_matrix)
                .enumerate()
                .for_each(|(i, o)| one(i, o, false));
        } else {
            out.chunks_mut(per_matrix)
                .enumerate()
                .for_each(|(i, o)| one(i, o, split_by_gemm));
        }
    }
    Some(FlexTensor::from_data(TensorData::new(out, out_dims)))
}

/// Batch entry `i` of `a · b` into `out` (`m × n`, row-major), as burn-flex's `gemm_call`
/// computes it: `out = 1 · a·b`, the destination not read.
fn product(
    a: &Operand<'_>,
    b: &Operand<'_>,
    i: usize,
    (m, n, k): (usize, usize, usize),
    out: &mut [f32],
    parallelism: gemm::Parallelism,
) {
    assert_eq!(out.len(), m * n, "one output matrix");
    let (a_start, b_start) = (a.starts[i], b.starts[i]);
    // SAFETY: `Operand::of` checked that every element of both matrices, the furthest at
    // start + (rows − 1)·row_stride + (cols − 1)·col_stride with non-negative strides,
    // lies inside its buffer; `out` holds exactly m·n elements, written row-major (column
    // stride 1, row stride n). The destination is not read (`read_dst` false), and the
    // buffers outlive the call, which returns only when every thread it started is done.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(a_start),
            a.col_stride,
            a.row_stride,
            b.data.as_ptr().add(b_start),
            b.col_stride,
            b.row_stride,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
