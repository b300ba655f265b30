//! Stage kind `export`: write a model as a HuggingFace directory (config.json,
//! model.safetensors, tokenizer.json, generation_config.json) that `transformers` loads.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Input, Need, Output, StageConfig};
use crate::check::FieldChecks;
use crate::exec::{StageContext, StageError, StageOutput};
use crate::train::{self, ExportTask};

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

impl StageConfig for ExportStage {
    const KIND: &'static str = "export";
    const IMPLEMENTATION: u32 = 1;

    fn inputs(&self) -> Vec<Input<'_>> {
        vec![Input {
            field: "from",
            name: &self.from,
            need: Need::Model,
        }]
    }

    fn output(&self, _inputs: &[Output]) -> Output {
        Output::Export
    }

    fn check(&self, _checks: &mut FieldChecks<'_>) {}

    fn runnable(&self) -> bool {
        true
    }

    fn run(&self, context: &mut StageContext<'_>) -> Result<StageOutput, StageError> {
        let copy_to = self.path.as_ref().map(|p| context.spec().base_dir.join(p));
        let numerics = train::stage_numerics(context);
        train::run_on_backend(numerics, ExportTask { context, copy_to })
    }
}
