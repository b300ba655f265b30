//! Parse: a model declaration under `models:` — a built-in preset to train from scratch,
//! or a local HuggingFace checkpoint directory, optionally with a PEFT LoRA adapter merged
//! into it — with architecture overrides.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// PEFT's adapter configuration file (in an `adapter:` directory).
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
/// PEFT's adapter weights file (in an `adapter:` directory).
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// A built-in architecture sized for CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// About 1M parameters: trains in minutes on two CPU cores.
    Tiny,
    /// About 10M parameters.
    Small,
}

/// A model: exactly one of `preset` (fresh weights, trained by a `pretrain` stage) or
/// `path` (a local HuggingFace checkpoint: config.json, *.safetensors, tokenizer.json).
/// With `path`, `adapter` names a PEFT LoRA adapter directory merged into the checkpoint
/// as it loads. The architecture fields override the preset's (or the checkpoint's) values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelDecl {
    /// Built-in architecture to start from: `tiny` or `small`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Local HuggingFace checkpoint directory (Qwen2 or Llama architecture), relative to
    /// the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors, as
    /// `peft` saves it or an `export` with `merge: false` writes it) trained on the
    /// checkpoint at `path`, relative to the manifest: the model is that checkpoint with
    /// the adapter merged into its weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<PathBuf>,
    /// A tokenizer.json to use instead of the built-in one (presets) or the checkpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// Width of the residual stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_size: Option<usize>,
    /// Number of decoder layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_hidden_layers: Option<usize>,
    /// Query heads per layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_attention_heads: Option<usize>,
    /// Key/value heads per layer (grouped-query attention); divides `num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Width of the SwiGLU MLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    /// Base of the rotary position embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Longest sequence the model handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_position_embeddings: Option<usize>,
    /// Share the input embedding with the output head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
}
