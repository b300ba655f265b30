//! Execute (training): where a stage's model comes from — a preset with fresh weights, a
//! local HuggingFace checkpoint, or an upstream stage's artifact — and how a trained model
//! is stored (`model.safetensors` with its config, and `tokenizer.json`).

use burn::tensor::backend::Backend;

use crate::architecture;
use crate::exec::{StageContext, StageError};
use crate::manifest::{ModelDecl, Preset};
use crate::model::{self, KernelBackend, ModelConfig, TextTokenizer, Transformer};
use crate::plan::InputSpec;
use crate::stages::InputField;

/// Output names of a model artifact.
pub const MODEL_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// What tokenizer.json does not hold (a checkpoint's special ids, its chat template),
/// stored only when there is something.
pub const TOKENIZER_SETTINGS_FILE: &str = "tokenizer_config.json";

/// A model, its architecture and its tokenizer.
pub struct StageModel<B: Backend> {
    pub config: ModelConfig,
    pub model: Transformer<B>,
    pub tokenizer: TextTokenizer,
}

pub(crate) fn failed(error: impl std::fmt::Display) -> StageError {
    StageError::Failed(error.to_string())
}

/// The architecture of a preset declaration with its overrides.
pub fn preset_config(decl: &ModelDecl, preset: Preset) -> Result<ModelConfig, StageError> {
    preset
        .config()
        .with_overrides(&architecture::overrides(decl))
        .map_err(failed)
}

/// Loads the model named by input `field`: fresh weights (seeded) for a preset, a
/// checkpoint directory (with a declared PEFT adapter merged into it), or an upstream
/// artifact.
pub fn load_input<B: KernelBackend>(
    context: &StageContext<'_>,
    field: InputField,
    seed: u64,
    device: &B::Device,
) -> Result<StageModel<B>, StageError> {
    let spec = context.spec();
    match spec.input(field) {
        Some(InputSpec::Model { decl, .. }) => {
            let unusable = |e: &dyn std::fmt::Display| StageError::input(spec, field, e);
            let tokenizer_override = match &decl.tokenizer {
                Some(path) => Some(
                    TextTokenizer::from_file(&spec.base_dir.join(path))
                        .map_err(|e| unusable(&e))?,
                ),
                None => None,
            };
            if let Some(path) = &decl.path {
                let dir = spec.base_dir.join(path);
                let loaded = match &decl.adapter {
                    Some(adapter) => model::hf_import::load_hf_dir_with_adapter::<B>(
                        &dir,
                        &spec.base_dir.join(adapter),
                        device,
                    ),
                    None => model::load_hf_dir::<B>(&dir, device),
                }
                .map_err(|e| unusable(&e))?;
                return Ok(StageModel {
                    config: loaded.config,
                    model: loaded.model,
                    tokenizer: tokenizer_override.unwrap_or(loaded.tokenizer),
                });
            }
            let preset = decl
                .preset
                .ok_or_else(|| failed("the model has neither `preset` nor `path`"))?;
            let tokenizer = tokenizer_override.unwrap_or_else(TextTokenizer::builtin);
            let mut config = preset_config(decl, preset)?;
            config.vocab_size = config.vocab_size.max(tokenizer.vocab_size());
            let model = Transformer::init(&config, seed, device).map_err(failed)?;
            Ok(StageModel {
                config,
                model,
                tokenizer,
            })
        }
        Some(InputSpec::Artifact { .. }) => {
            let unusable = |e: &dyn std::fmt::Display| StageError::input(spec, field, e);
            let bytes = context.read_input(field, MODEL_FILE)?;
            let (config, model) =
                model::from_bytes::<B>(&bytes, device).map_err(|e| unusable(&e))?;
            let json = context.read_input(field, TOKENIZER_FILE)?;
            let mut tokenizer = TextTokenizer::from_json(&String::from_utf8_lossy(&json))
                .map_err(|e| unusable(&e))?;
            if context
                .input(field)?
                .outputs
                .contains_key(TOKENIZER_SETTINGS_FILE)
            {
                let settings = context.read_input(field, TOKENIZER_SETTINGS_FILE)?;
                tokenizer
                    .apply_settings_json(&String::from_utf8_lossy(&settings))
                    .map_err(failed)?;
            }
            Ok(StageModel {
                config,
                model,
                tokenizer,
            })
        }
        _ => Err(StageError::input(spec, field, "not a model")),
    }
}

/// The artifact files of a trained model (and its tokenizer's settings, when
/// tokenizer.json does not say everything). It takes the model: the stage is done with it,
/// and its weights are let go as soon as their values are read, before the file is
/// written, so the weights and the file's bytes are not held at once.
pub fn model_files<B: Backend>(model: StageModel<B>) -> Result<Vec<(String, Vec<u8>)>, StageError> {
    let StageModel {
        model,
        config,
        tokenizer,
    } = model;
    let mut files = vec![
        (
            MODEL_FILE.to_string(),
            model::into_bytes(model, &config).map_err(failed)?,
        ),
        (
            TOKENIZER_FILE.to_string(),
            tokenizer.to_json().map_err(failed)?.into_bytes(),
        ),
    ];
    if let Some(settings) = tokenizer.settings_json().map_err(failed)? {
        files.push((TOKENIZER_SETTINGS_FILE.to_string(), settings.into_bytes()));
    }
    Ok(files)
}
