//! Plan: a stage instance as execution receives it — everything a stage needs, with no
//! reference to the manifest (its settings resolved, the declarations it reads copied in),
//! so a stage can also run in another process (a Slurm job) given only this and its inputs.
//! The store keeps it by key; reports read what was run from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::check::numerics::native_machine;
use crate::check::{Pipeline, Target};
use crate::manifest::{Backend, DatasetDecl, Dtype, ModelDecl, Numerics, Resources, RewardDecl};
use crate::plan::{PlannedStage, StageKey};
use crate::stages::{InputField, ResolvedStage, StageDecl};

/// What an input field of a stage resolves to at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputSpec {
    /// The artifact of an upstream stage, by key.
    Artifact { key: StageKey, stage: String },
    /// A model declaration (preset or checkpoint).
    Model { name: String, decl: ModelDecl },
    /// A dataset declaration.
    Source { name: String, decl: DatasetDecl },
}

/// One stage instance, ready to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "StoredSpec")]
pub struct StageSpec {
    pub key: StageKey,
    pub name: String,
    pub pipeline: String,
    pub variants: Vec<String>,
    /// The config as written, every default filled (what the key hashes; what reports
    /// show as the stage's parameters).
    pub config: StageDecl,
    /// Its settings with every default applied: what the stage's runner reads.
    pub resolved: ResolvedStage,
    /// Field → what it names.
    pub inputs: BTreeMap<String, InputSpec>,
    /// Definitions of the rewards the stage uses, by name.
    pub rewards: IndexMap<String, RewardDecl>,
    /// Where the manifest's relative paths start.
    pub base_dir: PathBuf,
    pub backend: Backend,
    pub dtype: Dtype,
    /// The numeric profile its model code runs in (specs stored before profiles existed
    /// ran natively).
    #[serde(default = "native")]
    pub numerics: Numerics,
    /// For the native profile on the CPU, the machine its key was planned for
    /// (`check::numerics::native_machine`): a worker on another refuses to run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// What its job asks a cluster for (not in its key).
    #[serde(default)]
    pub resources: Resources,
}

fn native() -> Numerics {
    Numerics::Native
}

impl StageSpec {
    /// The spec of a planned stage instance (from the first pipeline that uses it).
    pub fn from_plan(stage: &PlannedStage, pipeline: &Pipeline) -> Self {
        let inputs = stage
            .inputs
            .iter()
            .filter_map(|input| {
                let spec = match &input.target {
                    Target::Stage(name) => InputSpec::Artifact {
                        key: StageKey::new(input.key.clone()),
                        stage: name.clone(),
                    },
                    Target::Model(name) => InputSpec::Model {
                        name: name.clone(),
                        decl: pipeline.models.get(name)?.clone(),
                    },
                    Target::Source(name) => InputSpec::Source {
                        name: name.clone(),
                        decl: pipeline.datasets.get(name)?.clone(),
                    },
                };
                Some((input.field.clone(), spec))
            })
            .collect();
        let rewards = stage
            .stage
            .decl
            .rewards()
            .iter()
            .flat_map(|refs| refs.rewards.keys())
            .filter_map(|name| Some((name.clone(), pipeline.rewards.get(name)?.clone())))
            .collect();
        let numerics = pipeline.numeric_profile();
        Self {
            key: stage.key.clone(),
            name: stage.name.clone(),
            pipeline: pipeline.name.clone(),
            variants: stage.variants.clone(),
            config: stage.stage.decl.clone(),
            resolved: stage.stage.resolved.clone(),
            inputs,
            rewards,
            base_dir: pipeline.base_dir.clone(),
            backend: pipeline.backend,
            dtype: pipeline.dtype,
            numerics,
            machine: (numerics == Numerics::Native && pipeline.backend == Backend::Cpu)
                .then(native_machine),
            resources: stage.stage.decl.resources().cloned().unwrap_or_default(),
        }
    }

    /// What input `field` of this stage resolves to.
    pub fn input(&self, field: InputField) -> Option<&InputSpec> {
        self.inputs.get(field.as_str())
    }

    /// The keys of the upstream artifacts this stage reads.
    pub fn upstream_keys(&self) -> impl Iterator<Item = &StageKey> {
        self.inputs.values().filter_map(|i| match i {
            InputSpec::Artifact { key, .. } => Some(key),
            _ => None,
        })
    }
}

/// A spec as the store holds it. Specs stored before settings were resolved at check time
/// have no `resolved`; it is derived from their config, which check had filled.
#[derive(Deserialize)]
struct StoredSpec {
    key: StageKey,
    name: String,
    pipeline: String,
    variants: Vec<String>,
    config: StageDecl,
    #[serde(default)]
    resolved: Option<ResolvedStage>,
    inputs: BTreeMap<String, InputSpec>,
    rewards: IndexMap<String, RewardDecl>,
    base_dir: PathBuf,
    backend: Backend,
    dtype: Dtype,
    #[serde(default = "native")]
    numerics: Numerics,
    #[serde(default)]
    machine: Option<String>,
    #[serde(default)]
    resources: Resources,
}

impl TryFrom<StoredSpec> for StageSpec {
    type Error = String;

    fn try_from(stored: StoredSpec) -> Result<Self, String> {
        let resolved = match stored.resolved {
            Some(resolved) => resolved,
            None => stored.config.resolve().map_err(|unset| {
                format!(
                    "the stored spec of stage `{}` has no value for `{}`",
                    stored.name, unset.field
                )
            })?,
        };
        Ok(Self {
            key: stored.key,
            name: stored.name,
            pipeline: stored.pipeline,
            variants: stored.variants,
            config: stored.config,
            resolved,
            inputs: stored.inputs,
            rewards: stored.rewards,
            base_dir: stored.base_dir,
            backend: stored.backend,
            dtype: stored.dtype,
            numerics: stored.numerics,
            machine: stored.machine,
            resources: stored.resources,
        })
    }
}
