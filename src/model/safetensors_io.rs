//! Model layer (used by execute): reading and writing weights as safetensors — f32, f16
//! and bf16 tensors in, f32 out with a canonical header (equal weights give equal bytes),
//! and a model built from named tensors. Shared by checkpoint import and export, the
//! artifact bytes and the reward model.

use std::collections::HashMap;

use burn::tensor::backend::Backend;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::transformer::TensorSpec;
use super::{ModelConfig, ModelError, Transformer};

/// Decodes a safetensors tensor into f32 values (f32, f16 and bf16 files).
pub(super) fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, ModelError> {
    let data = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(ModelError::checkpoint(format!(
                "tensor `{name}` has unsupported dtype {other:?}"
            )))
        }
    })
}

/// Builds a model from parsed safetensors files, checking names and shapes.
pub(super) fn build_from_files<B: Backend>(
    config: &ModelConfig,
    files: &[SafeTensors<'_>],
    device: &B::Device,
) -> Result<Transformer<B>, ModelError> {
    let mut source = |spec: &TensorSpec| {
        let view = files
            .iter()
            .find_map(|f| f.tensor(&spec.name).ok())
            .ok_or_else(|| ModelError::checkpoint(format!("tensor `{}` is missing", spec.name)))?;
        if view.shape() != spec.shape.as_slice() {
            return Err(ModelError::checkpoint(format!(
                "tensor `{}` has shape {:?}, expected {:?}",
                spec.name,
                view.shape(),
                spec.shape
            )));
        }
        let values = to_f32(&spec.name, &view)?;
        // A checkpoint with NaN or infinite weights would generate empty text and train
        // to NaN with advice about the learning rate: name the tensor instead.
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(ModelError::checkpoint(format!(
                "tensor `{}` holds {bad} NaN or infinite values of {}: the checkpoint is \
                 damaged (or was saved after training diverged)",
                spec.name,
                values.len()
            )));
        }
        Ok(values)
    };
    Transformer::from_tensors(config, &mut source, device)
}

/// Serialises named f32 tensors to safetensors bytes.
pub(super) fn serialize_f32(
    tensors: Vec<(TensorSpec, Vec<f32>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, ModelError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(s, v)| {
            (
                s.name,
                s.shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::checkpoint(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| ModelError::checkpoint(format!("writing safetensors: {e}")))?;
    Ok(canonical_header(bytes))
}

/// The same file with its JSON header's keys in sorted order. safetensors writes the
/// metadata from a `HashMap`, whose order changes from process to process; equal weights
/// must give equal bytes, since the store addresses artifacts by content.
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
    else {
        return bytes;
    };
    let Some(end) = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(8))
        .filter(|e| *e <= bytes.len())
    else {
        return bytes;
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes[8..end]) else {
        return bytes;
    };
    let mut text = crate::plan::to_canonical_string(&header).into_bytes();
    if text.len() > end - 8 {
        return bytes;
    }
    // safetensors pads the header with spaces to its declared length.
    text.resize(end - 8, b' ');
    bytes[8..end].copy_from_slice(&text);
    bytes
}
