//! Check (models): the architecture of a model — a preset's, a local HuggingFace
//! checkpoint's (`config.json`), with a declaration's overrides — without loading any
//! weights. `check` bounds a stage's lengths by it; the model layer builds from it.

mod config;
mod hf_config;
mod preset;
mod tensors;

use std::path::Path;

pub use config::{
    dimension_limit, ModelConfig, ModelOverrides, BEYOND_LIMIT, DIMENSION_LIMITS, TRAINING_BYTES,
    WEIGHT_BYTES,
};
pub use hf_config::{ids_of, HfConfig};
pub use tensors::{
    check_adapter_headers, check_weight_headers, hf_tensor_specs, peft_lora_tensor_specs,
    weight_files, TensorSpec, WEIGHTS_FILE, WEIGHTS_INDEX_FILE,
};

use crate::manifest::ModelDecl;

/// An architecture that is inconsistent or that r1flow does not support; the message is
/// meant for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchitectureError(pub String);

impl std::fmt::Display for ArchitectureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArchitectureError {}

/// The architecture a model declaration stands for: a preset with the declaration's
/// overrides, or a checkpoint's `config.json` (paths relative to `base_dir`). The
/// vocabulary of a preset grows to its tokenizer's when the model is built.
pub fn of_decl(decl: &ModelDecl, base_dir: &Path) -> Result<ModelConfig, ArchitectureError> {
    if let Some(path) = &decl.path {
        return HfConfig::read(&base_dir.join(path))?.to_model_config();
    }
    let Some(preset) = decl.preset else {
        return Err(ArchitectureError(
            "the model has neither `preset` nor `path`".to_string(),
        ));
    };
    preset.config().with_overrides(&overrides(decl))
}

/// The architecture fields a declaration overrides.
pub fn overrides(decl: &ModelDecl) -> ModelOverrides {
    ModelOverrides {
        hidden_size: decl.hidden_size,
        num_hidden_layers: decl.num_hidden_layers,
        num_attention_heads: decl.num_attention_heads,
        num_key_value_heads: decl.num_key_value_heads,
        intermediate_size: decl.intermediate_size,
        rope_theta: decl.rope_theta,
        tie_word_embeddings: decl.tie_word_embeddings,
        max_position_embeddings: decl.max_position_embeddings,
        ..ModelOverrides::default()
    }
}
