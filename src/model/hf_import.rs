//! Model layer (used by execute): loading a HuggingFace checkpoint directory — config.json,
//! model.safetensors or shards with an index, tokenizer.json, generation_config.json, and
//! the chat template (tokenizer_config.json or chat_template.jinja).

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use safetensors::SafeTensors;
use serde_json::Value;

use super::safetensors_io::build_from_files;
use super::{ModelConfig, ModelError, TextTokenizer, Transformer};
use crate::architecture::{ids_of, HfConfig};
use crate::tasks::ChatTemplate;

/// Name of the generation defaults file HF writes next to config.json.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";
/// The single-file weights of a checkpoint.
pub(super) use crate::architecture::WEIGHTS_FILE;

/// A model with everything needed to use it.
#[derive(Debug)]
pub struct LoadedModel<B: Backend> {
    /// Its architecture.
    pub config: ModelConfig,
    /// Its weights.
    pub model: Transformer<B>,
    /// Its tokenizer, special ids set from the checkpoint's config files.
    pub tokenizer: TextTokenizer,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let text = ModelError::read_text(path, super::error::MAX_JSON_BYTES)?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::checkpoint(format!("{}: {e}", path.display())))
}

/// Loads a HuggingFace Qwen2/Llama checkpoint directory (config.json, model.safetensors
/// or `model.safetensors.index.json` with shards, tokenizer.json, optional
/// generation_config.json). Weights in f16/bf16 are widened to f32.
pub fn load_hf_dir<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedModel<B>, ModelError> {
    let hf = HfConfig::read(dir)?;
    let config = hf.to_model_config().map_err(|e| {
        ModelError::config(format!(
            "r1flow cannot run checkpoint {}: {e}",
            dir.display()
        ))
    })?;

    let paths = crate::architecture::weight_files(dir).map_err(ModelError::checkpoint)?;
    let buffers = paths
        .iter()
        .map(|p| ModelError::read_file(p, super::error::MAX_WEIGHTS_BYTES))
        .collect::<Result<Vec<_>, _>>()?;
    let files = buffers
        .iter()
        .zip(&paths)
        .map(|(b, p)| {
            SafeTensors::deserialize(b)
                .map_err(|e| ModelError::checkpoint(format!("{}: {e}", p.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let model = build_from_files(&config, &files, device)?;

    let mut tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
    let gen_path = dir.join(GENERATION_CONFIG_FILE);
    let gen: HashMap<String, Value> = if gen_path.exists() {
        read_json(&gen_path)?
    } else {
        HashMap::new()
    };
    let pick = |key: &str, fallback: &Option<Value>| {
        let ids = ids_of(&gen.get(key).cloned());
        if ids.is_empty() {
            ids_of(fallback)
        } else {
            ids
        }
    };
    let eos = pick("eos_token_id", &hf.eos_token_id);
    let pad = pick("pad_token_id", &hf.pad_token_id).first().copied();
    let bos = pick("bos_token_id", &hf.bos_token_id).first().copied();
    tokenizer.set_special_ids(eos, pad, bos);
    // Carried so that export writes it back; a template that does not compile is checked
    // (and refused) only where prompts are rendered with it.
    let template = ChatTemplate::from_checkpoint(dir).ok().flatten();
    tokenizer.set_chat_template(template.map(|t| t.source));
    Ok(LoadedModel {
        config,
        model,
        tokenizer,
    })
}

/// Loads the checkpoint in `dir` with the PEFT LoRA adapter in `adapter` merged into its
/// weights (`W + alpha / r · B·A` for each adapted projection, the model layer's merge):
/// a plain model, every weight trainable, as if the merged checkpoint had been loaded.
/// The adapter is read and checked as [`super::load_peft_adapter`] reads it: a tensor
/// missing, of the wrong shape or for modules this model does not have is refused.
pub fn load_hf_dir_with_adapter<B: super::KernelBackend>(
    dir: &Path,
    adapter: &Path,
    device: &B::Device,
) -> Result<LoadedModel<B>, ModelError> {
    let loaded = load_hf_dir::<B>(dir, device)?;
    let (model, _) = super::load_peft_adapter(loaded.model, adapter, device)?;
    Ok(LoadedModel {
        model: model.merge_lora(),
        ..loaded
    })
}
