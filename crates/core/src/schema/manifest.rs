//! Parse: the manifest document as a whole — its top-level keys and the stages by name —
//! the root of the published pipeline schema. It is never decoded as one value: `check`
//! decodes each section entry by entry so that one bad entry does not hide the others.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::{Ablations, Backend, DatasetDecl, Defaults, Dtype, ModelDecl, RewardDecl};
use crate::stages::StageDecl;

/// An r1flow pipeline manifest.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "r1flow pipeline manifest")]
pub struct Manifest {
    /// Name of the pipeline, shown in runs and reports.
    pub name: String,
    /// What the pipeline is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seed of every stage that does not set its own. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` (default), `wgpu` or `cuda`; `r1flow run --backend` overrides it.
    #[serde(default)]
    pub backend: Backend,
    /// `f32` (default), `bf16` or `f16`.
    #[serde(default)]
    pub dtype: Dtype,
    /// Values of shared stage parameters (`learning_rate`, `temperature`, `beta`, …) for
    /// every stage that has them and does not set them.
    #[serde(default)]
    pub defaults: Defaults,
    /// Models by name: built-in presets or local HuggingFace checkpoints.
    #[serde(default)]
    pub models: IndexMap<String, ModelDecl>,
    /// Datasets by name: task generators or JSONL files.
    #[serde(default)]
    pub datasets: IndexMap<String, DatasetDecl>,
    /// Rewards by name; stages refer to them with weights.
    #[serde(default)]
    pub rewards: IndexMap<String, RewardDecl>,
    /// The stages by name, each with a `kind`. Stages, models and datasets share one
    /// namespace; names use ASCII letters, digits, `_` and `-`.
    pub stages: IndexMap<String, StageDecl>,
    /// Ablation axes: axis → arm → `{dotted.path: value}` overrides.
    #[serde(default)]
    pub ablations: Ablations,
}

impl Manifest {
    /// The top-level keys a manifest may have.
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "description",
        "seed",
        "backend",
        "dtype",
        "defaults",
        "models",
        "datasets",
        "rewards",
        "stages",
        "ablations",
    ];
}
