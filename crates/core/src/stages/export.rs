//! Stage kind `export`: write a model as a HuggingFace directory (config.json,
//! model.safetensors, tokenizer.json, generation_config.json) that `transformers` loads.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InputField;
use super::{FieldChecks, Input, Need, Output, StageConfig, Unset};
use crate::manifest::params::stage_config;

stage_config! {
    /// `kind: export` — a model in HuggingFace layout, kept in the store and optionally copied
    /// to a directory.
    #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ExportStage {
        /// The model to export.
        pub from: String,
        /// Also copy the directory here (relative to the manifest). Not part of the cache key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<PathBuf>,
    }
    [resources]
}

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

    fn check(&self, _checks: &mut FieldChecks<'_>) {}

    fn resolve(&self) -> Result<Export, Unset> {
        Ok(Export {
            copy_to: self.path.clone(),
        })
    }
}

/// A checked `export` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Also copy the exported directory here (relative to the manifest); the stored
    /// artifact is written either way.
    pub copy_to: Option<PathBuf>,
}
