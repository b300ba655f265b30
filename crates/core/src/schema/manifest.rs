//! Parse: the manifest document as a whole — its top-level keys and the stages by name —
//! the root of the published pipeline schema. It is never decoded as one value: `check`
//! decodes each section entry by entry so that one bad entry does not hide the others.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::{
    Ablations, Backend, DatasetDecl, Defaults, Dtype, ModelDecl, Numerics, RewardDecl,
};
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
    /// Other manifests whose models, datasets, rewards and stages this one uses, by path
    /// relative to this file. Names are shared (flat): a name declared twice is an error.
    /// Each included stage keeps its own file's `defaults:`; the included files' `name`,
    /// `seed`, `backend`, `dtype`, `numerics` and `ablations` are not used.
    #[serde(default, skip_serializing_if = "Includes::is_empty")]
    pub include: Includes,
    /// Seed of every stage that does not set its own. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` (default), `wgpu` or `cuda`; `r1flow run --backend` overrides it.
    #[serde(default)]
    pub backend: Backend,
    /// `f32` (default), `bf16` or `f16`: the precision of training's matrix products
    /// (weights, optimizer moments and losses stay f32). The CPU trains in `f32` only;
    /// `wgpu` also in `f16` (with dynamic loss scaling), `cuda` in `bf16` and `f16`.
    #[serde(default)]
    pub dtype: Dtype,
    /// How the CPU kernels order their arithmetic: `portable` (the default on the CPU:
    /// the same bytes on every x86-64 machine with AVX2, at a measured cost in speed) or
    /// `native` (faster; the bits, and so the stages' keys, depend on the machine). GPU
    /// backends are native. `r1flow run --numerics` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerics: Option<Numerics>,
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
    /// namespace; names use ASCII letters, digits, `_` and `-`. A manifest that includes
    /// others may have no stages of its own.
    #[serde(default)]
    pub stages: IndexMap<String, StageDecl>,
    /// Ablation axes: axis → arm → `{dotted.path: value}` overrides.
    #[serde(default)]
    pub ablations: Ablations,
}

/// `include:` — one manifest path, or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Includes {
    One(String),
    Many(Vec<String>),
}

impl Default for Includes {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Includes {
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Many(paths) if paths.is_empty())
    }
}

impl Manifest {
    /// The top-level keys a manifest may have.
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "description",
        "include",
        "seed",
        "backend",
        "dtype",
        "numerics",
        "defaults",
        "models",
        "datasets",
        "rewards",
        "stages",
        "ablations",
    ];
}

/// The manifest's schema: the types' schema with what composition adds to it, which the
/// types do not carry because `check` decodes stages and defaults entry by entry: every
/// stage may `extends:` another (and then leave out its `kind`), and `defaults:` takes
/// one mapping per stage kind with that kind's parameters.
pub(super) fn pipeline_schema() -> serde_json::Value {
    let mut schema = super::draft07::<Manifest>();
    let extends = serde_json::json!({
        "type": "string",
        "description": "Another stage this one is a variation of: its keys, with the ones written here replacing them whole. The kind may be left out (it is the base's)."
    });
    let definitions = &mut schema["definitions"];
    let mut by_kind = serde_json::Map::new();
    if let Some(kinds) = definitions["StageDecl"]["oneOf"].as_array_mut() {
        for kind in kinds.iter_mut() {
            let Some(properties) = kind["properties"].as_object_mut() else {
                continue;
            };
            let name = properties
                .get("kind")
                .and_then(|k| k["const"].as_str())
                .map(str::to_string);
            let mut parameters = properties.clone();
            parameters.remove("kind");
            properties.insert("extends".into(), extends.clone());
            if let Some(name) = name {
                by_kind.insert(
                    name.clone(),
                    serde_json::json!({
                        "type": "object",
                        "additionalProperties": false,
                        "description": format!("Defaults of every `{name}` stage: they win over the shared defaults, and a stage's own values win over them."),
                        "properties": parameters,
                    }),
                );
            }
        }
    }
    let kinds = definitions["StageDecl"].take();
    definitions["StageDecl"] = serde_json::json!({
        "anyOf": [
            kinds,
            {
                "type": "object",
                "required": ["extends"],
                "properties": {"extends": extends},
                "description": "A stage declared as a variation of another (`extends:`), its kind taken from the base."
            }
        ]
    });
    if let Some(properties) = definitions["Defaults"]["properties"].as_object_mut() {
        properties.extend(by_kind);
    }
    schema
}
