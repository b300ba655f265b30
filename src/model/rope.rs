//! Model layer (used by execute): rotary position embedding in HuggingFace's
//! rotate-half convention (the two halves of a head are the rotated pairs).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// cos and sin for the positions of one step, `[batch, 1, seq, head_dim]` each.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> RopeTables<B> {
    /// Tables for `positions` (`[batch, seq]` flattened), as HF computes them:
    /// `inv_freq[i] = theta^(-2i/d)`, angle = position × inv_freq, halves repeated.
    pub fn new(
        positions: &[usize],
        batch: usize,
        seq: usize,
        head_dim: usize,
        theta: f64,
        device: &B::Device,
    ) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
            .collect();
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        for &p in positions {
            for _ in 0..2 {
                for f in &inv_freq {
                    let angle = p as f32 * f;
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let shape = [batch, 1, seq, head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`): `x·cos + rotate_half(x)·sin`,
    /// where `rotate_half([a, b]) = [-b, a]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, _, d] = x.dims();
        let half = d / 2;
        let first = x.clone().narrow(3, 0, half);
        let second = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}
