//! Check: the checked pipeline — what `check` hands to `plan`: declarations by name,
//! stages with their references resolved and every default filled.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;

use crate::diag::SourceFile;
use crate::manifest::{Backend, DatasetDecl, Dtype, ModelDecl, Numerics, RewardDecl};
use crate::stages::{Output, ResolvedStage, StageDecl};

/// One combination of ablation arms (or the whole manifest when it has no ablations).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Arm names joined with `+`, or `default` when the manifest has no ablations.
    pub name: String,
    /// (axis, arm) pairs, in axis order.
    pub arms: Vec<(String, String)>,
    /// The overrides this variant applies, `dotted.path → value`.
    pub overrides: IndexMap<String, serde_json::Value>,
}

impl Variant {
    pub const DEFAULT_NAME: &'static str = "default";

    pub fn default_variant() -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_string(),
            arms: Vec::new(),
            overrides: IndexMap::new(),
        }
    }
}

/// What a stage reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// Another stage's output.
    Stage(String),
    /// An entry of `models:`.
    Model(String),
    /// An entry of `datasets:` (read by `dataset` stages).
    Source(String),
}

/// One resolved reference of a stage.
#[derive(Debug, Clone, Serialize)]
pub struct Binding {
    /// The config field that holds it (`from`, `prompts`, `rewards.judge` …).
    pub field: String,
    pub target: Target,
}

/// A stage with its references resolved.
#[derive(Debug, Clone)]
pub struct CheckedStage {
    pub name: String,
    /// The stage as written, every default filled (what its cache key hashes).
    pub decl: StageDecl,
    /// Its settings with every default applied: what execution reads.
    pub resolved: ResolvedStage,
    /// Created for a stage that names an entry of `datasets:` directly.
    pub implicit: bool,
    pub bindings: Vec<Binding>,
    pub output: Output,
}

impl CheckedStage {
    /// Names of the stages this one reads.
    pub fn upstream(&self) -> impl Iterator<Item = &str> {
        self.bindings.iter().filter_map(|b| match &b.target {
            Target::Stage(name) => Some(name.as_str()),
            _ => None,
        })
    }
}

/// A manifest that passed every check, for one variant.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub file: Arc<SourceFile>,
    /// The directory relative paths in the manifest are resolved against.
    pub base_dir: PathBuf,
    pub variant: Variant,
    pub seed: u64,
    pub backend: Backend,
    pub dtype: Dtype,
    /// The numeric profile of the CPU kernels as written (`numerics:`, or `--numerics`);
    /// [`Pipeline::numeric_profile`] is the one it runs in.
    pub numerics: Option<Numerics>,
    pub models: IndexMap<String, ModelDecl>,
    pub datasets: IndexMap<String, DatasetDecl>,
    /// Declared rewards and the built-in ones the stages use.
    pub rewards: IndexMap<String, RewardDecl>,
    /// Stages in manifest order (implicit dataset stages first).
    pub stages: IndexMap<String, CheckedStage>,
}

impl Pipeline {
    /// The numeric profile its stages run in, on its backend (`check::numerics::profile`).
    pub fn numeric_profile(&self) -> Numerics {
        super::numerics::profile(self.numerics, self.backend)
    }

    /// A path from the manifest, resolved against the manifest's directory.
    pub fn resolve_path(&self, path: &std::path::Path) -> PathBuf {
        self.base_dir.join(path)
    }
}
