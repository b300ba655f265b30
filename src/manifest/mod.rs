//! Parse: the manifest as a user writes it — serde + schemars types close to the YAML,
//! from which the JSON Schema in `schemas/` is generated. `check` turns it into a
//! `Pipeline` with names resolved and defaults filled.

mod dataset;
mod model;
pub mod params;
mod reward;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use dataset::{
    ArithmeticTask, CountdownTask, DatasetDecl, JsonlFormat, JsonlSource, Operation, RecordShape,
    SolutionNoise,
};
pub use model::{ModelDecl, Preset};
pub use params::{Defaults, LossType, LrScheduler, ScaleRewards};
pub use reward::{
    AccuracyMode, AccuracyReward, CommandReward, FormatMode, FormatReward, LanguageDetection,
    LanguageReward, LengthReward, ModelReward, RewardDecl,
};

use crate::stages::StageDecl;

/// Where stages run. Only backends compiled into this binary can be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The CPU (default; runs anywhere).
    #[default]
    Cpu,
    /// Vulkan/Metal/DX12 GPUs through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA GPUs through CUDA (cargo feature `cuda`).
    Cuda,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

/// Floating-point type of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    #[default]
    F32,
    Bf16,
    F16,
}

/// Ablation axes: axis name → arm name → overrides (`dotted.path: value`). The variants
/// are every combination of one arm per axis; stages equal across variants run once.
pub type Ablations = IndexMap<String, IndexMap<String, IndexMap<String, serde_json::Value>>>;

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
    /// The stages by name, each with a `kind`.
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
