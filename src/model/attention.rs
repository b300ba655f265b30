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

/// Cached keys and values of one layer, `[batch, kv_heads, keys, head_dim]` each.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
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
        cache: Option<&mut Option<LayerKv<B>>>,
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
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some(prev) => (
                        Tensor::cat(vec![prev.k, k], 2),
                        Tensor::cat(vec![prev.v, v], 2),
                    ),
                    None => (k, v),
                };
                *slot = Some(LayerKv {
                    k: k.clone(),
                    v: v.clone(),
                });
                (k, v)
            }
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
