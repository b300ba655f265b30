//! Model layer (used by execute): the fused CPU kernels behind r1flow's `KernelBackend` on
//! burn's flex backend, on plain `f32` slices, and the ordered sums the training code
//! reduces tensors with.
//!
//! Each kernel does in one or two passes over its rows what the composed burn ops do in
//! five to ten (a scale, an add, a max, a subtraction, an exponential, a sum, a division —
//! each a tensor written and read back, each a node of the autodiff graph). The
//! exponential is a vectorisable polynomial ([`exp`]) instead of libm's scalar `expf`,
//! whose slow path for large negative inputs (masked attention scores) showed in profiles.
//!
//! Each kernel's loop is a [`RowKernel`] run through [`vectorized`], which compiles it for
//! the widest instruction set the CPU has (AVX-512 or AVX2 on x86-64) and picks that at
//! run time; everything it calls is `#[inline(always)]` so that it is compiled there too.
//! Rows are split among threads in chunks fixed by the sizes alone, and every reduction
//! runs in a fixed order, so the results do not depend on the number of threads.

use std::ops::Range;

use rayon::prelude::*;

use crate::simd::{vectorized, RowKernel};

/// Lanes the reductions accumulate in.
const LANES: usize = 16;
/// Elements per parallel chunk; below this a kernel runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;
/// Inputs below this give `exp(x) = 0` (`f32` underflows there).
const EXP_MIN: f32 = -87.3;
/// Inputs above this are clamped, so that `2^n` stays a normal `f32` (`e^88.3` ≈ 2e38).
const EXP_MAX: f32 = 88.3;

/// Chunks of whole rows: `rows` split into ranges of about [`PARALLEL_MIN`] elements of
/// `cols`, one range when the whole is smaller.
fn row_chunks(rows: usize, cols: usize) -> Vec<Range<usize>> {
    let per_chunk = (PARALLEL_MIN / cols.max(1)).max(1);
    (0..rows)
        .step_by(per_chunk)
        .map(|start| start..(start + per_chunk).min(rows))
        .collect()
}

/// Runs `f(rows, out_rows)` for each chunk of [`row_chunks`] (in parallel when there are
/// several); `out` holds `out_cols` values per row.
fn for_row_chunks(
    rows: usize,
    cols: usize,
    out: &mut [f32],
    out_cols: usize,
    f: impl Fn(Range<usize>, &mut [f32]) + Sync,
) {
    let chunks = row_chunks(rows, cols);
    if chunks.len() <= 1 {
        f(0..rows, out);
        return;
    }
    let per_chunk = chunks[0].len();
    out.par_chunks_mut(per_chunk * out_cols)
        .zip(chunks)
        .for_each(|(o, range)| f(range, o));
}

/// A row-wise map from two inputs of one shape to an output of that shape.
trait RowMap2: Sync {
    /// Fills `out`'s rows from `a`'s and `b`'s; implementations are `#[inline(always)]`.
    fn map(&self, a: &[f32], b: &[f32], out: &mut [f32]);
}

/// A [`RowMap2`] applied to one chunk of rows, as a [`RowKernel`].
struct Map2<'k, 'a, M>(&'k M, &'a [f32], &'a [f32], &'a mut [f32]);

impl<M: RowMap2> RowKernel for Map2<'_, '_, M> {
    #[inline(always)]
    fn run(self) {
        self.0.map(self.1, self.2, self.3)
    }
}

/// The rows of `a`, `b` and `out`, `cols` wide, side by side: what a [`RowMap2`] that
/// works row by row iterates over.
#[inline(always)]
fn rows2<'a>(
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
    cols: usize,
) -> impl Iterator<Item = ((&'a [f32], &'a [f32]), &'a mut [f32])> {
    a.chunks_exact(cols)
        .zip(b.chunks_exact(cols))
        .zip(out.chunks_exact_mut(cols))
}

/// `map` applied to `a` and `b` (`cols` wide), chunk by chunk of rows.
fn map_rows2<M: RowMap2>(a: &[f32], b: &[f32], cols: usize, map: &M) -> Vec<f32> {
    let mut out = vec![0.0f32; a.len()];
    let rows = a.len().checked_div(cols).unwrap_or(0);
    for_row_chunks(rows, cols, &mut out, cols, |r, out| {
        let span = r.start * cols..r.end * cols;
        vectorized(Map2(map, &a[span.clone()], &b[span], out))
    });
    out
}

/// `e^x` to within 2 ulp for `f32` (Cephes' `expf` polynomial on `x - n ln 2`, scaled by
/// `2^n` through the exponent bits), written without branches or calls so that loops over
/// it vectorise. Exactly 0 below [`EXP_MIN`], as libm's `expf` underflows there.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest through the float adder: 1.5 · 2^23 leaves no fraction bits.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.0e-1;
    let e = (p * r * r + r) + 1.0;
    // 2^n through the exponent bits. n is a whole number in [-126, 128], so n + 127 added
    // to ROUND lands in its mantissa's low bits: integer operations only, which vectorise
    // (a float-to-int conversion saturates in Rust and kept this loop scalar).
    let biased = (n + 127.0 + ROUND).to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(biased << 23);
    if x < EXP_MIN {
        0.0
    } else {
        e * scale
    }
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The largest element of `row` (`-inf` when empty).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// The sum of `f(a_i, b_i, c_i)`, accumulated lane-wise in a fixed order.
#[inline(always)]
fn row_sum3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0.0f32; LANES];
    let body = n / LANES * LANES;
    for ((ca, cb), cc) in a[..body]
        .chunks_exact(LANES)
        .zip(b[..body].chunks_exact(LANES))
        .zip(c[..body].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += f(ca[l], cb[l], cc[l]);
        }
    }
    let mut tail = 0.0f32;
    for i in body..n {
        tail += f(a[i], b[i], c[i]);
    }
    acc.iter().sum::<f32>() + tail
}

/// The sum of `f(a_i, b_i)`.
#[inline(always)]
fn row_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    row_sum3(a, b, b, |x, y, _| f(x, y))
}

/// The sum of `row`.
#[inline(always)]
fn row_sum(row: &[f32]) -> f32 {
    row_sum3(row, row, row, |x, _, _| x)
}

/// `row ← e^(row − max row) / Σ e^(row − max row)`, in place.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = row_max(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / row_sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

struct MaskedSoftmax {
    scale: f32,
    cols: usize,
}

impl RowMap2 for MaskedSoftmax {
    #[inline(always)]
    fn map(&self, scores: &[f32], mask: &[f32], out: &mut [f32]) {
        for ((s, m), o) in rows2(scores, mask, out, self.cols) {
            for ((o, &s), &m) in o.iter_mut().zip(s).zip(m) {
                *o = s * self.scale + m;
            }
            softmax_in_place(o);
        }
    }
}

/// `softmax(scores · scale + mask)` over rows of `cols`.
pub fn masked_softmax(scores: &[f32], mask: &[f32], scale: f32, cols: usize) -> Vec<f32> {
    map_rows2(scores, mask, cols, &MaskedSoftmax { scale, cols })
}

struct MaskedSoftmaxBackward {
    scale: f32,
    cols: usize,
}

impl RowMap2 for MaskedSoftmaxBackward {
    #[inline(always)]
    fn map(&self, probs: &[f32], grad: &[f32], out: &mut [f32]) {
        for ((p, g), o) in rows2(probs, grad, out, self.cols) {
            let dot = row_sum2(p, g, |p, g| p * g);
            for ((o, &p), &g) in o.iter_mut().zip(p).zip(g) {
                *o = self.scale * p * (g - dot);
            }
        }
    }
}

/// The gradient of [`masked_softmax`] with respect to the scores: `scale · p ⊙ (g − ⟨g, p⟩)`.
pub fn masked_softmax_backward(probs: &[f32], grad: &[f32], scale: f32, cols: usize) -> Vec<f32> {
    map_rows2(probs, grad, cols, &MaskedSoftmaxBackward { scale, cols })
}

struct Swiglu;

impl RowMap2 for Swiglu {
    #[inline(always)]
    fn map(&self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = g * sigmoid(g) * u;
        }
    }
}

/// SwiGLU's product `silu(gate) ⊙ up`.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    map_rows2(gate, up, 1, &Swiglu)
}

struct SwigluBackwardValues<'a> {
    gate: &'a [f32],
    up: &'a [f32],
    grad: &'a [f32],
    d_gate: &'a mut [f32],
    d_up: &'a mut [f32],
}

impl RowKernel for SwigluBackwardValues<'_> {
    #[inline(always)]
    fn run(self) {
        // d gate = g · up · σ(x)(1 + x(1 − σ(x))), d up = g · x σ(x), one pass for both.
        let values = self.gate.iter().zip(self.up).zip(self.grad);
        for ((((&x, &u), &g), dg), du) in
            values.zip(self.d_gate.iter_mut()).zip(self.d_up.iter_mut())
        {
            let s = sigmoid(x);
            *dg = g * u * s * (1.0 + x * (1.0 - s));
            *du = g * x * s;
        }
    }
}

/// The gradients of [`swiglu`] with respect to `gate` and `up`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = gate.len();
    let mut d_gate = vec![0.0f32; n];
    let mut d_up = vec![0.0f32; n];
    let chunks = row_chunks(n, 1);
    let per_chunk = chunks.first().map_or(1, |c| c.len().max(1));
    d_gate
        .par_chunks_mut(per_chunk)
        .zip(d_up.par_chunks_mut(per_chunk))
        .zip(chunks)
        .for_each(|((dg, du), r)| {
            vectorized(SwigluBackwardValues {
                gate: &gate[r.clone()],
                up: &up[r.clone()],
                grad: &grad[r],
                d_gate: dg,
                d_up: du,
            })
        });
    (d_gate, d_up)
}

/// `1 / sqrt(mean(x²) + eps)` of one row.
#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = row_sum2(row, row, |a, b| a * b) / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

struct RmsNormRows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    out: &'a mut [f32],
    eps: f32,
}

impl RowKernel for RmsNormRows<'_> {
    #[inline(always)]
    fn run(self) {
        let cols = self.gamma.len();
        for (x, o) in self
            .x
            .chunks_exact(cols)
            .zip(self.out.chunks_exact_mut(cols))
        {
            let r = inv_rms(x, self.eps);
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(self.gamma) {
                *o = x * r * w;
            }
        }
    }
}

/// RMSNorm over rows of `gamma.len()`: `x / sqrt(mean(x²) + eps) ⊙ gamma`.
pub fn rms_norm(x: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let cols = gamma.len();
    let mut out = vec![0.0f32; x.len()];
    let rows = x.len().checked_div(cols).unwrap_or(0);
    for_row_chunks(rows, cols, &mut out, cols, |r, out| {
        vectorized(RmsNormRows {
            x: &x[r.start * cols..r.end * cols],
            gamma,
            out,
            eps,
        })
    });
    out
}

struct RmsNormBackwardRows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    grad: &'a [f32],
    d_x: &'a mut [f32],
    /// This chunk's share of d gamma, added to.
    d_gamma: &'a mut [f32],
    eps: f32,
}

impl RowKernel for RmsNormBackwardRows<'_> {
    #[inline(always)]
    fn run(self) {
        let cols = self.gamma.len();
        let rows = self
            .x
            .chunks_exact(cols)
            .zip(self.grad.chunks_exact(cols))
            .zip(self.d_x.chunks_exact_mut(cols));
        for ((x, g), dx) in rows {
            let r = inv_rms(x, self.eps);
            // x̂ = x r; d x = r (g ⊙ γ − x̂ · mean(g ⊙ γ ⊙ x̂))
            let mean = row_sum3(x, g, self.gamma, |x, g, w| x * g * w) * r * r / cols as f32;
            for (((dx, &x), &g), &w) in dx.iter_mut().zip(x).zip(g).zip(self.gamma) {
                *dx = r * (g * w - x * mean);
            }
            for ((dg, &x), &g) in self.d_gamma.iter_mut().zip(x).zip(g) {
                *dg += g * x * r;
            }
        }
    }
}

/// The gradients of [`rms_norm`] with respect to `x` and `gamma`.
pub fn rms_norm_backward(x: &[f32], gamma: &[f32], grad: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let cols = gamma.len();
    let rows = x.len().checked_div(cols).unwrap_or(0);
    let chunks = row_chunks(rows, cols);
    let mut d_x = vec![0.0f32; x.len()];
    // Each chunk adds its rows' share of d gamma into its own partial sum; the partial
    // sums are added in chunk order.
    let mut partials = vec![0.0f32; chunks.len() * cols];
    let per_chunk = chunks.first().map_or(1, |c| c.len().max(1));
    d_x.par_chunks_mut(per_chunk * cols.max(1))
        .zip(partials.par_chunks_mut(cols.max(1)))
        .zip(chunks)
        .for_each(|((dx, dg), r)| {
            let span = r.start * cols..r.end * cols;
            vectorized(RmsNormBackwardRows {
                x: &x[span.clone()],
                gamma,
                grad: &grad[span],
                d_x: dx,
                d_gamma: dg,
                eps,
            })
        });
    let mut d_gamma = vec![0.0f32; cols];
    for p in partials.chunks_exact(cols.max(1)) {
        for (d, v) in d_gamma.iter_mut().zip(p) {
            *d += v;
        }
    }
    (d_x, d_gamma)
}

struct RotaryRows<'a> {
    x: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
    out: &'a mut [f32],
    cols: usize,
    backward: bool,
}

impl RowKernel for RotaryRows<'_> {
    #[inline(always)]
    fn run(self) {
        let half = self.cols / 2;
        let rows = self
            .x
            .chunks_exact(self.cols)
            .zip(self.cos.chunks_exact(self.cols))
            .zip(self.sin.chunks_exact(self.cols))
            .zip(self.out.chunks_exact_mut(self.cols));
        for (((x, c), s), o) in rows {
            let (x1, x2) = x.split_at(half);
            let (c1, c2) = c.split_at(half);
            let (s1, s2) = s.split_at(half);
            let (o1, o2) = o.split_at_mut(half);
            if self.backward {
                for j in 0..half {
                    o1[j] = x1[j] * c1[j] + x2[j] * s2[j];
                    o2[j] = x2[j] * c2[j] - x1[j] * s1[j];
                }
            } else {
                for j in 0..half {
                    o1[j] = x1[j] * c1[j] - x2[j] * s1[j];
                    o2[j] = x2[j] * c2[j] + x1[j] * s2[j];
                }
            }
        }
    }
}

/// Rotary position embedding in the rotate-half convention, over rows of `cols` (one head
/// of one position each): `x ⊙ cos + rotate_half(x) ⊙ sin`, `rotate_half([a, b]) = [−b, a]`.
/// With `backward`, the gradient with respect to `x` of that map applied to `x = grad`:
/// `g ⊙ cos + rotate_halfᵀ(g ⊙ sin)`, `rotate_halfᵀ([u, v]) = [v, −u]`.
pub fn rotary(x: &[f32], cos: &[f32], sin: &[f32], cols: usize, backward: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    let rows = x.len().checked_div(cols).unwrap_or(0);
    for_row_chunks(rows, cols, &mut out, cols, |r, out| {
        let span = r.start * cols..r.end * cols;
        vectorized(RotaryRows {
            x: &x[span.clone()],
            cos: &cos[span.clone()],
            sin: &sin[span],
            out,
            cols,
            backward,
        })
    });
    out
}

struct TargetLogprobRows<'a> {
    logits: &'a [f32],
    targets: &'a [usize],
    /// Per row: the log-probability, the log-sum-exp, the entropy.
    out: &'a mut [f32],
    /// Scratch of one row.
    row: Vec<f32>,
    with_entropy: bool,
}

impl RowKernel for TargetLogprobRows<'_> {
    #[inline(always)]
    fn run(mut self) {
        let cols = self.row.len();
        let rows = self
            .logits
            .chunks_exact(cols)
            .zip(self.targets)
            .zip(self.out.chunks_exact_mut(3));
        for ((logits, &t), o) in rows {
            let max = row_max(logits);
            for (e, &x) in self.row.iter_mut().zip(logits) {
                *e = exp(x - max);
            }
            let sum = row_sum(&self.row);
            let lse = max + sum.ln();
            o[0] = logits[t] - lse;
            o[1] = lse;
            if self.with_entropy {
                // H = lse − Σ p x
                o[2] = lse - row_sum2(&self.row, logits, |e, x| e * x) / sum;
            }
        }
    }
}

/// Per row of `logits` (`cols` wide): the log-probability of `targets[row]` under the
/// row's softmax, the row's log-sum-exp, and, when asked, its entropy.
pub fn target_logprobs(
    logits: &[f32],
    targets: &[usize],
    cols: usize,
    with_entropy: bool,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let rows = targets.len();
    let mut out = vec![0.0f32; 3 * rows];
    for_row_chunks(rows, cols, &mut out, 3, |r, out| {
        vectorized(TargetLogprobRows {
            logits: &logits[r.start * cols..r.end * cols],
            targets: &targets[r],
            out,
            row: vec![0.0; cols],
            with_entropy,
        })
    });
    let pick = |k: usize| out.iter().skip(k).step_by(3).copied().collect::<Vec<f32>>();
    (pick(0), pick(1), with_entropy.then(|| pick(2)))
}

struct TargetLogprobBackwardRows<'a> {
    logits: &'a [f32],
    targets: &'a [usize],
    log_sum_exp: &'a [f32],
    grad: &'a [f32],
    out: &'a mut [f32],
    cols: usize,
}

impl RowKernel for TargetLogprobBackwardRows<'_> {
    #[inline(always)]
    fn run(self) {
        let rows = self
            .logits
            .chunks_exact(self.cols)
            .zip(self.targets)
            .zip(self.log_sum_exp)
            .zip(self.grad)
            .zip(self.out.chunks_exact_mut(self.cols));
        for ((((logits, &t), &lse), &g), o) in rows {
            for (o, &x) in o.iter_mut().zip(logits) {
                *o = -g * exp(x - lse);
            }
            o[t] += g;
        }
    }
}

/// The gradient of [`target_logprobs`]' log-probabilities with respect to the logits:
/// `g_row · (onehot(target) − softmax(row))`.
pub fn target_logprobs_backward(
    logits: &[f32],
    targets: &[usize],
    lse: &[f32],
    grad: &[f32],
    cols: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; logits.len()];
    for_row_chunks(targets.len(), cols, &mut out, cols, |r, out| {
        vectorized(TargetLogprobBackwardRows {
            logits: &logits[r.start * cols..r.end * cols],
            targets: &targets[r.clone()],
            log_sum_exp: &lse[r.clone()],
            grad: &grad[r],
            out,
            cols,
        })
    });
    out
}

/// The elements of a 4-D tensor `[a, m, n, d]` stored at `offset` with `strides` in
/// `storage`, written contiguously in `[a, n, m, d]` order (the middle axes swapped: a
/// batch's positions and heads). `None` when the strides reach outside `storage`.
pub fn swap_middle(
    storage: &[f32],
    offset: usize,
    dims: [usize; 4],
    strides: [usize; 4],
) -> Option<Vec<f32>> {
    let [a, m, n, d] = dims;
    let total = a * m * n * d;
    if total == 0 {
        return Some(Vec::new());
    }
    let last = offset
        + dims
            .iter()
            .zip(&strides)
            .map(|(&k, &s)| (k - 1) * s)
            .sum::<usize>();
    if last >= storage.len() {
        return None;
    }
    let mut out = vec![0.0f32; total];
    // One output block per (a, n): m rows of d values.
    let block = m * d;
    let copy = |index: usize, out: &mut [f32]| {
        let (ai, ni) = (index / n, index % n);
        let base = offset + ai * strides[0] + ni * strides[2];
        for (mi, row) in out.chunks_exact_mut(d).enumerate() {
            let start = base + mi * strides[1];
            if strides[3] == 1 {
                row.copy_from_slice(&storage[start..start + d]);
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = storage[start + j * strides[3]];
                }
            }
        }
    };
    if total < PARALLEL_MIN {
        for (index, out) in out.chunks_exact_mut(block).enumerate() {
            copy(index, out);
        }
    } else {
        out.par_chunks_exact_mut(block)
            .enumerate()
            .for_each(|(index, out)| copy(index, out));
    }
    Some(out)
}

/// Elements per chunk of [`sum`]: each chunk is summed lane-wise, and the chunks' sums
/// are added in order, so neither the thread count nor the vector width moves a bit.
const SUM_CHUNK: usize = 1 << 16;

/// Fills `out[i]` with the sum of chunk `i` of `values`.
struct ChunkSums<'a> {
    values: &'a [f32],
    out: &'a mut [f32],
}

impl RowKernel for ChunkSums<'_> {
    #[inline(always)]
    fn run(self) {
        for (chunk, o) in self.values.chunks(SUM_CHUNK).zip(self.out.iter_mut()) {
            *o = row_sum(chunk);
        }
    }
}

/// `Σ values`, in an order fixed by the length alone.
pub fn sum(values: &[f32]) -> f32 {
    let mut partial = vec![0.0f32; values.len().div_ceil(SUM_CHUNK)];
    if partial.len() <= 1 {
        vectorized(ChunkSums {
            values,
            out: &mut partial,
        });
    } else {
        partial
            .par_iter_mut()
            .zip(values.par_chunks(SUM_CHUNK))
            .for_each(|(o, chunk)| {
                vectorized(ChunkSums {
                    values: chunk,
                    out: std::slice::from_mut(o),
                })
            });
    }
    partial.iter().fold(0.0f32, |total, &p| total + p)
}

/// Fills `out[r]` with the sum of row `r` of `values`.
struct RowSums<'a> {
    values: &'a [f32],
    out: &'a mut [f32],
    cols: usize,
}

impl RowKernel for RowSums<'_> {
    #[inline(always)]
    fn run(self) {
        for (row, o) in self.values.chunks_exact(self.cols).zip(self.out.iter_mut()) {
            *o = row_sum(row);
        }
    }
}

/// The sum of each row of `values` (`cols` wide), each in the order of [`row_sum`].
pub fn sum_rows(values: &[f32], cols: usize) -> Vec<f32> {
    let rows = values.len().checked_div(cols).unwrap_or(0);
    let mut out = vec![0.0f32; rows];
    for_row_chunks(rows, cols, &mut out, 1, |r, out| {
        vectorized(RowSums {
            values: &values[r.start * cols..r.end * cols],
            out,
            cols,
        })
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn exp_matches_libm_and_underflows_to_zero() {
        let mut x = -87.0f32;
        while x < 88.3 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 2.5e-7 * want,
                "exp({x}) = {got}, libm {want}"
            );
            x += 0.013;
        }
        assert_eq!(exp(-1.0e9), 0.0);
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(1.0e9).is_finite());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_masked_entries_are_zero() {
        let cols = 37;
        let scores: Vec<f32> = (0..cols * 5).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let mask: Vec<f32> = (0..cols * 5)
            .map(|i| if i % cols > i / cols * 7 { -1.0e9 } else { 0.0 })
            .collect();
        let p = masked_softmax(&scores, &mask, 0.5, cols);
        for (r, row) in p.chunks(cols).enumerate() {
            let sum: f32 = row.iter().sum();
            assert!(close(sum, 1.0, 1e-6), "row {r} sums to {sum}");
            for (j, &v) in row.iter().enumerate() {
                if j > r * 7 {
                    assert_eq!(v, 0.0);
                }
            }
            // Against the textbook formula in f64.
            let t: Vec<f64> = (0..cols)
                .map(|j| scores[r * cols + j] as f64 * 0.5 + mask[r * cols + j] as f64)
                .collect();
            let m = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = t.iter().map(|v| (v - m).exp()).sum();
            for j in 0..cols {
                let want = ((t[j] - m).exp() / z) as f32;
                assert!(close(row[j], want, 1e-6), "{} vs {want}", row[j]);
            }
        }
    }

    /// Central differences of `f` at `x` along each coordinate.
    fn numeric_grad(x: &[f32], f: impl Fn(&[f32]) -> f64) -> Vec<f32> {
        let h = 1e-3f32;
        (0..x.len())
            .map(|i| {
                let mut p = x.to_vec();
                let mut m = x.to_vec();
                p[i] += h;
                m[i] -= h;
                ((f(&p) - f(&m)) / (2.0 * h as f64)) as f32
            })
            .collect()
    }

    fn weights(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 2654435761) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn gradients_match_finite_differences() {
        let cols = 11;
        let x = weights(3 * cols, 1);
        let w = weights(3 * cols, 2);
        let mask = vec![0.0f32; 3 * cols];
        // L = Σ w ⊙ f(x) for each kernel f; its gradient is the backward of w.
        let dot = |y: &[f32]| y.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum::<f64>();

        let p = masked_softmax(&x, &mask, 0.7, cols);
        let got = masked_softmax_backward(&p, &w, 0.7, cols);
        let want = numeric_grad(&x, |x| dot(&masked_softmax(x, &mask, 0.7, cols)));
        for (g, n) in got.iter().zip(&want) {
            assert!((g - n).abs() < 2e-3, "softmax {g} vs {n}");
        }

        let up = weights(3 * cols, 3);
        let (d_gate, d_up) = swiglu_backward(&x, &up, &w);
        let want_gate = numeric_grad(&x, |g| dot(&swiglu(g, &up)));
        let want_up = numeric_grad(&up, |u| dot(&swiglu(&x, u)));
        for (g, n) in d_gate
            .iter()
            .zip(&want_gate)
            .chain(d_up.iter().zip(&want_up))
        {
            assert!((g - n).abs() < 2e-3, "swiglu {g} vs {n}");
        }

        let gamma = weights(cols, 4);
        let (dx, d_gamma) = rms_norm_backward(&x, &gamma, &w, 1e-6);
        let want_x = numeric_grad(&x, |x| dot(&rms_norm(x, &gamma, 1e-6)));
        let want_gamma = numeric_grad(&gamma, |g| dot(&rms_norm(&x, g, 1e-6)));
        for (g, n) in dx
            .iter()
            .zip(&want_x)
            .chain(d_gamma.iter().zip(&want_gamma))
        {
            assert!((g - n).abs() < 2e-3, "rms_norm {g} vs {n}");
        }

        let targets = [3usize, 0, 10];
        let g3 = [0.5f32, -1.0, 2.0];
        let (_, lse, _) = target_logprobs(&x, &targets, cols, false);
        let got = target_logprobs_backward(&x, &targets, &lse, &g3, cols);
        let want = numeric_grad(&x, |x| {
            let (lp, _, _) = target_logprobs(x, &targets, cols, false);
            lp.iter().zip(&g3).map(|(a, b)| (a * b) as f64).sum()
        });
        for (g, n) in got.iter().zip(&want) {
            assert!((g - n).abs() < 2e-3, "log-probs {g} vs {n}");
        }
    }

    #[test]
    fn rotary_backward_is_the_transpose_of_rotary() {
        // ⟨w, R x⟩ = ⟨Rᵀ w, x⟩ for the linear map R of each row.
        let cols = 8;
        let (x, w) = (weights(3 * cols, 9), weights(3 * cols, 10));
        let angles = weights(3 * cols, 11);
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let rx = rotary(&x, &cos, &sin, cols, false);
        let rtw = rotary(&w, &cos, &sin, cols, true);
        let lhs: f32 = w.iter().zip(&rx).map(|(a, b)| a * b).sum();
        let rhs: f32 = rtw.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
        // Row 0, element 0: x0 cos0 − x4 sin0.
        assert!((rx[0] - (x[0] * cos[0] - x[4] * sin[0])).abs() < 1e-6);
        assert!((rx[4] - (x[4] * cos[4] + x[0] * sin[4])).abs() < 1e-6);
    }

    #[test]
    fn swap_middle_reads_any_strides() {
        // A [2, 3, 4, 5] tensor stored as its transpose in the last two axes.
        let dims = [2usize, 3, 4, 5];
        let storage: Vec<f32> = (0..120).map(|v| v as f32).collect();
        // Logical [a, m, n, d] element at storage a·60 + m·20 + d·4 + n.
        let strides = [60usize, 20, 1, 4];
        let out = swap_middle(&storage, 0, dims, strides).expect("in bounds");
        let mut want = Vec::new();
        for a in 0..2 {
            for n in 0..4 {
                for m in 0..3 {
                    for d in 0..5 {
                        want.push((a * 60 + m * 20 + d * 4 + n) as f32);
                    }
                }
            }
        }
        assert_eq!(out, want);
        assert!(swap_middle(&storage, 1, dims, strides).is_none());
    }

    #[test]
    fn logprobs_and_entropy_match_the_definitions() {
        let cols = 19;
        let x: Vec<f32> = weights(2 * cols, 5).iter().map(|v| v * 4.0).collect();
        let (lp, _, ent) = target_logprobs(&x, &[2, 18], cols, true);
        let ent = ent.expect("asked for");
        for (r, &t) in [2usize, 18].iter().enumerate() {
            let row = &x[r * cols..(r + 1) * cols];
            let z: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            let p: Vec<f64> = row.iter().map(|&v| (v as f64).exp() / z).collect();
            assert!(close(lp[r], p[t].ln() as f32, 1e-5));
            let h: f64 = -p.iter().map(|p| p * p.ln()).sum::<f64>();
            assert!(close(ent[r], h as f32, 1e-5), "{} vs {h}", ent[r]);
        }
    }

    #[test]
    fn results_do_not_depend_on_the_split_into_chunks() {
        // Large enough to run in parallel chunks, compared with the rows one at a time.
        let cols = 100;
        let rows = 2 * PARALLEL_MIN / cols + 3;
        let x = weights(rows * cols, 6);
        let gamma = weights(cols, 7);
        let g = weights(rows * cols, 8);
        let (dx, d_gamma) = rms_norm_backward(&x, &gamma, &g, 1e-5);
        let mut want_gamma = vec![0.0f32; cols];
        for r in 0..rows {
            let span = r * cols..(r + 1) * cols;
            let (dx_r, dg_r) = rms_norm_backward(&x[span.clone()], &gamma, &g[span.clone()], 1e-5);
            assert_eq!(&dx[span], &dx_r[..]);
            for (w, v) in want_gamma.iter_mut().zip(&dg_r) {
                *w += v;
            }
        }
        for (a, b) in d_gamma.iter().zip(&want_gamma) {
            assert!(close(*a, *b, 1e-4));
        }
        let p = masked_softmax(&x, &g, 0.3, cols);
        assert_eq!(
            &p[..cols],
            &masked_softmax(&x[..cols], &g[..cols], 0.3, cols)[..]
        );
    }
}
