//! Model layer (used by execute): rotary position embedding in HuggingFace's
//! rotate-half convention (the two halves of a head are the rotated pairs).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::kernels::{rotary, KernelBackend};

/// cos and sin for the positions of one step, laid out like the projections they
/// rotate, `[batch, seq, heads, head_dim]`, for the query and the key head counts.
///
/// The tables are tiled across heads on the host so the products are same-shape,
/// contiguous element-wise ops: CPU backends run broadcasts over a middle axis through
/// a slow strided path.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    q: (Tensor<B, 4>, Tensor<B, 4>),
    k: (Tensor<B, 4>, Tensor<B, 4>),
}

/// Geometry of the rotation for one step.
#[derive(Debug, Clone, Copy)]
pub struct RopeShape {
    /// Rows in the batch.
    pub batch: usize,
    /// New tokens per row.
    pub seq: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of a head (even).
    pub head_dim: usize,
}

impl<B: Backend> RopeTables<B> {
    /// Tables for `positions` (`[batch, seq]` flattened), as HF computes them:
    /// `inv_freq[i] = theta^(-2i/d)`, angle = position × inv_freq, halves repeated.
    pub fn new(positions: &[usize], shape: RopeShape, theta: f64, device: &B::Device) -> Self {
        let d = shape.head_dim;
        let half = d / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / d as f64)) as f32)
            .collect();
        // cos/sin of each distinct position once (rows of a batch share positions), then
        // one row per position: [batch * seq, head_dim].
        let mut distinct = positions.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let angles = |p: usize| inv_freq.iter().map(move |f| p as f32 * f);
        let cos_of: Vec<f32> = distinct
            .iter()
            .flat_map(|&p| angles(p).map(f32::cos))
            .collect();
        let sin_of: Vec<f32> = distinct
            .iter()
            .flat_map(|&p| angles(p).map(f32::sin))
            .collect();
        let mut cos = Vec::with_capacity(positions.len() * d);
        let mut sin = Vec::with_capacity(positions.len() * d);
        for p in positions {
            let row = distinct.binary_search(p).unwrap_or_default();
            let span = row * half..(row + 1) * half;
            for _ in 0..2 {
                cos.extend_from_slice(&cos_of[span.clone()]);
                sin.extend_from_slice(&sin_of[span.clone()]);
            }
        }
        let tile = |rows: &[f32], heads: usize| -> Tensor<B, 4> {
            let mut out = Vec::with_capacity(rows.len() * heads);
            for row in rows.chunks_exact(d) {
                for _ in 0..heads {
                    out.extend_from_slice(row);
                }
            }
            let dims = [shape.batch, shape.seq, heads, d];
            Tensor::from_data(TensorData::new(out, dims), device)
        };
        let q = (tile(&cos, shape.heads), tile(&sin, shape.heads));
        let k = if shape.kv_heads == shape.heads {
            q.clone()
        } else {
            (tile(&cos, shape.kv_heads), tile(&sin, shape.kv_heads))
        };
        Self { q, k }
    }
}

impl<B: KernelBackend> RopeTables<B> {
    /// Rotates queries, `[batch, seq, heads, head_dim]`.
    pub fn apply_q(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        rotate(x, &self.q)
    }

    /// Rotates keys, `[batch, seq, kv_heads, head_dim]`.
    pub fn apply_k(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        rotate(x, &self.k)
    }
}

/// `x·cos + rotate_half(x)·sin`, where `rotate_half([a, b]) = [-b, a]` (one fused operation).
fn rotate<B: KernelBackend>(
    x: Tensor<B, 4>,
    (cos, sin): &(Tensor<B, 4>, Tensor<B, 4>),
) -> Tensor<B, 4> {
    rotary(x, cos.clone(), sin.clone())
}
