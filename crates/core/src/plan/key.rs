//! Plan: the cache key of a stage instance. A stage's key is blake3 over the canonical
//! JSON of `KeyMaterial`, which holds everything that changes the stage's output bits and
//! nothing else — so ablation arms share every stage that is equal, and a changed input
//! file or upstream stage invalidates everything downstream of it.
//!
//! | field            | why it is in the key                                           |
//! |------------------|----------------------------------------------------------------|
//! | `key_format`     | a change to this struct's meaning invalidates every key        |
//! | `kind`           | two kinds never share an output                                |
//! | `implementation` | bumped when a kind's code changes its output for the same config|
//! | `params`         | the resolved config (defaults filled, seed included), minus the |
//! |                  | reference fields and fields that do not change the output      |
//! | `inputs`         | per reference field: the upstream stage's key, or the content  |
//! |                  | fingerprint of the model/dataset declaration it names (for a   |
//! |                  | `dataset` stage's `chat_template`, of that checkpoint's chat   |
//! |                  | template and special tokens only: its weights do not change    |
//! |                  | the prompts)                                                   |
//! | `rewards`        | per reward used: its weight and full definition (not just name)|
//! | `backend`,`dtype`| numerics differ across backends and precisions                 |
//! | `numerics`       | for a kind that computes with a model: `portable`, or `native` |
//! |                  | and the machine (`check::numerics`), whose bits it depends on  |
//! |                  | (on wgpu and cuda: the version of the GPU kernels instead)     |
//!
//! Not in the key: stage names, manifest name, formatting, comments, key order, other
//! stages' parameters, a kind's own `StageConfig::NOT_IN_KEY` fields (export's copy-to
//! `path`), and what the shared parameters' declarations (`manifest::params`) leave out by
//! their `KeyRule`: `save_steps` (checkpoint cadence) and `resources` (where it runs)
//! always, `ref_model_mixup_alpha` while the reference is never synced,
//! `gradient_checkpointing` while it is off, `importance_sampling_level` while it is
//! `token`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use super::canonical;
use super::fingerprint::Fingerprints;
use super::stage_key::StageKey;
use crate::check::numerics::key_numerics;
use crate::check::{Pipeline, Target};
use crate::manifest::params::{declared_parameters, KeyRule};
use crate::manifest::{DatasetDecl, Dtype, ModelDecl, RewardDecl};
use crate::stages::Need;
use crate::tasks::ChatTemplate;

/// Bump when the meaning of `KeyMaterial` changes.
pub const KEY_FORMAT: u32 = 1;

/// Everything that determines a stage's output. Serialized canonically and hashed.
#[derive(Debug, Clone, Serialize)]
pub struct KeyMaterial {
    pub key_format: u32,
    pub kind: &'static str,
    pub implementation: u32,
    pub params: Value,
    pub inputs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rewards: BTreeMap<String, Value>,
    pub backend: &'static str,
    pub dtype: Dtype,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerics: Option<String>,
}

impl KeyMaterial {
    /// The canonical JSON that is hashed (also what `plan` diffs to explain a miss).
    pub fn material(&self) -> Value {
        canonical::canonicalize(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The key: 64 hex digits of blake3 over the canonical JSON.
    pub fn hash(&self) -> StageKey {
        StageKey::new(canonical::hash(&self.material()))
    }
}

/// Builds the key of `stage` in `pipeline`, given the keys of the stages it reads.
pub(crate) fn key_material(
    pipeline: &Pipeline,
    stage: &crate::check::CheckedStage,
    upstream_keys: &BTreeMap<String, StageKey>,
    files: &mut Fingerprints,
) -> KeyMaterial {
    let mut params = stage.decl.to_json();
    if let Value::Object(map) = &mut params {
        for input in stage.decl.inputs() {
            map.remove(input.field.as_str());
        }
        for field in stage.decl.not_in_key() {
            map.remove(*field);
        }
        for refs in stage.decl.rewards() {
            map.remove(refs.field);
        }
        let omitted: Vec<&str> = declared_parameters()
            .filter(|declared| {
                map.get(declared.name)
                    .is_some_and(|value| match declared.key {
                        KeyRule::Always => false,
                        KeyRule::Never => true,
                        KeyRule::OmittedAt(legacy) => {
                            serde_json::from_str::<Value>(legacy).ok().as_ref() == Some(value)
                        }
                        KeyRule::OnlyWhen(acts) => !acts(map),
                    })
            })
            .map(|declared| declared.name)
            .collect();
        for field in omitted {
            map.remove(field);
        }
    }
    let chat_fields: Vec<&str> = stage
        .decl
        .inputs()
        .iter()
        .filter(|i| i.need == Need::ChatTemplate)
        .map(|i| i.field.as_str())
        .collect();
    let mut inputs = BTreeMap::new();
    for binding in &stage.bindings {
        let value = match &binding.target {
            Target::Model(name) if chat_fields.contains(&binding.field.as_str()) => pipeline
                .models
                .get(name)
                .map(|m| chat_template_fingerprint(m, &pipeline.base_dir))
                .unwrap_or_default(),
            Target::Stage(name) => upstream_keys
                .get(name)
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
            Target::Model(name) => pipeline
                .models
                .get(name)
                .map(|m| model_fingerprint(m, &pipeline.base_dir, files))
                .unwrap_or_default(),
            Target::Source(name) => pipeline
                .datasets
                .get(name)
                .map(|d| dataset_fingerprint(d, &pipeline.base_dir, files))
                .unwrap_or_default(),
        };
        inputs.insert(binding.field.clone(), value);
    }
    let mut rewards = BTreeMap::new();
    for refs in stage.decl.rewards() {
        for (name, weight) in refs.rewards {
            let definition = pipeline
                .rewards
                .get(name)
                .map(|r| reward_fingerprint(r, &pipeline.base_dir, files))
                .unwrap_or(Value::Null);
            rewards.insert(
                format!("{}.{name}", refs.field),
                json!({ "value": weight, "definition": definition }),
            );
        }
    }
    KeyMaterial {
        key_format: KEY_FORMAT,
        kind: stage.decl.kind(),
        implementation: stage.decl.implementation(),
        params,
        inputs,
        rewards,
        backend: pipeline.backend.as_str(),
        dtype: pipeline.dtype,
        numerics: stage
            .decl
            .stage_kind()
            .runs_model()
            .then(|| key_numerics(pipeline.numeric_profile(), pipeline.backend)),
    }
}

/// A model declaration with its files (checkpoint, adapter, tokenizer) replaced by their
/// content hashes.
fn model_fingerprint(model: &ModelDecl, base_dir: &Path, files: &mut Fingerprints) -> String {
    let mut value = serde_json::to_value(model).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        if let Some(path) = &model.path {
            map.insert("path".into(), Value::String(files.of(&base_dir.join(path))));
        }
        if let Some(adapter) = &model.adapter {
            map.insert(
                "adapter".into(),
                Value::String(files.of(&base_dir.join(adapter))),
            );
        }
        if let Some(tokenizer) = &model.tokenizer {
            map.insert(
                "tokenizer".into(),
                Value::String(files.of(&base_dir.join(tokenizer))),
            );
        }
    }
    format!("model:{}", canonical::hash(&value))
}

/// What of a checkpoint renders prompts: its chat template and special tokens (check has
/// reported a checkpoint without a readable one).
fn chat_template_fingerprint(model: &ModelDecl, base_dir: &Path) -> String {
    let Some(path) = &model.path else {
        return String::new();
    };
    let dir = base_dir.join(path);
    match ChatTemplate::from_checkpoint(&dir) {
        Ok(Some(template)) => template.fingerprint(),
        _ => format!("missing:{}", dir.display()),
    }
}

/// A dataset declaration with its file replaced by its content hash.
fn dataset_fingerprint(dataset: &DatasetDecl, base_dir: &Path, files: &mut Fingerprints) -> String {
    let mut value = serde_json::to_value(dataset).unwrap_or(Value::Null);
    if let (DatasetDecl::Jsonl(source), Value::Object(map)) = (dataset, &mut value) {
        map.insert(
            "path".into(),
            Value::String(files.of(&base_dir.join(&source.path))),
        );
    }
    format!("dataset:{}", canonical::hash(&value))
}

/// A reward definition with the files it reads replaced by their content hashes (a
/// verifier script's arguments that name files, a word list).
fn reward_fingerprint(reward: &RewardDecl, base_dir: &Path, files: &mut Fingerprints) -> Value {
    let mut value = serde_json::to_value(reward).unwrap_or(Value::Null);
    match (reward, &mut value) {
        (RewardDecl::Command(cmd), Value::Object(map)) => {
            let args: Vec<Value> = cmd
                .command
                .iter()
                .map(|arg| {
                    let path = base_dir.join(arg);
                    if arg.contains('/') || path.is_file() {
                        Value::String(format!("{arg}#{}", files.of(&path)))
                    } else {
                        Value::String(arg.clone())
                    }
                })
                .collect();
            map.insert("command".into(), Value::Array(args));
        }
        (RewardDecl::Language(lang), Value::Object(map)) => {
            if let Some(list) = &lang.word_list {
                map.insert(
                    "word_list".into(),
                    Value::String(files.of(&base_dir.join(list))),
                );
            }
        }
        (RewardDecl::Model(_), Value::Object(map)) => {
            // The reward model's stage key is among the inputs; its name is not output.
            map.remove("model");
        }
        (RewardDecl::Code(_), Value::Object(map)) => {
            // How many programs run at once changes how fast, not what is scored.
            map.remove("max_parallel");
        }
        _ => {}
    }
    value
}
