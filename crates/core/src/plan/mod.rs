//! Plan: from checked pipelines (one per variant) to one DAG of stage instances, each with
//! its cache key. Instances with equal keys are one node, so ablation arms share every
//! upstream stage that is equal; the node lists the variants that use it.

mod canonical;
mod fingerprint;
mod key;
mod render;
mod spec;
mod stage_key;
mod why;

use std::collections::BTreeMap;

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::stages::StageKind;

pub use canonical::{canonicalize, hash as canonical_hash, to_canonical_string};
pub use fingerprint::Fingerprints;
pub use key::{KeyMaterial, KEY_FORMAT};
pub use render::{render_dot, render_json, render_text, StageState};
pub use spec::{InputSpec, StageSpec};
pub use stage_key::StageKey;
pub use why::explain_miss;

use crate::check::{CheckedStage, Pipeline, Target, Variant};

/// One input of a planned stage instance.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedInput {
    /// The config field (`from`, `prompts`, `rewards.judge` …).
    pub field: String,
    /// What it names.
    pub target: Target,
    /// The upstream instance's key, or the declaration's content fingerprint.
    pub key: String,
}

/// One stage instance: a node of the DAG.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    /// The stage's name (the first variant's, if variants name equal stages differently).
    pub name: String,
    pub kind: StageKind,
    pub key: StageKey,
    /// The variants that use this instance, in variant order.
    pub variants: Vec<String>,
    pub inputs: Vec<PlannedInput>,
    /// Created for a stage that names an entry of `datasets:` directly.
    pub implicit: bool,
    /// What the key hashes (for explaining cache misses).
    #[serde(skip)]
    pub key_material: KeyMaterial,
    /// The stage as checked, from the first variant that uses it.
    #[serde(skip)]
    pub stage: CheckedStage,
}

/// The DAG of a manifest: stage instances in execution order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub variants: Vec<Variant>,
    /// In a topological order (inputs first; ties in manifest order).
    pub stages: Vec<PlannedStage>,
    /// Edges point from an input to the stage that reads it; weights are field names.
    pub graph: DiGraph<usize, String>,
    /// The checked pipelines the plan was built from, one per variant.
    pub pipelines: Vec<Pipeline>,
}

impl Plan {
    /// The instance with `key`.
    pub fn stage(&self, key: &StageKey) -> Option<&PlannedStage> {
        self.stages.iter().find(|s| &s.key == key)
    }

    /// Number of distinct instances, against the count without sharing.
    pub fn sharing(&self) -> (usize, usize) {
        let unshared = self.stages.iter().map(|s| s.variants.len()).sum();
        (self.stages.len(), unshared)
    }
}

/// Builds the plan of checked pipelines (all variants of one manifest).
pub fn plan(pipelines: Vec<Pipeline>) -> Plan {
    let mut files = Fingerprints::default();
    let mut nodes: IndexMap<StageKey, PlannedStage> = IndexMap::new();
    for pipeline in &pipelines {
        let mut keys: BTreeMap<String, StageKey> = BTreeMap::new();
        for name in execution_order(pipeline) {
            let Some(stage) = pipeline.stages.get(&name) else {
                continue;
            };
            let key_material = key::key_material(pipeline, stage, &keys, &mut files);
            let key = key_material.hash();
            keys.insert(name.clone(), key.clone());
            let inputs = stage
                .bindings
                .iter()
                .map(|b| PlannedInput {
                    field: b.field.clone(),
                    target: b.target.clone(),
                    key: key_material
                        .inputs
                        .get(&b.field)
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect();
            let node = nodes.entry(key.clone()).or_insert_with(|| PlannedStage {
                name: name.clone(),
                kind: stage.decl.stage_kind(),
                key,
                variants: Vec::new(),
                inputs,
                implicit: stage.implicit,
                key_material,
                stage: stage.clone(),
            });
            if !node.variants.contains(&pipeline.variant.name) {
                node.variants.push(pipeline.variant.name.clone());
            }
        }
    }
    let stages: Vec<PlannedStage> = nodes.into_values().collect();
    let mut graph = DiGraph::new();
    let indices: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
    let position: BTreeMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.as_str(), i))
        .collect();
    for (i, stage) in stages.iter().enumerate() {
        for input in &stage.inputs {
            if let Some(&from) = position.get(input.key.as_str()) {
                graph.add_edge(indices[from], indices[i], input.field.clone());
            }
        }
    }
    Plan {
        name: pipelines
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        variants: pipelines.iter().map(|p| p.variant.clone()).collect(),
        stages,
        graph,
        pipelines,
    }
}

/// Stage names of one pipeline with inputs first, ties broken by manifest order. Check has
/// rejected cycles, so every stage is placed.
fn execution_order(pipeline: &Pipeline) -> Vec<String> {
    let mut placed: Vec<String> = Vec::with_capacity(pipeline.stages.len());
    let mut remaining: Vec<&CheckedStage> = pipeline.stages.values().collect();
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .position(|s| s.upstream().all(|u| placed.iter().any(|p| p == u)));
        match ready {
            Some(i) => placed.push(remaining.remove(i).name.clone()),
            // Unreachable after check; place the rest as written rather than loop forever.
            None => {
                placed.extend(remaining.iter().map(|s| s.name.clone()));
                break;
            }
        }
    }
    placed
}
