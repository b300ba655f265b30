//! Execute: a stage instance as the executor runs it — everything a stage needs, with no
//! reference to the manifest, so a stage can also run in another process (a Slurm job)
//! given only the store and its key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::check::{Pipeline, Target};
use crate::manifest::{Backend, DatasetDecl, Dtype, ModelDecl, RewardDecl};
use crate::plan::PlannedStage;
use crate::stages::StageDecl;

/// What an input field of a stage resolves to at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputSpec {
    /// The artifact of an upstream stage, by key.
    Artifact { key: String, stage: String },
    /// A model declaration (preset or checkpoint).
    Model { name: String, decl: ModelDecl },
    /// A dataset declaration.
    Source { name: String, decl: DatasetDecl },
}

/// One stage instance, ready to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSpec {
    pub key: String,
    pub name: String,
    pub pipeline: String,
    pub variants: Vec<String>,
    /// The resolved config (every default filled).
    pub config: StageDecl,
    /// Field → what it names.
    pub inputs: BTreeMap<String, InputSpec>,
    /// Definitions of the rewards the stage uses, by name.
    pub rewards: IndexMap<String, RewardDecl>,
    /// Where the manifest's relative paths start.
    pub base_dir: PathBuf,
    pub backend: Backend,
    pub dtype: Dtype,
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
                        key: input.key.clone(),
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
        Self {
            key: stage.key.clone(),
            name: stage.name.clone(),
            pipeline: pipeline.name.clone(),
            variants: stage.variants.clone(),
            config: stage.stage.decl.clone(),
            inputs,
            rewards,
            base_dir: pipeline.base_dir.clone(),
            backend: pipeline.backend,
            dtype: pipeline.dtype,
        }
    }

    /// The keys of the upstream artifacts this stage reads.
    pub fn upstream_keys(&self) -> impl Iterator<Item = &str> {
        self.inputs.values().filter_map(|i| match i {
            InputSpec::Artifact { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }
}
