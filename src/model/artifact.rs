//! Model layer (used by execute): a model as the artifact store keeps it — one
//! safetensors blob with HF tensor names in f32 and the architecture in its metadata, so
//! that f32 values round-trip bit for bit.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use safetensors::SafeTensors;

use super::safetensors_io::{build_from_files, serialize_f32};
use super::{ModelConfig, ModelError, Transformer};

/// safetensors metadata key holding the r1flow `ModelConfig` of artifact bytes.
pub(super) const CONFIG_METADATA_KEY: &str = "r1flow_model_config";

/// The weights and architecture as one safetensors blob (HF tensor names, f32; the
/// config in the metadata) — what the artifact store keeps for a model.
pub fn to_bytes<B: Backend>(
    model: &Transformer<B>,
    config: &ModelConfig,
) -> Result<Vec<u8>, ModelError> {
    serialize_f32(model.hf_tensors()?, metadata(config)?)
}

/// [`to_bytes`] of a model its caller no longer needs: the weights are let go once their
/// values are on the host, so the weights, their values and the file's bytes are never
/// held at once (the end of a training stage: 2 GB less at its peak at 0.5B). The same
/// bytes as [`to_bytes`].
pub fn into_bytes<B: Backend>(
    model: Transformer<B>,
    config: &ModelConfig,
) -> Result<Vec<u8>, ModelError> {
    let tensors = model.hf_tensors()?;
    drop(model);
    serialize_f32(tensors, metadata(config)?)
}

/// The safetensors metadata of a model file: PyTorch's format tag and the architecture.
fn metadata(config: &ModelConfig) -> Result<HashMap<String, String>, ModelError> {
    let config_json = serde_json::to_string(config)
        .map_err(|e| ModelError::checkpoint(format!("serialising config: {e}")))?;
    Ok(HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_METADATA_KEY.to_string(), config_json),
    ]))
}

/// Reads bytes written by [`to_bytes`]; f32 values round-trip bit for bit.
pub fn from_bytes<B: Backend>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<(ModelConfig, Transformer<B>), ModelError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ModelError::checkpoint(format!("model bytes: {e}")))?;
    let config_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CONFIG_METADATA_KEY))
        .ok_or_else(|| ModelError::checkpoint("model bytes carry no r1flow config"))?;
    let config: ModelConfig = serde_json::from_str(config_json)
        .map_err(|e| ModelError::checkpoint(format!("model bytes config: {e}")))?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::checkpoint(format!("model bytes: {e}")))?;
    let model = build_from_files(&config, std::slice::from_ref(&file), device)?;
    Ok((config, model))
}
