//! Check (models): the tensors a checkpoint of an architecture holds (HuggingFace names and
//! shapes), and what its safetensors files say they hold — read from their headers only,
//! so `validate` finds a file cut short, a tensor missing or of another shape than
//! `config.json` implies, before any weights are loaded. The model layer builds from the
//! same list.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ModelConfig;
use crate::user_file;

/// One tensor in HuggingFace naming with its HF shape (`[out, in]` for projections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// e.g. `model.layers.0.self_attn.q_proj.weight`
    pub name: String,
    /// Shape as HF stores it.
    pub shape: Vec<usize>,
}

/// The tensors a checkpoint of `config` holds, in HF naming and shapes.
pub fn hf_tensor_specs(config: &ModelConfig) -> Vec<TensorSpec> {
    let h = config.hidden_size;
    let kv = config.num_key_value_heads * config.head_dim();
    let i = config.intermediate_size;
    let mut specs = vec![TensorSpec {
        name: "model.embed_tokens.weight".into(),
        shape: vec![config.vocab_size, h],
    }];
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let mut add = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
        add(format!("{p}.input_layernorm.weight"), vec![h]);
        add(format!("{p}.self_attn.q_proj.weight"), vec![h, h]);
        add(format!("{p}.self_attn.k_proj.weight"), vec![kv, h]);
        add(format!("{p}.self_attn.v_proj.weight"), vec![kv, h]);
        if config.attention_bias {
            add(format!("{p}.self_attn.q_proj.bias"), vec![h]);
            add(format!("{p}.self_attn.k_proj.bias"), vec![kv]);
            add(format!("{p}.self_attn.v_proj.bias"), vec![kv]);
        }
        add(format!("{p}.self_attn.o_proj.weight"), vec![h, h]);
        add(format!("{p}.post_attention_layernorm.weight"), vec![h]);
        add(format!("{p}.mlp.gate_proj.weight"), vec![i, h]);
        add(format!("{p}.mlp.up_proj.weight"), vec![i, h]);
        add(format!("{p}.mlp.down_proj.weight"), vec![h, i]);
    }
    specs.push(TensorSpec {
        name: "model.norm.weight".into(),
        shape: vec![h],
    });
    if !config.tie_word_embeddings {
        specs.push(TensorSpec {
            name: "lm_head.weight".into(),
            shape: vec![config.vocab_size, h],
        });
    }
    specs
}

/// The single weights file of a checkpoint, and the index naming its shards.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

/// The most a safetensors header may take (the format's own readers cap it at 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// What a safetensors header says of one tensor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// The weights files of the checkpoint in `dir`: the single file, or the shards its index
/// names (sorted, each once).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let single = dir.join(WEIGHTS_FILE);
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join(WEIGHTS_INDEX_FILE);
    if !index.exists() {
        return Err(format!(
            "`{}` holds neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}",
            dir.display()
        ));
    }
    #[derive(Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let bytes =
        user_file::read(&index, 256 << 20).map_err(|e| format!("{}: {e}", index.display()))?;
    let parsed: Index =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", index.display()))?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    for shard in &shards {
        if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
            return Err(format!(
                "{} names the shard `{shard}`, which is not a file beside it",
                index.display()
            ));
        }
    }
    Ok(shards.into_iter().map(|s| dir.join(s)).collect())
}

/// Bytes per element of the dtypes r1flow reads.
fn element_bytes(dtype: &str) -> Option<u64> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        _ => None,
    }
}

/// Reads the header of the safetensors file `path`: each tensor's dtype, shape and where
/// its bytes lie, checked against the file's length.
fn read_header(path: &Path) -> Result<BTreeMap<String, HeaderEntry>, String> {
    let fail = |what: String| format!("{}: {what}", path.display());
    let metadata = user_file::check_regular(path).map_err(|e| fail(e.to_string()))?;
    let mut file = user_file::open(path).map_err(|e| fail(e.to_string()))?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| fail("shorter than a safetensors header: the file was cut short".into()))?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES {
        return Err(fail(format!(
            "its header claims {header_len} bytes, more than any safetensors header holds"
        )));
    }
    let data_len = metadata.len().checked_sub(8 + header_len).ok_or_else(|| {
        fail("its header runs past the end of the file: the file was cut short".into())
    })?;
    let mut header = Vec::new();
    file.take(header_len)
        .read_to_end(&mut header)
        .map_err(|e| fail(e.to_string()))?;
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| fail(format!("an unreadable header ({e})")))?;
    entries.remove("__metadata__");
    let mut tensors = BTreeMap::new();
    for (name, value) in entries {
        let entry: HeaderEntry = serde_json::from_value(value)
            .map_err(|e| fail(format!("tensor `{name}` is described wrongly ({e})")))?;
        let Some(size) = element_bytes(&entry.dtype) else {
            return Err(fail(format!(
                "tensor `{name}` is {}; r1flow reads F32, F16 and BF16",
                entry.dtype
            )));
        };
        let [begin, end] = entry.data_offsets;
        let expected = entry
            .shape
            .iter()
            .try_fold(size, |bytes, &d| bytes.checked_mul(d as u64));
        if begin > end || Some(end - begin) != expected {
            return Err(fail(format!(
                "tensor `{name}`'s offsets do not match its shape {:?} in {}",
                entry.shape, entry.dtype
            )));
        }
        if end > data_len {
            return Err(fail(format!(
                "tensor `{name}` ends at byte {end} of the data, which holds {data_len}: the \
                 file was cut short (download it again)"
            )));
        }
        tensors.insert(name, entry);
    }
    Ok(tensors)
}

/// Checks, from their headers only, that the weights files of the checkpoint in `dir`
/// are whole and hold every tensor `config` needs in the shape it needs.
pub fn check_weight_headers(dir: &Path, config: &ModelConfig) -> Result<(), String> {
    let mut found: BTreeMap<String, (PathBuf, Vec<usize>)> = BTreeMap::new();
    for file in weight_files(dir)? {
        for (name, entry) in read_header(&file)? {
            found.insert(name, (file.clone(), entry.shape));
        }
    }
    for spec in hf_tensor_specs(config) {
        match found.get(&spec.name) {
            None => {
                return Err(format!(
                    "tensor `{}` is missing from the weights, which config.json implies \
                     (model_type, num_hidden_layers, tie_word_embeddings, attention_bias)",
                    spec.name
                ))
            }
            Some((file, shape)) if *shape != spec.shape => {
                return Err(format!(
                    "tensor `{}` in {} has shape {shape:?}, but config.json implies {:?}: the \
                     weights and config.json are of different models",
                    spec.name,
                    file.display(),
                    spec.shape
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The tensors of a PEFT LoRA adapter of rank `r` on `modules` (PEFT's module names:
/// `q_proj` …) in every layer of a checkpoint of `config`, named and shaped as PEFT's
/// `save_pretrained` writes them: `base_model.model.<module>.lora_A.weight` `[r, in]` and
/// `….lora_B.weight` `[out, r]`.
pub fn peft_lora_tensor_specs(config: &ModelConfig, r: usize, modules: &[&str]) -> Vec<TensorSpec> {
    let mut specs = Vec::new();
    for spec in hf_tensor_specs(config) {
        let Some(module) = spec.name.strip_suffix(".weight") else {
            continue;
        };
        let adapted = module.starts_with("model.layers.")
            && modules.contains(&module.rsplit('.').next().unwrap_or(module));
        if let (true, [out, input]) = (adapted, spec.shape.as_slice()) {
            specs.push(TensorSpec {
                name: format!("base_model.model.{module}.lora_A.weight"),
                shape: vec![r, *input],
            });
            specs.push(TensorSpec {
                name: format!("base_model.model.{module}.lora_B.weight"),
                shape: vec![*out, r],
            });
        }
    }
    specs
}

/// Checks, from its header only, that the PEFT adapter weights file `path` holds exactly
/// the tensors a rank-`r` adapter on `modules` of a checkpoint of `config` has, in their
/// shapes: an adapter trained on another model (another width, fewer layers) or of
/// another rank than its configuration says is refused before any stage loads it.
pub fn check_adapter_headers(
    path: &Path,
    config: &ModelConfig,
    r: usize,
    modules: &[&str],
) -> Result<(), String> {
    let mut found = read_header(path)?;
    for spec in peft_lora_tensor_specs(config, r, modules) {
        match found.remove(&spec.name) {
            None => {
                return Err(format!(
                    "{}: tensor `{}` is missing, which a rank-{r} adapter on {} of this \
                     checkpoint has",
                    path.display(),
                    spec.name,
                    modules.join(", ")
                ))
            }
            Some(entry) if entry.shape != spec.shape => {
                return Err(format!(
                    "{}: tensor `{}` has shape {:?}, but a rank-{r} adapter on this \
                     checkpoint has {:?}: the adapter was trained on another model, or its \
                     adapter_config.json gives another rank",
                    path.display(),
                    spec.name,
                    entry.shape,
                    spec.shape
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = found.keys().next() {
        let shown: String = name.chars().take(96).collect();
        return Err(format!(
            "{}: tensor `{shown}` is not an adapter of this checkpoint's {} layers on {}",
            path.display(),
            config.num_hidden_layers,
            modules.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>)], cut: u64) {
        let mut header = serde_json::Map::new();
        let mut offset = 0u64;
        for (name, shape) in tensors {
            let bytes = 4 * shape.iter().product::<usize>() as u64;
            header.insert(
                (*name).to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
            );
            offset += bytes;
        }
        let header = serde_json::to_vec(&header).expect("json");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(&header);
        bytes.extend(vec![0u8; (offset - cut) as usize]);
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn headers_find_a_cut_file_and_a_shape_that_config_does_not_imply() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WEIGHTS_FILE);
        write_safetensors(&path, &[("a", vec![2, 3]), ("b", vec![4])], 0);
        let header = read_header(&path).expect("whole file");
        assert_eq!(header["a"].shape, vec![2, 3]);

        write_safetensors(&path, &[("a", vec![2, 3]), ("b", vec![4])], 8);
        let error = read_header(&path).expect_err("cut file");
        assert!(error.contains("cut short"), "{error}");

        std::fs::write(&path, [1, 2, 3]).expect("write");
        let error = read_header(&path).expect_err("tiny file");
        assert!(error.contains("cut short"), "{error}");
    }
}
