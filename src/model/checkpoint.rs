//! Model layer (used by execute): HuggingFace checkpoints in and out (config.json,
//! model.safetensors or shards with an index, tokenizer.json, generation_config.json),
//! and weights as bytes for the artifact store.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::backend::Backend;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use serde_json::{json, Value};

use super::transformer::{hf_tensor_specs, TensorSpec};
use super::{ModelConfig, ModelError, TextTokenizer, Transformer};

/// Name of the generation defaults file HF writes next to config.json.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
/// safetensors metadata key holding the r1flow `ModelConfig` of artifact bytes.
pub(super) const CONFIG_METADATA_KEY: &str = "r1flow_model_config";

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

/// The parts of HF's config.json that the architecture depends on; other keys are ignored.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    intermediate_size: usize,
    rope_theta: Option<f64>,
    tie_word_embeddings: Option<bool>,
    vocab_size: usize,
    rms_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    head_dim: Option<usize>,
    hidden_act: Option<String>,
    rope_scaling: Option<Value>,
    /// transformers ≥ 5 nests `rope_theta` here.
    rope_parameters: Option<Value>,
    use_sliding_window: Option<bool>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
}

fn ids_of(v: &Option<Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl HfConfig {
    fn to_model_config(&self) -> Result<ModelConfig, ModelError> {
        let kind = self.model_type.as_deref().unwrap_or("llama");
        let unsupported = |what: String| {
            Err(ModelError::config(format!(
                "unsupported checkpoint: {what}"
            )))
        };
        let attention_bias = match kind {
            "qwen2" => true,
            "llama" | "mistral" => {
                if self.attention_bias == Some(true) {
                    return unsupported("Llama attention_bias (o_proj bias)".into());
                }
                false
            }
            other => return unsupported(format!("model_type `{other}` (supported: qwen2, llama)")),
        };
        if self.mlp_bias == Some(true) {
            return unsupported("mlp_bias".into());
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return unsupported(format!("hidden_act `{act}`"));
            }
        }
        if matches!(&self.rope_scaling, Some(v) if !v.is_null()) {
            return unsupported("rope_scaling".into());
        }
        let mut rope_theta = self.rope_theta;
        if let Some(params) = &self.rope_parameters {
            match params.get("rope_type").and_then(Value::as_str) {
                None | Some("default") => {}
                Some(other) => return unsupported(format!("rope_type `{other}`")),
            }
            if let Some(theta) = params.get("rope_theta").and_then(Value::as_f64) {
                rope_theta = Some(theta);
            }
        }
        if self.use_sliding_window == Some(true) {
            return unsupported("use_sliding_window".into());
        }
        let config = ModelConfig {
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            intermediate_size: self.intermediate_size,
            rope_theta: rope_theta.unwrap_or(10_000.0),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            vocab_size: self.vocab_size,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(2048),
            attention_bias,
        };
        if let Some(d) = self.head_dim {
            if d != config.head_dim() {
                return unsupported(format!("head_dim {d} != hidden_size / num_attention_heads"));
            }
        }
        config.validate()?;
        Ok(config)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let text = ModelError::read_text(path, super::error::MAX_JSON_BYTES)?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::checkpoint(format!("{}: {e}", path.display())))
}

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
        to_f32(&spec.name, &view)
    };
    Transformer::from_tensors(config, &mut source, device)
}

/// Loads a HuggingFace Qwen2/Llama checkpoint directory (config.json, model.safetensors
/// or `model.safetensors.index.json` with shards, tokenizer.json, optional
/// generation_config.json). Weights in f16/bf16 are widened to f32.
pub fn load_hf_dir<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedModel<B>, ModelError> {
    let hf: HfConfig = read_json(&dir.join("config.json"))?;
    let config = hf.to_model_config()?;

    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(WEIGHTS_INDEX_FILE);
    let paths: Vec<std::path::PathBuf> = if single.exists() {
        vec![single]
    } else if index.exists() {
        #[derive(Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let idx: Index = read_json(&index)?;
        let mut shards: Vec<String> = idx.weight_map.into_values().collect();
        shards.sort();
        shards.dedup();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        return Err(ModelError::checkpoint(format!(
            "{}: neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE} found",
            dir.display()
        )));
    };
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
    Ok(LoadedModel {
        config,
        model,
        tokenizer,
    })
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

/// The weights and architecture as one safetensors blob (HF tensor names, f32; the
/// config in the metadata) — what the artifact store keeps for a model.
pub fn to_bytes<B: Backend>(
    model: &Transformer<B>,
    config: &ModelConfig,
) -> Result<Vec<u8>, ModelError> {
    let config_json = serde_json::to_string(config)
        .map_err(|e| ModelError::checkpoint(format!("serialising config: {e}")))?;
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_METADATA_KEY.to_string(), config_json),
    ]);
    serialize_f32(model.hf_tensors()?, meta)
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

/// HF config.json for `config` as a Qwen2ForCausalLM (Qwen2 always has q/k/v biases:
/// a model without them is written with zero biases, which is the same function).
fn qwen2_config_json(config: &ModelConfig, tokenizer: &TextTokenizer) -> Value {
    let eos = tokenizer.eos_ids().first().copied();
    json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "max_position_embeddings": config.max_position_embeddings,
        "rope_theta": config.rope_theta,
        "rope_parameters": { "rope_type": "default", "rope_theta": config.rope_theta },
        "rms_norm_eps": config.rms_norm_eps,
        "tie_word_embeddings": config.tie_word_embeddings,
        "vocab_size": config.vocab_size,
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": true,
        "use_sliding_window": false,
        "sliding_window": null,
        "max_window_layers": config.num_hidden_layers,
        "rope_scaling": null,
        "torch_dtype": "float32",
        "bos_token_id": tokenizer.bos_id(),
        "eos_token_id": eos,
        "pad_token_id": tokenizer.pad_id(),
    })
}

/// Writes `model` as a HuggingFace directory that `transformers` loads as
/// Qwen2ForCausalLM: config.json, model.safetensors, tokenizer.json,
/// tokenizer_config.json, generation_config.json.
pub fn save_hf_dir<B: Backend>(
    model: &Transformer<B>,
    config: &ModelConfig,
    tokenizer: &TextTokenizer,
    dir: &Path,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| ModelError::io(&p, e))
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";

    let mut weights = model.hf_tensors()?;
    if !config.attention_bias {
        // Qwen2's projections always have biases; zeros keep the function unchanged.
        let kv = config.num_key_value_heads * config.head_dim();
        for l in 0..config.num_hidden_layers {
            for (proj, n) in [("q", config.hidden_size), ("k", kv), ("v", kv)] {
                weights.push((
                    TensorSpec {
                        name: format!("model.layers.{l}.self_attn.{proj}_proj.bias"),
                        shape: vec![n],
                    },
                    vec![0.0; n],
                ));
            }
        }
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let st = serialize_f32(weights, meta)?;
    write(WEIGHTS_FILE, &st)?;
    write(
        "config.json",
        pretty(&qwen2_config_json(config, tokenizer)).as_bytes(),
    )?;
    write("tokenizer.json", tokenizer.to_json()?.as_bytes())?;

    let name_of = |id: Option<u32>| {
        id.and_then(|i| tokenizer.decode(&[i], false).ok())
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    let tok_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.max_position_embeddings,
        "bos_token": name_of(tokenizer.bos_id()),
        "eos_token": name_of(tokenizer.eos_ids().first().copied()),
        "pad_token": name_of(Some(tokenizer.pad_id())),
        "clean_up_tokenization_spaces": false,
    });
    write("tokenizer_config.json", pretty(&tok_config).as_bytes())?;
    let gen = json!({
        "bos_token_id": tokenizer.bos_id(),
        "eos_token_id": tokenizer.eos_ids(),
        "pad_token_id": tokenizer.pad_id(),
        "do_sample": true,
        "temperature": 1.0,
        "top_p": 1.0,
    });
    write(GENERATION_CONFIG_FILE, pretty(&gen).as_bytes())?;
    Ok(())
}

/// Keeps [`hf_tensor_specs`] reachable for callers who want to list what a config holds.
pub fn tensor_names(config: &ModelConfig) -> Vec<String> {
    hf_tensor_specs(config)
        .into_iter()
        .map(|s| s.name)
        .collect()
}
