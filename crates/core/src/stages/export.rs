//! Stage kind `export`: write a model as a HuggingFace directory (config.json,
//! model.safetensors, tokenizer.json, generation_config.json) that `transformers` loads,
//! or, with `merge: false`, the LoRA adapter a stage trained as the directory `peft`
//! loads (adapter_config.json, adapter_model.safetensors).

use std::path::PathBuf;

use super::kind_config::kind_config;
use super::{FieldChecks, InputField, KindChecks, Need, Output};

kind_config! {
    // Where the directory is also copied to does not change it: `path` is not in the key.
    kind = "export", implementation = 1, not_in_key = ["path"], output = Output::Export;

    /// `kind: export` — a model in HuggingFace layout (or its LoRA adapter in PEFT's),
    /// kept in the store and optionally copied to a directory.
    pub struct ExportStage {
        /// The model to export.
        #[input(InputField::From, Need::Model)]
        pub from: String,
        /// Also copy the directory here (relative to the manifest). Not part of the cache key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[resolved(as copy_to)]
        pub path: Option<PathBuf>,
        /// `true` (default): the whole model, a stage's LoRA adapter merged into its
        /// weights, as a HuggingFace checkpoint. `false`: only the LoRA adapter of `from`
        /// (a stage with `lora:`, or a model declared with `adapter:`), as the PEFT adapter
        /// directory `PeftModel.from_pretrained` loads on top of its base.
        #[serde(default = "ExportStage::default_merge", skip_serializing_if = "ExportStage::is_merge")]
        // Specs stored before `merge` existed exported the whole model.
        #[resolved(serde(default = "ExportStage::default_merge"))]
        pub merge: bool,
        /// With `merge: false`: the `base_model_name_or_path` written in
        /// adapter_config.json (a Hub id such as `Qwen/Qwen2.5-0.5B-Instruct`, or a
        /// directory). Default: the checkpoint directory the adapter was trained on, as
        /// the manifest names it, when that is a `models:` entry with `path:`; else none
        /// (`null`, as PEFT writes it without one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[resolved(serde(default, skip_serializing_if = "Option::is_none"))]
        pub base_model: Option<String>,
    }
    [resources]

    /// A checked `export` stage.
    resolved pub struct Export;
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

impl KindChecks for ExportStage {
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
}
