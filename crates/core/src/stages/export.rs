//! Stage kind `export`: write a model as a HuggingFace directory (config.json,
//! model.safetensors, tokenizer.json, generation_config.json) that `transformers` loads,
//! or, with `merge: false`, the LoRA adapter a stage trained as the directory `peft`
//! loads (adapter_config.json, adapter_model.safetensors).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InputField;
use super::{FieldChecks, Input, Need, Output, StageConfig, Unset};
use crate::manifest::params::stage_config;

stage_config! {
    /// `kind: export` — a model in HuggingFace layout (or its LoRA adapter in PEFT's),
    /// kept in the store and optionally copied to a directory.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ExportStage {
        /// The model to export.
        pub from: String,
        /// Also copy the directory here (relative to the manifest). Not part of the cache key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<PathBuf>,
        /// `true` (default): the whole model, a stage's LoRA adapter merged into its
        /// weights, as a HuggingFace checkpoint. `false`: only the LoRA adapter of `from`
        /// (a stage with `lora:`, or a model declared with `adapter:`), as the PEFT adapter
        /// directory `PeftModel.from_pretrained` loads on top of its base.
        #[serde(default = "ExportStage::default_merge", skip_serializing_if = "ExportStage::is_merge")]
        pub merge: bool,
        /// With `merge: false`: the `base_model_name_or_path` written in
        /// adapter_config.json (a Hub id such as `Qwen/Qwen2.5-0.5B-Instruct`, or a
        /// directory). Default: the checkpoint directory the adapter was trained on, as
        /// the manifest names it, when that is a `models:` entry with `path:`; else none
        /// (`null`, as PEFT writes it without one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub base_model: Option<String>,
    }
    [resources]
}

impl ExportStage {
    fn default_merge() -> bool {
        true
    }
    fn is_merge(merge: &bool) -> bool {
        *merge
    }
}

/// The longest `base_model` accepted (a Hub id is at most 96 characters; a path a few
/// hundred).
const MAX_BASE_MODEL_CHARS: usize = 4096;

impl StageConfig for ExportStage {
    const KIND: &'static str = "export";
    const IMPLEMENTATION: u32 = 1;
    type Resolved = Export;
    /// Where the directory is also copied to does not change it.
    const NOT_IN_KEY: &'static [&'static str] = &["path"];

    fn inputs(&self) -> Vec<Input<'_>> {
        vec![Input::new(InputField::From, &self.from, Need::Model)]
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::Export
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        if let Some(base) = &self.base_model {
            checks.ensure(
                !self.merge,
                "base_model",
                "`base_model` is only written with `merge: false`",
                "it names the base in a PEFT adapter's adapter_config.json; a merged export is a whole checkpoint: add `merge: false` or remove `base_model`",
            );
            checks.ensure(
                !base.trim().is_empty() && base.chars().count() <= MAX_BASE_MODEL_CHARS,
                "base_model",
                format!(
                    "`base_model` must be a Hub id or a path of 1 to {MAX_BASE_MODEL_CHARS} characters"
                ),
                "e.g. `base_model: Qwen/Qwen2.5-0.5B-Instruct`",
            );
        }
    }

    fn resolve(&self) -> Result<Export, Unset> {
        Ok(Export {
            copy_to: self.path.clone(),
            merge: self.merge,
            base_model: self.base_model.clone(),
        })
    }
}

/// A checked `export` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Also copy the exported directory here (relative to the manifest); the stored
    /// artifact is written either way.
    pub copy_to: Option<PathBuf>,
    /// The whole model (`true`) or its LoRA adapter as PEFT's files (`false`).
    #[serde(default = "merged")]
    pub merge: bool,
    /// With `merge: false`, adapter_config.json's `base_model_name_or_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<String>,
}

fn merged() -> bool {
    true
}
