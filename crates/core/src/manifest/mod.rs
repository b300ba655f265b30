//! Parse: the manifest as a user writes it — serde + schemars types close to the YAML,
//! from which the JSON Schema in `schemas/` is generated. `check` turns it into a
//! `Pipeline` with names resolved and defaults filled.

mod dataset;
mod dynamic_sampling;
mod lora;
mod model;
pub mod params;
mod resources;
mod reward;
mod template;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use dataset::{
    AnswerExtractor, ArithmeticTask, CountdownTask, DatasetDecl, JsonlFormat, JsonlSource,
    Operation, RecordShape, Scratchpad, SolutionNoise, TestSize, MAX_GENERATED_SAMPLES,
};
pub use dynamic_sampling::DynamicSampling;
pub use lora::{LoraInit, LoraSpec, LORA_ALL_LINEAR, LORA_TARGET_MODULES, MAX_LORA_RANK};
pub use model::{ModelDecl, Preset, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
pub use params::{Defaults, ImportanceSamplingLevel, LossType, LrScheduler, ScaleRewards};
pub use resources::Resources;
pub use reward::{
    AccuracyMode, AccuracyReward, AnswerIn, CommandReward, FormatMode, FormatReward,
    LanguageDetection, LanguageReward, LengthReward, ModelReward, RewardDecl,
};
pub use reward::{CodeLanguage, CodeReward, CodeSandbox, CodeScoring};
pub use template::{PromptTemplate, TemplateName};

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

/// How the CPU kernels order their floating-point arithmetic (`numerics:`).
///
/// `portable` (the default on the CPU): every matrix product, reduction and fused
/// operation sums in an order fixed by the shapes alone, so every x86-64 machine with
/// AVX2 writes the same bytes whatever its vector width or thread count, and a stage's
/// cache key says everything its output depends on. `native`: matrix products by the
/// `gemm` crate, whose instruction set and blocking follow the CPU (faster, but the bits
/// depend on the machine, which then enters the key). GPU backends are always `native`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Numerics {
    Portable,
    Native,
}

impl Numerics {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Native => "native",
        }
    }
}

/// The precision training computes its matrix products in (mixed precision: weights,
/// optimizer moments and losses are f32 in every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Dtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}

/// Ablation axes: axis name → arm name → overrides (`dotted.path: value`). The variants
/// are every combination of one arm per axis; stages equal across variants run once.
pub type Ablations = IndexMap<String, IndexMap<String, IndexMap<String, serde_json::Value>>>;
