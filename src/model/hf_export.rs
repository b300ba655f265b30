//! Model layer (used by execute): writing a model as a HuggingFace Qwen2ForCausalLM
//! directory — config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
//! generation_config.json — that `transformers` loads.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use serde_json::{json, Value};

use super::hf_import::{GENERATION_CONFIG_FILE, WEIGHTS_FILE};
use super::safetensors_io::serialize_f32;
use super::transformer::TensorSpec;
use super::{ModelConfig, ModelError, TextTokenizer, Transformer};

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
    let mut tok_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.max_position_embeddings,
        "bos_token": name_of(tokenizer.bos_id()),
        "eos_token": name_of(tokenizer.eos_ids().first().copied()),
        "pad_token": name_of(Some(tokenizer.pad_id())),
        "clean_up_tokenization_spaces": false,
    });
    if let (Some(template), Some(map)) = (tokenizer.chat_template(), tok_config.as_object_mut()) {
        // The checkpoint's own template, so that transformers' apply_chat_template and
        // vLLM's chat endpoint prompt the trained model as it was trained.
        map.insert("chat_template".into(), Value::String(template.to_string()));
    }
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
