//! Model layer (used by execute): the portable profile's matrix product. Each output
//! element is `Σ_p a[i,p]·b[p,j]`, accumulated from zero by fused multiply-adds in the
//! order p = 0, 1, …, k−1: one chain per element, never split along k. The tiling, the
//! vector width and the threads only decide which elements are computed side by side, so
//! the bits are the same on every CPU with FMA (and with a software FMA where the
//! instruction set is capped). `gemm`, behind the native profile, splits k by the L1
//! cache's geometry and picks its kernels by the widest register, so its bits follow the
//! machine.
//!
//! The layout is the usual one of a packed product: `a`'s rows packed [`MR`] at a time
//! (once per product), `b`'s columns [`NR`] at a time in blocks of [`NC`] columns by
//! [`KC`] values of k (one block stays in a core's L2 while the row blocks use it), and an
//! `MR × NR` tile of accumulators held in registers for one chunk of k. Between chunks a
//! tile's chains wait in the output: an `f32` stored and loaded again is the same `f32`,
//! so each chain is the same sequence of operations as if it had stayed in registers.
//! Safe code on slices: the caller checked the bounds when it read the operands
//! (r1flow's `kernels/gemm.rs`).

use rayon::prelude::*;

use crate::simd::{vectorized, RowKernel};

/// Where one operand's matrices lie in its buffer: every element a product reads is in
/// `data` (the caller checked the furthest one).
pub struct Operand<'a> {
    pub data: &'a [f32],
    /// The offset of each batch entry's first element.
    pub starts: Vec<usize>,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// Rows of a tile: six rows of two AVX2 registers (or one AVX-512 register) make twelve
/// accumulators, which with the two loaded values of `b` and one broadcast of `a` fill
/// fifteen of the sixteen registers.
const MR: usize = 6;
/// Columns of a tile.
const NR: usize = 16;
/// Columns of `b` packed together.
const NC: usize = 256;
/// Rows per parallel task (a multiple of [`MR`]).
const MC: usize = 48;
/// Values of k per chunk: a chunk of a packed row panel (`MR × KC`, 6 KB) stays in L1 and
/// its block of `b` (`KC × NC`, 256 KB) in L2. Without chunks a long k — the weight
/// gradients', whose k is every token of the batch — streamed the whole block (2 MB at
/// k = 2,032) from memory again for every six rows.
const KC: usize = 256;

/// [`tile`] with its accumulators written out as `V` registers of `S` per row (`V ×
/// S::F32_LANES == NR`): lane l of register j is column `j·lanes + l`'s chain, the same
/// fused multiply-adds in the same order as [`tile`]'s, so the same bits. Written by hand
/// because LLVM, vectorising [`tile`] for AVX2, spilled some of its twelve accumulators
/// to the stack inside the loop over k.
#[inline(always)]
fn tile_in_registers<S: pulp::Simd, const V: usize>(
    simd: S,
    a: &[f32],
    b: &[f32],
    b_stride: usize,
    k: usize,
    init: &[[f32; NR]; MR],
) -> [[f32; NR]; MR] {
    let lanes = S::F32_LANES;
    let load = |values: &[f32]| -> S::f32s {
        pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(values))
    };
    let mut acc: [[S::f32s; V]; MR] = std::array::from_fn(|r| {
        std::array::from_fn(|j| load(&init[r][j * lanes..(j + 1) * lanes]))
    });
    for p in 0..k {
        let (Some(ap), Some(bp)) = (
            a.get(p * MR..p * MR + MR),
            b.get(p * b_stride..p * b_stride + NR),
        ) else {
            break;
        };
        let bv: [S::f32s; V] = std::array::from_fn(|j| load(&bp[j * lanes..(j + 1) * lanes]));
        for (row, &x) in acc.iter_mut().zip(ap) {
            let x = simd.splat_f32s(x);
            for (cell, &bj) in row.iter_mut().zip(&bv) {
                *cell = simd.mul_add_f32s(x, bj, *cell);
            }
        }
    }
    let mut out = [[0.0f32; NR]; MR];
    for (values, row) in out.iter_mut().zip(&acc) {
        for (chunk, cell) in values.chunks_exact_mut(lanes).zip(row) {
            chunk.copy_from_slice(pulp::bytemuck::cast_slice(std::slice::from_ref(cell)));
        }
    }
    out
}

/// `MR × NR` chains carried on from `init` over one chunk of k: `a` holds the chunk's k
/// groups of [`MR`] values (of one packed row panel), `b` its k groups of [`NR`] (of one
/// column panel).
#[inline(always)]
fn tile(
    a: &[f32],
    b: &[f32],
    b_stride: usize,
    k: usize,
    init: &[[f32; NR]; MR],
) -> [[f32; NR]; MR] {
    // Written as index loops over fixed-size arrays: LLVM keeps the accumulators in
    // registers and turns each row's sixteen chains into vector FMAs (lane l is column l's
    // chain, whatever the register width).
    let mut acc = *init;
    for p in 0..k {
        let (Ok(ap), Ok(bp)) = (
            <&[f32; MR]>::try_from(&a[p * MR..p * MR + MR]),
            <&[f32; NR]>::try_from(&b[p * b_stride..p * b_stride + NR]),
        ) else {
            break;
        };
        for r in 0..MR {
            let x = ap[r];
            for l in 0..NR {
                acc[r][l] = x.mul_add(bp[l], acc[r][l]);
            }
        }
    }
    acc
}

/// Rows `0..m` of matrix `start` of `a`, packed [`MR`] rows at a time: panel q holds, for
/// each p, the values `a[q·MR + r, p]` for r in 0..MR (zero past the last row).
fn pack_rows(a: &Operand<'_>, start: usize, m: usize, k: usize) -> Vec<f32> {
    let (rs, cs) = (a.row_stride, a.col_stride);
    let mut out = vec![0.0f32; m.div_ceil(MR) * MR * k];
    // Group by group, so that both the reads (a transposed `a`, as the weight gradients
    // have, is contiguous along the rows) and the writes move forward.
    for (q, panel) in out.chunks_exact_mut(MR * k).enumerate() {
        let height = MR.min(m - q * MR);
        let first = start + q * MR * rs;
        for (p, group) in panel.chunks_exact_mut(MR).enumerate() {
            let at = first + p * cs;
            for (r, value) in group[..height].iter_mut().enumerate() {
                *value = a.data[at + r * rs];
            }
        }
    }
    out
}

/// Columns `col0..col0 + nc` of matrix `start` of `b`, packed [`NR`] at a time: panel t
/// holds, for each p, the values `b[p, col0 + t·NR + l]` for l in 0..NR (zero past the
/// last column).
fn pack_cols(b: &Operand<'_>, start: usize, col0: usize, nc: usize, k: usize) -> Vec<f32> {
    let (rs, cs) = (b.row_stride, b.col_stride);
    let mut out = vec![0.0f32; nc.div_ceil(NR) * NR * k];
    for (t, panel) in out.chunks_exact_mut(NR * k).enumerate() {
        let width = NR.min(nc - t * NR);
        for (p, group) in panel.chunks_exact_mut(NR).enumerate() {
            let row = start + p * rs + (col0 + t * NR) * cs;
            for (l, v) in group[..width].iter_mut().enumerate() {
                *v = b.data[row + l * cs];
            }
        }
    }
    out
}

/// Columns `col0..col0 + cols` of one matrix of `b`, as the tiles read them: where `b`'s
/// rows are contiguous, each full panel of [`NR`] columns is read in place (measured
/// faster than packing, most of all for generation's few rows against a weight);
/// otherwise, and for a last partial panel, packed.
struct Columns<'a> {
    /// `b`'s buffer from column `col0` of row 0, and its row stride, when read in place.
    direct: Option<(&'a [f32], usize)>,
    /// The panels read in place (`0..in_place`); the rest are `packed`.
    in_place: usize,
    packed: Vec<f32>,
    cols: usize,
}

impl<'a> Columns<'a> {
    fn of(b: &Operand<'a>, start: usize, col0: usize, cols: usize, k: usize) -> Self {
        if b.col_stride == 1 {
            let in_place = cols / NR;
            let rest = cols - in_place * NR;
            Self {
                direct: Some((&b.data[start + col0..], b.row_stride)),
                in_place,
                packed: pack_cols(b, start, col0 + in_place * NR, rest, k),
                cols,
            }
        } else {
            Self {
                direct: None,
                in_place: 0,
                packed: pack_cols(b, start, col0, cols, k),
                cols,
            }
        }
    }

    /// Panel `t`: its values from column `t·NR` of row 0, and the stride between rows.
    #[inline(always)]
    fn panel(&self, t: usize, k: usize) -> (&[f32], usize) {
        match self.direct {
            Some((data, row_stride)) if t < self.in_place => (&data[t * NR..], row_stride),
            _ => (&self.packed[(t - self.in_place) * NR * k..], NR),
        }
    }
}

/// One block of the output over one chunk of k: `rows` rows (packed in `a`, each panel
/// holding `depth` groups, the chunk from group `p0`) by the columns of `b` (the chunk's
/// `k` rows), at column `col0` of `out`'s rows, `stride` apart. The first chunk starts
/// each chain from zero; the others carry on from the values in `out`.
struct Block<'a> {
    a: &'a [f32],
    depth: usize,
    p0: usize,
    b: &'a Columns<'a>,
    rows: usize,
    k: usize,
    out: &'a mut [f32],
    stride: usize,
    col0: usize,
}

impl Block<'_> {
    /// Every tile of the block, in the registers of `S`.
    #[inline(always)]
    fn tiles<S: pulp::Simd>(self, simd: S) {
        let panels = self.b.cols.div_ceil(NR);
        for (q, panel) in self.a.chunks_exact(MR * self.depth).enumerate() {
            let ap = &panel[self.p0 * MR..(self.p0 + self.k) * MR];
            let r0 = q * MR;
            let height = MR.min(self.rows - r0);
            for t in 0..panels {
                let c0 = t * NR;
                let width = NR.min(self.b.cols - c0);
                let (bp, b_stride) = self.b.panel(t, self.k);
                let mut init = [[0.0f32; NR]; MR];
                if self.p0 > 0 {
                    for (r, values) in init.iter_mut().enumerate().take(height) {
                        let at = (r0 + r) * self.stride + self.col0 + c0;
                        values[..width].copy_from_slice(&self.out[at..at + width]);
                    }
                }
                let acc = match S::F32_LANES {
                    8 => tile_in_registers::<S, 2>(simd, ap, bp, b_stride, self.k, &init),
                    16 => tile_in_registers::<S, 1>(simd, ap, bp, b_stride, self.k, &init),
                    _ => tile(ap, bp, b_stride, self.k, &init),
                };
                for (r, values) in acc.iter().enumerate().take(height) {
                    let at = (r0 + r) * self.stride + self.col0 + c0;
                    self.out[at..at + width].copy_from_slice(&values[..width]);
                }
            }
        }
    }
}

impl RowKernel for Block<'_> {
    #[inline(always)]
    fn run(self) {
        self.tiles(pulp::Scalar::new())
    }

    #[inline(always)]
    fn run_in<S: pulp::Simd>(self, simd: S) {
        self.tiles(simd)
    }
}

/// Batch entry `i` of `a · b` into `out` (`m × n`, row-major), split across threads when
/// `parallel` (by rows for tall products, by column blocks for short ones: generation's
/// few rows against a wide weight).
pub fn product(
    a: &Operand<'_>,
    b: &Operand<'_>,
    i: usize,
    (m, n, k): (usize, usize, usize),
    out: &mut [f32],
    parallel: bool,
) {
    assert_eq!(out.len(), m * n, "one output matrix");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let packed_a = pack_rows(a, a.starts[i], m, k);
    let col_blocks: Vec<usize> = (0..n).step_by(NC).collect();
    let chunks: Vec<(usize, usize)> = (0..k).step_by(KC).map(|p0| (p0, KC.min(k - p0))).collect();
    // Chunk `p0` of `b`'s rows: the same matrix from row p0 on.
    let b_from = |p0: usize| b.starts[i] + p0 * b.row_stride;
    let by_rows = m.div_ceil(MC) >= 2 * rayon::current_num_threads();
    if parallel && !by_rows && col_blocks.len() > 1 {
        let blocks: Vec<(usize, Vec<f32>)> = col_blocks
            .par_iter()
            .map(|&col0| {
                let cols = NC.min(n - col0);
                let mut block = vec![0.0f32; m * cols];
                for &(p0, len) in &chunks {
                    let columns = Columns::of(b, b_from(p0), col0, cols, len);
                    vectorized(Block {
                        a: &packed_a,
                        depth: k,
                        p0,
                        b: &columns,
                        rows: m,
                        k: len,
                        out: &mut block,
                        stride: cols,
                        col0: 0,
                    });
                }
                (col0, block)
            })
            .collect();
        for (col0, block) in blocks {
            let cols = NC.min(n - col0);
            for (row, values) in out.chunks_exact_mut(n).zip(block.chunks_exact(cols)) {
                row[col0..col0 + cols].copy_from_slice(values);
            }
        }
        return;
    }
    for &col0 in &col_blocks {
        let cols = NC.min(n - col0);
        for &(p0, len) in &chunks {
            let columns = Columns::of(b, b_from(p0), col0, cols, len);
            let run = |(rows_out, rows_a): (&mut [f32], &[f32])| {
                vectorized(Block {
                    a: rows_a,
                    depth: k,
                    p0,
                    b: &columns,
                    rows: rows_out.len() / n,
                    k: len,
                    out: rows_out,
                    stride: n,
                    col0,
                })
            };
            if parallel {
                out.par_chunks_mut(MC * n)
                    .zip(packed_a.par_chunks(MC * k))
                    .for_each(run);
            } else {
                out.chunks_mut(MC * n)
                    .zip(packed_a.chunks(MC * k))
                    .for_each(run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{set_simd_cap, SimdCap};

    /// The definition: each element's fused multiply-adds in the order of p, from zero.
    fn reference(a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc = a[i * k + p].mul_add(b[p * n + j], acc);
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
                (h % 20_011) as f32 / 997.0 - 10.0
            })
            .collect()
    }

    fn operand(data: &[f32], rows: usize, cols: usize, transposed: bool) -> Operand<'_> {
        let (row_stride, col_stride) = if transposed { (1, rows) } else { (cols, 1) };
        Operand {
            data,
            starts: vec![0],
            row_stride,
            col_stride,
        }
    }

    /// The product equals the definition bit for bit, for shapes that leave partial tiles
    /// and blocks, transposed operands, on one thread or split by rows or by columns.
    #[test]
    fn every_element_is_its_own_ordered_chain() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 5),
            (50, 300, 33),
            (3, 700, 64),
            (97, 20, 130),
            // k past one chunk, and past two with a partial last one.
            (13, 40, KC + 1),
            (50, 300, 2 * KC + 37),
            (2, 530, 3 * KC),
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = reference(&a, &b, (m, n, k));
            // The same matrices stored transposed, read through strides.
            let a_t: Vec<f32> = (0..m * k).map(|x| a[(x % m) * k + x / m]).collect();
            let b_t: Vec<f32> = (0..k * n).map(|x| b[(x % k) * n + x / k]).collect();
            for parallel in [false, true] {
                for (a_op, b_op) in [
                    (operand(&a, m, k, false), operand(&b, k, n, false)),
                    (operand(&a_t, m, k, true), operand(&b_t, k, n, true)),
                ] {
                    let mut got = vec![f32::NAN; m * n];
                    product(&a_op, &b_op, 0, (m, n, k), &mut got, parallel);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{m}×{k}·{k}×{n} (parallel: {parallel})");
                }
            }
        }
    }

    /// Capping the instruction set (down to scalar code) and changing the thread count
    /// leave every bit in place.
    #[test]
    fn the_bits_do_not_depend_on_the_vector_width_or_the_threads() {
        let (m, n, k) = (120, 530, KC + 77);
        let (a, b) = (values(m * k, 3), values(k * n, 4));
        let run = |cap: SimdCap, threads: usize| {
            set_simd_cap(cap);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            let mut out = vec![0.0f32; m * n];
            pool.install(|| {
                product(
                    &operand(&a, m, k, false),
                    &operand(&b, k, n, false),
                    0,
                    (m, n, k),
                    &mut out,
                    true,
                )
            });
            set_simd_cap(SimdCap::Widest);
            out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        };
        let widest = run(SimdCap::Widest, 2);
        assert_eq!(run(SimdCap::Scalar, 1), widest);
        assert_eq!(run(SimdCap::Avx2, 3), widest);
        assert_eq!(run(SimdCap::Widest, 1), widest);
    }
}
