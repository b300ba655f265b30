//! Check (models): what r1flow reads of a HuggingFace checkpoint's `config.json` — the
//! architecture and the special token ids — and which architectures it supports.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{ArchitectureError, ModelConfig};

/// The parts of HF's config.json that the architecture depends on; other keys are ignored.
#[derive(Debug, Deserialize)]
pub struct HfConfig {
    pub model_type: Option<String>,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub intermediate_size: usize,
    pub rope_theta: Option<f64>,
    pub tie_word_embeddings: Option<bool>,
    pub vocab_size: usize,
    pub rms_norm_eps: Option<f64>,
    pub max_position_embeddings: Option<usize>,
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
    pub head_dim: Option<usize>,
    pub hidden_act: Option<String>,
    pub rope_scaling: Option<Value>,
    /// transformers ≥ 5 nests `rope_theta` here.
    pub rope_parameters: Option<Value>,
    pub use_sliding_window: Option<bool>,
    pub bos_token_id: Option<Value>,
    pub eos_token_id: Option<Value>,
    pub pad_token_id: Option<Value>,
}

pub fn ids_of(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl HfConfig {
    /// The architecture, or why r1flow cannot run this checkpoint.
    pub fn to_model_config(&self) -> Result<ModelConfig, ArchitectureError> {
        let kind = self.model_type.as_deref().unwrap_or("llama");
        let unsupported = |what: String| Err(ArchitectureError(format!("unsupported {what}")));
        let attention_bias = match kind {
            "qwen2" => true,
            "llama" | "mistral" => {
                if self.attention_bias == Some(true) {
                    return unsupported("Llama attention_bias (o_proj bias)".into());
                }
                false
            }
            other => return unsupported(format!("model_type `{other}` (supported: qwen2, llama)")),
        };
        if self.mlp_bias == Some(true) {
            return unsupported("mlp_bias".into());
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return unsupported(format!("hidden_act `{act}`"));
            }
        }
        if matches!(&self.rope_scaling, Some(v) if !v.is_null()) {
            return unsupported("rope_scaling".into());
        }
        let mut rope_theta = self.rope_theta;
        if let Some(params) = &self.rope_parameters {
            match params.get("rope_type").and_then(Value::as_str) {
                None | Some("default") => {}
                Some(other) => return unsupported(format!("rope_type `{other}`")),
            }
            if let Some(theta) = params.get("rope_theta").and_then(Value::as_f64) {
                rope_theta = Some(theta);
            }
        }
        if self.use_sliding_window == Some(true) {
            return unsupported("use_sliding_window".into());
        }
        let config = ModelConfig {
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            intermediate_size: self.intermediate_size,
            rope_theta: rope_theta.unwrap_or(10_000.0),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            vocab_size: self.vocab_size,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(2048),
            attention_bias,
        };
        if let Some(d) = self.head_dim {
            if d != config.head_dim() {
                return unsupported(format!("head_dim {d} != hidden_size / num_attention_heads"));
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// The largest `config.json` read: 16 MiB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl HfConfig {
    /// Reads `config.json` of the checkpoint directory `dir`.
    pub fn read(dir: &Path) -> Result<Self, ArchitectureError> {
        let path = dir.join("config.json");
        // A regular file, read up to a bound (`user_file`): a config is a few kilobytes.
        let bytes = crate::user_file::read(&path, MAX_CONFIG_BYTES)
            .map_err(|e| ArchitectureError(format!("{}: {e}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ArchitectureError(format!("{}: {e}", path.display())))
    }
}
