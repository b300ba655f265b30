//! Execute (training): `lora:` on a training stage — the stage's model with adapters on a
//! frozen base before training, and what the stage stores after: the merged model (so
//! every later stage, eval and export read a plain model) and the adapter as PEFT's
//! files beside it.

use super::models::{failed, model_files, StageModel};
use crate::exec::StageError;
use crate::manifest::LoraSpec;
use crate::model::{self, KernelBackend, LoraConfig, LoraTarget, Transformer};

/// The model layer's shape and targets of a checked `lora:`.
fn adapters_of(spec: &LoraSpec) -> Result<(LoraConfig, Vec<LoraTarget>), StageError> {
    let config = LoraConfig {
        r: spec.r,
        alpha: spec.alpha,
        dropout: spec.dropout,
    };
    let targets = LoraTarget::parse_list(&spec.target_modules).map_err(failed)?;
    Ok((config, targets))
}

/// `model` with fresh adapters (drawn from `seed`) and its base frozen when the stage has
/// `lora:`, else `model` as it is.
pub(super) fn with_adapters<B: KernelBackend>(
    model: Transformer<B>,
    lora: Option<&LoraSpec>,
    seed: u64,
    device: &B::Device,
) -> Result<Transformer<B>, StageError> {
    let Some(spec) = lora else {
        return Ok(model);
    };
    let (config, targets) = adapters_of(spec)?;
    model
        .with_lora(&config, &targets, seed, device)
        .map_err(failed)
}

/// The artifact files of a trained model: with `lora:`, the adapter's PEFT files
/// (`adapter_config.json`, `adapter_model.safetensors`) and the merged model's; else the
/// model's files as every stage stores them.
pub(super) fn trained_model_files<B: KernelBackend>(
    mut trained: StageModel<B>,
    lora: Option<&LoraSpec>,
) -> Result<Vec<(String, Vec<u8>)>, StageError> {
    let Some(spec) = lora else {
        return model_files(trained);
    };
    let (config, _) = adapters_of(spec)?;
    let adapter = model::peft_adapter_files(&trained.model, &config, None).map_err(failed)?;
    trained.model = trained.model.merge_lora();
    let mut files = model_files(trained)?;
    files.extend(
        adapter
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), bytes)),
    );
    Ok(files)
}
