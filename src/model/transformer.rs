//! Model layer (used by execute): the whole decoder (embedding, layers, final norm,
//! LM head) and its construction from named HuggingFace-layout tensors.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::attention::{Attention, LayerKv};
use super::batch::{StepInput, TokenBatch};
use super::block::DecoderLayer;
use super::kernels::{matmul, rms_norm, KernelBackend};
use super::mlp::Mlp;
use super::projection::project;
use super::rng::SeededRng;
use super::rope::{RopeShape, RopeTables};
use super::{ModelConfig, ModelError};

/// A Qwen2/Llama-style causal language model.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    /// `[vocab, hidden]`
    pub embed_tokens: Embedding<B>,
    /// The decoder layers, bottom first.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final RMSNorm, `[hidden]`.
    pub norm: RmsNorm<B>,
    /// `[hidden, vocab]`; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
    /// Rotary base.
    pub rope_theta: f64,
    /// Width of one attention head.
    pub head_dim: usize,
    /// Rows of the embedding.
    pub vocab_size: usize,
}

/// What the decoder layers of one pass share (see [`Transformer::layer_inputs`]).
#[derive(Debug, Clone)]
pub struct LayerInputs<B: Backend> {
    rope: RopeTables<B>,
    mask: Tensor<B, 5>,
}

/// Keys and values of every layer for the tokens seen so far.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerKv<B>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `num_layers` layers of up to `capacity` keys per row (the
    /// prompt and every token to be generated: its buffers are allocated once).
    pub fn new(num_layers: usize, capacity: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| LayerKv::new(capacity)).collect(),
        }
    }
}

pub use crate::architecture::{hf_tensor_specs, TensorSpec};

/// Supplies the values of a named tensor (HF layout, f32, row-major).
pub type TensorSource<'a> = dyn FnMut(&TensorSpec) -> Result<Vec<f32>, ModelError> + 'a;

struct Builder<'s, 'f, 'd, B: Backend> {
    source: &'s mut TensorSource<'f>,
    device: &'d B::Device,
}

impl<B: Backend> Builder<'_, '_, '_, B> {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let spec = TensorSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
        };
        let v = (self.source)(&spec)?;
        if v.len() != shape.iter().product::<usize>() {
            return Err(ModelError::checkpoint(format!(
                "tensor `{name}` has {} values, expected shape {shape:?}",
                v.len()
            )));
        }
        Ok(v)
    }

    fn vector(&mut self, name: &str, n: usize) -> Result<Param<Tensor<B, 1>>, ModelError> {
        let v = self.values(name, &[n])?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(v, [n]),
            self.device,
        )))
    }

    /// HF `[out, in]` → burn's `[in, out]`.
    fn linear(
        &mut self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Linear<B>, ModelError> {
        let w = self.values(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let mut t = vec![0.0f32; w.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = w[o * d_in + i];
            }
        }
        let weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(t, [d_in, d_out]),
            self.device,
        ));
        let bias = if bias {
            Some(self.vector(&format!("{prefix}.bias"), d_out)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn norm(&mut self, name: &str, n: usize, eps: f64) -> Result<RmsNorm<B>, ModelError> {
        Ok(RmsNorm {
            gamma: self.vector(name, n)?,
            epsilon: eps,
        })
    }
}

impl<B: Backend> Transformer<B> {
    /// Builds a model of `config` whose tensors come from `source` (HF names/shapes).
    pub fn from_tensors(
        config: &ModelConfig,
        source: &mut TensorSource<'_>,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let mut b = Builder::<B> { source, device };
        let h = config.hidden_size;
        let d = config.head_dim();
        let kv = config.num_key_value_heads * d;
        let i = config.intermediate_size;
        let eps = config.rms_norm_eps;
        let v = config.vocab_size;
        let embed = b.values("model.embed_tokens.weight", &[v, h])?;
        let embed_tokens = Embedding {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(embed, [v, h]), device)),
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let bias = config.attention_bias;
            layers.push(DecoderLayer {
                input_layernorm: b.norm(&format!("{p}.input_layernorm.weight"), h, eps)?,
                self_attn: Attention {
                    q_proj: b.linear(&format!("{p}.self_attn.q_proj"), h, h, bias)?,
                    k_proj: b.linear(&format!("{p}.self_attn.k_proj"), h, kv, bias)?,
                    v_proj: b.linear(&format!("{p}.self_attn.v_proj"), h, kv, bias)?,
                    o_proj: b.linear(&format!("{p}.self_attn.o_proj"), h, h, false)?,
                    num_heads: config.num_attention_heads,
                    num_kv_heads: config.num_key_value_heads,
                    head_dim: d,
                    q_lora: None,
                    k_lora: None,
                    v_lora: None,
                    o_lora: None,
                },
                post_attention_layernorm: b.norm(
                    &format!("{p}.post_attention_layernorm.weight"),
                    h,
                    eps,
                )?,
                mlp: Mlp {
                    gate_proj: b.linear(&format!("{p}.mlp.gate_proj"), h, i, false)?,
                    up_proj: b.linear(&format!("{p}.mlp.up_proj"), h, i, false)?,
                    down_proj: b.linear(&format!("{p}.mlp.down_proj"), i, h, false)?,
                    gate_lora: None,
                    up_lora: None,
                    down_lora: None,
                },
            });
        }
        let norm = b.norm("model.norm.weight", h, eps)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(b.linear("lm_head", h, v, false)?)
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope_theta: config.rope_theta,
            head_dim: d,
            vocab_size: v,
        })
    }

    /// A freshly initialised model (weights N(0, 0.02), norms 1, biases 0), identical
    /// on every backend for the same seed.
    pub fn init(config: &ModelConfig, seed: u64, device: &B::Device) -> Result<Self, ModelError> {
        let mut rng = SeededRng::new(seed);
        let mut source = |spec: &TensorSpec| {
            let n: usize = spec.shape.iter().product();
            Ok(if spec.name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if spec.name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| (rng.next_normal() * 0.02) as f32).collect()
            })
        };
        Self::from_tensors(config, &mut source, device)
    }

    /// The model's tensors in HF naming and layout (`[out, in]` projections).
    pub fn hf_tensors(&self) -> Result<Vec<(TensorSpec, Vec<f32>)>, ModelError> {
        fn host<const D: usize, B: Backend>(
            t: Tensor<B, D>,
        ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
            let data = t.into_data();
            let shape = data.shape.to_vec();
            let v = data
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| ModelError::checkpoint(format!("reading a tensor back: {e:?}")))?;
            Ok((shape, v))
        }
        let mut out = Vec::new();
        let push_vec = |name: String, t: Tensor<B, 1>, out: &mut Vec<(TensorSpec, Vec<f32>)>| {
            let (shape, v) = host(t)?;
            out.push((TensorSpec { name, shape }, v));
            Ok::<(), ModelError>(())
        };
        let linear = |name: &str, l: &Linear<B>, out: &mut Vec<(TensorSpec, Vec<f32>)>| {
            let (shape, w) = host(l.weight.val())?;
            let (d_in, d_out) = (shape[0], shape[1]);
            let mut t = vec![0.0f32; w.len()];
            for i in 0..d_in {
                for o in 0..d_out {
                    t[o * d_in + i] = w[i * d_out + o];
                }
            }
            out.push((
                TensorSpec {
                    name: format!("{name}.weight"),
                    shape: vec![d_out, d_in],
                },
                t,
            ));
            if let Some(b) = &l.bias {
                let (shape, v) = host(b.val())?;
                out.push((
                    TensorSpec {
                        name: format!("{name}.bias"),
                        shape,
                    },
                    v,
                ));
            }
            Ok::<(), ModelError>(())
        };
        let (shape, v) = host(self.embed_tokens.weight.val())?;
        out.push((
            TensorSpec {
                name: "model.embed_tokens.weight".into(),
                shape,
            },
            v,
        ));
        for (l, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{l}");
            push_vec(
                format!("{p}.input_layernorm.weight"),
                layer.input_layernorm.gamma.val(),
                &mut out,
            )?;
            let a = &layer.self_attn;
            linear(&format!("{p}.self_attn.q_proj"), &a.q_proj, &mut out)?;
            linear(&format!("{p}.self_attn.k_proj"), &a.k_proj, &mut out)?;
            linear(&format!("{p}.self_attn.v_proj"), &a.v_proj, &mut out)?;
            linear(&format!("{p}.self_attn.o_proj"), &a.o_proj, &mut out)?;
            push_vec(
                format!("{p}.post_attention_layernorm.weight"),
                layer.post_attention_layernorm.gamma.val(),
                &mut out,
            )?;
            linear(
                &format!("{p}.mlp.gate_proj"),
                &layer.mlp.gate_proj,
                &mut out,
            )?;
            linear(&format!("{p}.mlp.up_proj"), &layer.mlp.up_proj, &mut out)?;
            linear(
                &format!("{p}.mlp.down_proj"),
                &layer.mlp.down_proj,
                &mut out,
            )?;
        }
        push_vec("model.norm.weight".into(), self.norm.gamma.val(), &mut out)?;
        if let Some(head) = &self.lm_head {
            linear("lm_head", head, &mut out)?;
        }
        Ok(out)
    }
}

impl<B: KernelBackend> Transformer<B> {
    /// Runs the layers over one step's new tokens, extending `cache` when given.
    /// Returns the final-norm hidden states, `[batch, seq, hidden]`.
    pub fn forward_hidden(
        &self,
        input: &StepInput<B>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let shared = self.layer_inputs(input);
        let mut x = self.embed_tokens.forward(input.ids.clone());
        for (l, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            x = layer.forward(x, &shared.rope, &shared.mask, slot);
        }
        rms_norm(x, &self.norm)
    }

    /// What every layer of a pass over `input` shares: the rotary tables of its positions
    /// and its attention mask.
    pub fn layer_inputs(&self, input: &StepInput<B>) -> LayerInputs<B> {
        let [batch, seq] = input.ids.dims();
        let device = input.ids.device();
        let (heads, kv_heads) = self
            .layers
            .first()
            .map(|l| (l.self_attn.num_heads, l.self_attn.num_kv_heads))
            .unwrap_or((1, 1));
        let shape = RopeShape {
            batch,
            seq,
            heads,
            kv_heads,
            head_dim: self.head_dim,
        };
        LayerInputs {
            rope: RopeTables::new(&input.positions, shape, self.rope_theta, &device),
            mask: input.mask(kv_heads, heads / kv_heads),
        }
    }

    /// Decoder layer `index` alone, without a cache: `[batch, seq, hidden]` in and out
    /// (for recomputing one layer at a time in a checkpointed backward pass).
    pub fn layer_forward(
        &self,
        index: usize,
        x: Tensor<B, 3>,
        shared: &LayerInputs<B>,
    ) -> Tensor<B, 3> {
        match self.layers.get(index) {
            Some(layer) => layer.forward(x, &shared.rope, &shared.mask, None),
            None => x,
        }
    }

    /// Projects hidden states to vocabulary logits: `[batch, seq, hidden]` → `[batch, seq, vocab]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => project(head, hidden),
            None => {
                let [b, s, h] = hidden.dims();
                let w = self.embed_tokens.weight.val().transpose(); // [hidden, vocab]
                matmul(hidden.reshape([b * s, h]), w).reshape([b, s, self.vocab_size])
            }
        }
    }

    /// Final-norm hidden states for every position of a batch, without a cache:
    /// `[batch, seq, hidden]` (what the LM head turns into logits, chunk by chunk where
    /// the whole would be too large).
    pub fn forward_hidden_batch(
        &self,
        batch: &TokenBatch,
        device: &B::Device,
    ) -> Result<Tensor<B, 3>, ModelError> {
        batch.check(self.vocab_size)?;
        let input = StepInput::from_batch(batch, device);
        Ok(self.forward_hidden(&input, None))
    }

    /// Logits for every position of a batch, without a cache: `[batch, seq, vocab]`.
    pub fn forward(
        &self,
        batch: &TokenBatch,
        device: &B::Device,
    ) -> Result<Tensor<B, 3>, ModelError> {
        Ok(self.logits(self.forward_hidden_batch(batch, device)?))
    }

    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
}
