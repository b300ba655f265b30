//! Model layer (used by execute): LoRA adapters as PEFT saves and loads them for a Qwen2
//! causal LM — a directory with `adapter_config.json` and `adapter_model.safetensors`,
//! tensors named `base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight`
//! (`[r, in]`) and `….lora_B.weight` (`[out, r]`) — written from a model's adapters and
//! read back onto a base model, the exact inverse. Files are read through `user_file`
//! with its bounds, and every name, shape and value is checked before it is used.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use safetensors::SafeTensors;
use serde_json::{json, Map, Value};

use super::error::{MAX_JSON_BYTES, MAX_WEIGHTS_BYTES};
use super::lora::{excerpt, Lora, LoraConfig, LoraTarget, ALL_LINEAR, MAX_LORA_RANK};
use super::lora_transformer::linear_dims;
use super::safetensors_io::{serialize_f32, to_f32};
use super::transformer::TensorSpec;
use super::{ModelError, Transformer};

/// PEFT's file names, as the manifest's `adapter:` check reads them.
pub use crate::manifest::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};

/// What an adapter directory says besides its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftAdapter {
    /// `r`, `lora_alpha`, `lora_dropout`.
    pub lora: LoraConfig,
    /// `target_modules`, in [`LoraTarget::ALL`] order.
    pub targets: Vec<LoraTarget>,
    /// `base_model_name_or_path` (PEFT writes `null` when it has none).
    pub base_model_name_or_path: Option<String>,
}

/// PEFT's name of one adapter matrix: `which` is `lora_A` or `lora_B`.
pub fn peft_tensor_name(layer: usize, target: LoraTarget, which: &str) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.{which}.weight",
        target.layer_path()
    )
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::adapter(format!("reading an adapter back: {e:?}")))
}

/// `lora_alpha` as PEFT users write it: an integer when it is one.
fn alpha_json(alpha: f64) -> Value {
    if alpha.fract() == 0.0 && alpha.abs() < 9.0e15 {
        json!(alpha as i64)
    } else {
        json!(alpha)
    }
}

/// The `adapter_config.json` PEFT writes for a LoRA adapter on a causal LM (the keys of
/// PEFT 0.13 onwards that describe a plain LoRA; newer PEFT adds keys with defaults
/// and reads files without them).
fn config_json(adapter: &PeftAdapter) -> Value {
    let targets: Vec<&str> = adapter.targets.iter().map(|t| t.peft_name()).collect();
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": adapter.base_model_name_or_path,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": alpha_json(adapter.lora.alpha),
        "lora_dropout": adapter.lora.dropout,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": adapter.lora.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": false,
    })
}

/// Writes the adapters of `model` as a PEFT adapter directory (`adapter_config.json`,
/// `adapter_model.safetensors`, f32) that `PeftModel.from_pretrained` loads on top of
/// the Qwen2 checkpoint r1flow exports. `lora` must describe the model's adapters (its
/// rank and alpha are checked against each; its dropout is recorded), and every layer
/// must carry the same targets, since PEFT applies `target_modules` to all of them.
pub fn save_peft_adapter<B: Backend>(
    model: &Transformer<B>,
    lora: &LoraConfig,
    base_model_name_or_path: Option<&str>,
    dir: &Path,
) -> Result<(), ModelError> {
    let files = peft_adapter_files(model, lora, base_model_name_or_path)?;
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| ModelError::io(&path, e))?;
    }
    Ok(())
}

/// The files [`save_peft_adapter`] writes, by name, as bytes (what a training stage with
/// `lora:` stores beside its merged model).
pub fn peft_adapter_files<B: Backend>(
    model: &Transformer<B>,
    lora: &LoraConfig,
    base_model_name_or_path: Option<&str>,
) -> Result<Vec<(&'static str, Vec<u8>)>, ModelError> {
    lora.validate()?;
    let targets = model.lora_targets();
    if targets.is_empty() {
        return Err(ModelError::adapter(
            "the model has no LoRA adapters to save",
        ));
    }
    let mut tensors = Vec::new();
    for (l, layer) in model.layers.iter().enumerate() {
        for target in LoraTarget::ALL {
            let (_, slot) = layer.lora_slot(target);
            let adapter = match (slot, targets.contains(&target)) {
                (Some(adapter), true) => adapter,
                (None, false) => continue,
                _ => {
                    return Err(ModelError::adapter(format!(
                        "layer {l} {} adapters differ from the other layers': PEFT's \
                         target_modules applies to every layer",
                        if slot.is_some() { "has" } else { "lacks" }
                    )))
                }
            };
            if adapter.rank() != lora.r || adapter.alpha != lora.alpha {
                return Err(ModelError::adapter(format!(
                    "the adapter of layer {l} {} has r = {}, alpha = {}, not the r = {}, \
                     alpha = {} given",
                    target.peft_name(),
                    adapter.rank(),
                    adapter.alpha,
                    lora.r,
                    lora.alpha
                )));
            }
            let [d_in, r] = adapter.a.dims();
            let d_out = adapter.b.dims()[1];
            let a = host(adapter.a.val())?;
            let b = host(adapter.b.val())?;
            tensors.push((
                TensorSpec {
                    name: peft_tensor_name(l, target, "lora_A"),
                    shape: vec![r, d_in],
                },
                transpose(&a, d_in, r),
            ));
            tensors.push((
                TensorSpec {
                    name: peft_tensor_name(l, target, "lora_B"),
                    shape: vec![d_out, r],
                },
                transpose(&b, r, d_out),
            ));
        }
    }
    let adapter = PeftAdapter {
        lora: lora.clone(),
        targets,
        base_model_name_or_path: base_model_name_or_path.map(str::to_string),
    };
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let weights = serialize_f32(tensors, meta)?;
    Ok(vec![
        (ADAPTER_WEIGHTS_FILE, weights),
        (ADAPTER_CONFIG_FILE, peft_config_file(&adapter)?),
    ])
}

/// The bytes of the `adapter_config.json` PEFT writes for `adapter`.
pub fn peft_config_file(adapter: &PeftAdapter) -> Result<Vec<u8>, ModelError> {
    let config = serde_json::to_string_pretty(&config_json(adapter))
        .map_err(|e| ModelError::adapter(format!("writing {ADAPTER_CONFIG_FILE}: {e}")))?;
    Ok((config + "\n").into_bytes())
}

/// `adapter_config.json`'s bytes read as [`read_peft_config`] reads the file; `origin`
/// names where they come from in errors.
pub fn parse_peft_config(bytes: &[u8], origin: &str) -> Result<PeftAdapter, ModelError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ModelError::adapter(format!("{origin}: {e}")))?;
    let Some(map) = value.as_object() else {
        return Err(ModelError::adapter(format!("{origin}: not a JSON object")));
    };
    parse_config(map).map_err(|e| ModelError::adapter(format!("{origin}: {e}")))
}

/// Reads `adapter_config.json`: a plain LoRA (no DoRA, rsLoRA, per-module ranks, bias
/// training, layer subsets or extra saved modules — each refused by name) on targets
/// r1flow knows.
pub fn read_peft_config(dir: &Path) -> Result<PeftAdapter, ModelError> {
    let path = dir.join(ADAPTER_CONFIG_FILE);
    let text = ModelError::read_text(&path, MAX_JSON_BYTES)?;
    parse_peft_config(text.as_bytes(), &path.display().to_string())
}

fn parse_config(map: &Map<String, Value>) -> Result<PeftAdapter, String> {
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    match get("peft_type").and_then(Value::as_str) {
        Some("LORA") => {}
        other => {
            return Err(format!(
                "peft_type is {}, not \"LORA\"",
                other.map_or("missing".to_string(), |t| format!("\"{}\"", excerpt(t)))
            ))
        }
    }
    let r = get("r")
        .and_then(Value::as_u64)
        .and_then(|r| usize::try_from(r).ok())
        .filter(|r| (1..=MAX_LORA_RANK).contains(r))
        .ok_or_else(|| format!("`r` must be an integer in 1..={MAX_LORA_RANK}"))?;
    let alpha = get("lora_alpha")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite())
        .ok_or("`lora_alpha` must be a finite number")?;
    let dropout = match get("lora_dropout") {
        None => 0.0,
        Some(v) => v.as_f64().ok_or("`lora_dropout` must be a number")?,
    };
    for flag in ["use_dora", "use_rslora", "fan_in_fan_out", "use_qalora"] {
        if get(flag).and_then(Value::as_bool).unwrap_or(false) {
            return Err(format!("`{flag}: true` is not supported by r1flow's LoRA"));
        }
    }
    if let Some(bias) = get("bias") {
        if bias.as_str() != Some("none") {
            return Err("`bias` other than \"none\" is not supported".into());
        }
    }
    if get("lora_bias").and_then(Value::as_bool).unwrap_or(false) {
        return Err("`lora_bias: true` is not supported".into());
    }
    for key in ["rank_pattern", "alpha_pattern"] {
        if get(key)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(format!("a non-empty `{key}` is not supported"));
        }
    }
    for key in [
        "layers_to_transform",
        "layer_replication",
        "modules_to_save",
        "target_parameters",
        "trainable_token_indices",
    ] {
        let empty_list = get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.is_empty());
        if get(key).is_some() && !empty_list {
            return Err(format!("`{key}` is not supported"));
        }
    }
    let names: Vec<String> = match get("target_modules") {
        Some(Value::String(s)) if s == ALL_LINEAR => vec![s.clone()],
        Some(Value::String(s)) => {
            return Err(format!(
                "target_modules `{}` is a pattern; r1flow reads a list of module names or \
                 \"{ALL_LINEAR}\"",
                excerpt(s)
            ))
        }
        Some(Value::Array(items)) => {
            // PEFT matches an entry against a module's name or its last components, and
            // saves `all-linear` expanded to full names (`model.layers.0.mlp.up_proj`):
            // each entry is read as its last component, once.
            let mut names: Vec<String> = Vec::new();
            for item in items {
                let full = item
                    .as_str()
                    .ok_or("target_modules must list module names")?;
                let name = full.rsplit('.').next().unwrap_or(full).to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names
        }
        _ => return Err("`target_modules` is missing".into()),
    };
    let targets = LoraTarget::parse_list(&names).map_err(|e| e.message().to_string())?;
    let lora = LoraConfig { r, alpha, dropout };
    lora.validate().map_err(|e| e.message().to_string())?;
    Ok(PeftAdapter {
        lora,
        targets,
        base_model_name_or_path: get("base_model_name_or_path")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Reads a PEFT adapter directory onto `model`: its base weights frozen and the
/// adapters trainable, as [`Transformer::with_lora`] leaves them. Every tensor the
/// configuration implies must be there with its shape `[r, in]` / `[out, r]` and finite
/// values, and no other tensor may be (an adapter for layers or modules this model does
/// not have is refused, not ignored). f16 and bf16 files are widened to f32.
pub fn load_peft_adapter<B: Backend>(
    model: Transformer<B>,
    dir: &Path,
    device: &B::Device,
) -> Result<(Transformer<B>, PeftAdapter), ModelError> {
    if model.has_lora() {
        return Err(ModelError::adapter(
            "the model already has LoRA adapters: merge them before loading others",
        ));
    }
    let adapter = read_peft_config(dir)?;
    let path = dir.join(ADAPTER_WEIGHTS_FILE);
    let bytes = ModelError::read_file(&path, MAX_WEIGHTS_BYTES)?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| ModelError::adapter(format!("{}: {e}", path.display())))?;
    let mut unused: BTreeSet<String> = file.names().into_iter().map(str::to_string).collect();
    let r = adapter.lora.r;
    let mut model = model.no_grad();
    for (l, layer) in model.layers.iter_mut().enumerate() {
        for target in adapter.targets.iter().copied() {
            let (linear, slot) = layer.lora_slot_mut(target);
            let [d_in, d_out] = linear_dims(linear);
            let mut matrix = |which: &str, shape: [usize; 2]| {
                let name = peft_tensor_name(l, target, which);
                let view = file.tensor(&name).map_err(|_| {
                    ModelError::adapter(format!("{}: tensor `{name}` is missing", path.display()))
                })?;
                if view.shape() != shape.as_slice() {
                    return Err(ModelError::adapter(format!(
                        "{}: tensor `{name}` has shape {:?}, expected {shape:?} (r = {r})",
                        path.display(),
                        view.shape()
                    )));
                }
                let values = to_f32(&name, &view).map_err(|e| ModelError::adapter(e.message()))?;
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(ModelError::adapter(format!(
                        "{}: tensor `{name}` holds NaN or infinite values",
                        path.display()
                    )));
                }
                unused.remove(&name);
                Ok(transpose(&values, shape[0], shape[1]))
            };
            let a = matrix("lora_A", [r, d_in])?;
            let b = matrix("lora_B", [d_out, r])?;
            *slot = Some(Lora::from_values(
                (a, b),
                [d_in, r, d_out],
                adapter.lora.alpha,
                device,
            ));
        }
    }
    if let Some(name) = unused.iter().next() {
        return Err(ModelError::adapter(format!(
            "{}: tensor `{}` is not an adapter of this model ({} such tensors; the \
             configuration targets {} in {} layers)",
            path.display(),
            excerpt(name),
            unused.len(),
            adapter
                .targets
                .iter()
                .map(|t| t.peft_name())
                .collect::<Vec<_>>()
                .join(", "),
            model.layers.len()
        )));
    }
    Ok((model, adapter))
}

/// The number of values in an `adapter_model.safetensors` (every tensor's elements).
pub fn parameter_count(weights: &[u8]) -> Result<usize, ModelError> {
    let file = SafeTensors::deserialize(weights)
        .map_err(|e| ModelError::adapter(format!("{ADAPTER_WEIGHTS_FILE}: {e}")))?;
    Ok(file
        .tensors()
        .iter()
        .map(|(_, view)| view.shape().iter().product::<usize>())
        .sum::<usize>())
}
