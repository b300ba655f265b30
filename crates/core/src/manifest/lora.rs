//! Parse: `lora:` of the training stages — PEFT's LoRA adapters (`LoraConfig`'s names and
//! defaults) trained in place of the base weights, which stay frozen.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// PEFT's module names of a decoder layer's seven projections, as `target_modules`
/// takes them.
pub const LORA_TARGET_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// PEFT's shorthand for every linear layer but the output head.
pub const LORA_ALL_LINEAR: &str = "all-linear";

/// The largest rank `check` accepts: the model layer's bound (`r × d` stays within the
/// model's dimension limits), far past any useful rank.
pub const MAX_LORA_RANK: usize = 1 << 16;

/// `lora: {r: 16, alpha: 32, target_modules: [all-linear]}` — train low-rank adapters
/// (ΔW = B·A·alpha/r beside each targeted projection) instead of the model's weights,
/// which stay frozen; the stage stores the merged model and the adapter as PEFT's files.
/// Every field has PEFT's `LoraConfig` default: `r: 8`, `alpha: 8` (`lora_alpha`),
/// `dropout: 0.0` (`lora_dropout`), `target_modules: [q_proj, v_proj]` (PEFT's default for
/// Qwen2 and Llama), `init: true` (`init_lora_weights`: A Kaiming-uniform, B zero, so the
/// adapted model starts as the base). Only `dropout: 0` and `init: true` are implemented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraSpec {
    /// Rank of each adapter, at least 1. Default 8 (PEFT).
    #[serde(default = "LoraSpec::default_r")]
    pub r: usize,
    /// PEFT's `lora_alpha`: the update is scaled by `alpha / r`. Default 8 (PEFT).
    #[serde(default = "LoraSpec::default_alpha")]
    pub alpha: f64,
    /// PEFT's `lora_dropout` on the adapters' input. Only 0 (the default) is implemented.
    #[serde(default)]
    pub dropout: f64,
    /// The projections that get an adapter, by PEFT's module names (`q_proj`, `k_proj`,
    /// `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`) or `all-linear` for all
    /// seven. Default `[q_proj, v_proj]` (PEFT's default for Qwen2).
    #[serde(default = "LoraSpec::default_target_modules")]
    pub target_modules: Vec<String>,
    /// PEFT's `init_lora_weights`: `true` (the default) starts A Kaiming-uniform and B at
    /// zero. Other initialisations (`false`, `gaussian`, `pissa`, …) are not implemented.
    #[serde(default)]
    pub init: LoraInit,
}

/// PEFT's `init_lora_weights`: a boolean or the name of an initialisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LoraInit {
    /// `true`: A Kaiming-uniform, B zero; `false`: both random (not implemented).
    Default(bool),
    /// A named initialisation (`gaussian`, `pissa`, `olora`, …; not implemented).
    Named(String),
}

impl Default for LoraInit {
    fn default() -> Self {
        Self::Default(true)
    }
}

impl LoraSpec {
    fn default_r() -> usize {
        8
    }

    fn default_alpha() -> f64 {
        8.0
    }

    fn default_target_modules() -> Vec<String> {
        vec!["q_proj".into(), "v_proj".into()]
    }
}

impl Default for LoraSpec {
    fn default() -> Self {
        Self {
            r: Self::default_r(),
            alpha: Self::default_alpha(),
            dropout: 0.0,
            target_modules: Self::default_target_modules(),
            init: LoraInit::default(),
        }
    }
}
