//! Check (models): the architectures of the built-in presets, sized for CPUs.

use super::{ArchitectureError, ModelConfig};
use crate::manifest::Preset;

impl Preset {
    /// The preset's configuration; the vocabulary fits the built-in tokenizer.
    pub fn config(self) -> ModelConfig {
        match self {
            Preset::Tiny => ModelConfig {
                hidden_size: 128,
                num_hidden_layers: 4,
                num_attention_heads: 4,
                num_key_value_heads: 2,
                intermediate_size: 512,
                rope_theta: 10_000.0,
                tie_word_embeddings: true,
                vocab_size: 384,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 1024,
                attention_bias: true,
            },
            Preset::Small => ModelConfig {
                hidden_size: 320,
                num_hidden_layers: 8,
                num_attention_heads: 8,
                num_key_value_heads: 2,
                intermediate_size: 1024,
                rope_theta: 10_000.0,
                tie_word_embeddings: true,
                vocab_size: 384,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 2048,
                attention_bias: true,
            },
        }
    }

    /// All presets with their manifest names.
    pub fn all() -> [(&'static str, Preset); 2] {
        [("tiny", Preset::Tiny), ("small", Preset::Small)]
    }
}

impl std::str::FromStr for Preset {
    type Err = ArchitectureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::all()
            .into_iter()
            .find(|(name, _)| *name == s)
            .map(|(_, p)| p)
            .ok_or_else(|| {
                ArchitectureError(format!("unknown model preset `{s}` (known: tiny, small)"))
            })
    }
}
