//! Model layer (used by execute): grouped-query self-attention with rotary positions,
//! Qwen2's q/k/v biases and a KV cache for generation.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::kernels::{masked_softmax, matmul, swap_middle, KernelBackend};
use super::lora::Lora;
use super::projection::project_adapted;
use super::rope::RopeTables;

/// Cached keys and values of one layer: buffers of `[batch, kv_heads, capacity,
/// head_dim]` allocated at the first step, of which the first `len` keys are filled.
/// A step writes its keys into the buffers in place and attends to a view of the filled
/// part, instead of concatenating a new copy of every key so far at every decoded token.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    capacity: usize,
    len: usize,
    buffers: Option<(Tensor<B, 4>, Tensor<B, 4>)>,
}

impl<B: Backend> LayerKv<B> {
    /// An empty cache for up to `capacity` keys per row (it grows past that if asked).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            len: 0,
            buffers: None,
        }
    }

    /// Appends this step's keys and values (`[batch, kv_heads, seq, head_dim]`); returns
    /// every key and value so far, `[batch, kv_heads, len, head_dim]`.
    fn append(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, kvh, s, d] = k.dims();
        let end = self.len + s;
        let (mut keys, mut values) = match self.buffers.take() {
            Some((keys, values)) if end <= keys.dims()[2] => (keys, values),
            // Past the capacity (or the first step): a larger buffer, the filled part
            // copied over once.
            previous => {
                self.capacity = self.capacity.max(end).max(2 * self.len);
                let device = k.device();
                let empty = || Tensor::<B, 4>::zeros([b, kvh, self.capacity, d], &device);
                let (mut keys, mut values) = (empty(), empty());
                if let Some((old_k, old_v)) = previous {
                    let filled = [0..b, 0..kvh, 0..self.len, 0..d];
                    keys = keys.slice_assign(filled.clone(), old_k.narrow(2, 0, self.len));
                    values = values.slice_assign(filled, old_v.narrow(2, 0, self.len));
                }
                (keys, values)
            }
        };
        let new = [0..b, 0..kvh, self.len..end, 0..d];
        keys = keys.slice_assign(new.clone(), k);
        values = values.slice_assign(new, v);
        self.len = end;
        let filled = (
            keys.clone().narrow(2, 0, end),
            values.clone().narrow(2, 0, end),
        );
        self.buffers = Some((keys, values));
        filled
    }
}

/// Self-attention with `num_heads` query heads sharing `num_kv_heads` key/value heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `[hidden, heads * head_dim]`, with bias in Qwen2.
    pub q_proj: Linear<B>,
    /// `[hidden, kv_heads * head_dim]`, with bias in Qwen2.
    pub k_proj: Linear<B>,
    /// `[hidden, kv_heads * head_dim]`, with bias in Qwen2.
    pub v_proj: Linear<B>,
    /// `[heads * head_dim, hidden]`, no bias.
    pub o_proj: Linear<B>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// LoRA adapter of `q_proj` (`None`: the projection alone).
    pub q_lora: Option<Lora<B>>,
    /// LoRA adapter of `k_proj`.
    pub k_lora: Option<Lora<B>>,
    /// LoRA adapter of `v_proj`.
    pub v_lora: Option<Lora<B>>,
    /// LoRA adapter of `o_proj`.
    pub o_lora: Option<Lora<B>>,
}

impl<B: KernelBackend> Attention<B> {
    /// `x`: `[batch, seq, hidden]`; `mask`: additive, `[batch, kv_heads, heads / kv_heads,
    /// seq, keys]` where keys = cached + seq. Appends this step's keys/values to `cache` when given.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: &Tensor<B, 5>,
        cache: Option<&mut LayerKv<B>>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        // Rotate while still [batch, seq, heads, head_dim] (contiguous), then
        // [batch, heads, seq, head_dim], laid out so (contiguous on the CPU).
        let q =
            project_adapted(&self.q_proj, self.q_lora.as_ref(), x.clone()).reshape([b, s, h, d]);
        let q = swap_middle(rope.apply_q(q));
        // [batch, kv_heads, seq, head_dim]
        let k =
            project_adapted(&self.k_proj, self.k_lora.as_ref(), x.clone()).reshape([b, s, kvh, d]);
        let k = swap_middle(rope.apply_k(k));
        let v = swap_middle(
            project_adapted(&self.v_proj, self.v_lora.as_ref(), x).reshape([b, s, kvh, d]),
        );

        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        let keys = k.dims()[2];
        let group = h / kvh;

        // Grouped query heads share one key head: fold the group into the query axis
        // instead of repeating keys/values. [batch, kv_heads, group * seq, head_dim]
        let q = q.reshape([b, kvh, group * s, d]);
        let scale = (d as f64).powf(-0.5);
        // [batch, kv_heads, group * seq, keys]
        let scores = matmul(q, k.swap_dims(2, 3)).reshape([b, kvh, group, s, keys]);
        let probs = masked_softmax(scores, mask.clone(), scale).reshape([b, kvh, group * s, keys]);
        // [batch, kv_heads, group * seq, head_dim] → [batch, seq, heads * head_dim]
        let out = swap_middle(matmul(probs, v).reshape([b, h, s, d])).reshape([b, s, h * d]);
        project_adapted(&self.o_proj, self.o_lora.as_ref(), out)
    }
}
