//! Report (`compare`): the rows' raw material, read from the store — the variants of a
//! planned manifest, found by their stage keys (nothing is run), or the variants of a
//! stored run. Each comes with its resolved parameters, its eval stages' final metrics,
//! its training curves, and the stages the store does not hold.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::compare::{EvalResult, VariantResult};
use super::params;
use super::stored::{eval_metrics, stage_series, StageRef};
use crate::plan::Plan;
use crate::plan::{StageKey, StageSpec};
use crate::stages::StageKind;
use crate::store::{RunRecord, StageStatus, Store, StoreError};

/// Kinds whose instances have a metric series worth plotting.
fn is_training(kind: Option<StageKind>) -> bool {
    kind.is_some_and(StageKind::trains)
}

fn is_eval(kind: Option<StageKind>) -> bool {
    kind == Some(StageKind::Eval)
}

/// The variants of a planned manifest, in variant order, as the store has them.
pub fn of_plan(store: &Store, plan: &Plan) -> Result<Vec<VariantResult>, StoreError> {
    let mut variants = Vec::new();
    for pipeline in &plan.pipelines {
        let name = &pipeline.variant.name;
        let mut result = VariantResult {
            label: name.clone(),
            params: params::of_pipeline(pipeline),
            evals: Vec::new(),
            missing: Vec::new(),
            curves: Vec::new(),
        };
        for stage in plan.stages.iter().filter(|s| s.variants.contains(name)) {
            // Ablations change values, never stage names: one name in every variant.
            let stage_name = stage.name.clone();
            let Some(record) = store.artifact(&stage.key)? else {
                if is_eval(Some(stage.kind)) || is_training(Some(stage.kind)) {
                    result
                        .missing
                        .push(format!("{stage_name} (key {})", stage.key.short()));
                }
                continue;
            };
            let reference = StageRef {
                name: stage_name.clone(),
                kind: stage.kind.to_string(),
                key: stage.key.clone(),
            };
            if is_eval(Some(stage.kind)) {
                result.evals.push(EvalResult {
                    stage: stage_name,
                    key: stage.key.clone(),
                    metrics: eval_metrics(store, &record.outputs, &record.metrics)?,
                });
            } else if is_training(Some(stage.kind)) {
                result
                    .curves
                    .push(stage_series(store, reference, Some(&pipeline.rewards))?);
            }
        }
        variants.push(result);
    }
    Ok(variants)
}

/// The variants of a stored run, in the order its stages name them. With `prefix`, each
/// label starts with the run id (`20261129-094557-5689:low`), to tell runs apart.
pub fn of_run(
    store: &Store,
    run: &RunRecord,
    prefix: bool,
) -> Result<Vec<VariantResult>, StoreError> {
    let mut names: Vec<&str> = Vec::new();
    for stage in &run.stages {
        for variant in &stage.variants {
            if !names.contains(&variant.as_str()) {
                names.push(variant);
            }
        }
    }
    let mut variants = Vec::new();
    for name in names {
        let stages: Vec<_> = run
            .stages
            .iter()
            .filter(|s| s.variants.iter().any(|v| v == name))
            .collect();
        let mut specs: BTreeMap<StageKey, StageSpec> = BTreeMap::new();
        for stage in &stages {
            if let Some(spec) = store.spec::<StageSpec>(&stage.key)? {
                specs.insert(stage.key.clone(), spec);
            }
        }
        let label = match (prefix, name) {
            (true, "default") => run.id.clone(),
            (true, name) => format!("{}:{name}", run.id),
            (false, name) => name.to_string(),
        };
        let mut result = VariantResult {
            label,
            params: params::of_specs(stages.iter().filter_map(|s| specs.get(&s.key))),
            evals: Vec::new(),
            missing: Vec::new(),
            curves: Vec::new(),
        };
        for stage in stages {
            let finished = matches!(
                stage.status,
                StageStatus::Ran | StageStatus::Resumed | StageStatus::Cached
            );
            if !finished {
                if is_eval(StageKind::named(&stage.kind))
                    || is_training(StageKind::named(&stage.kind))
                {
                    let status = serde_json::to_value(stage.status)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    result.missing.push(format!(
                        "{} (key {}, {status} in run {})",
                        stage.name,
                        stage.key.short(),
                        run.id
                    ));
                }
                continue;
            }
            let reference = StageRef {
                name: stage.name.clone(),
                kind: stage.kind.clone(),
                key: stage.key.clone(),
            };
            if is_eval(StageKind::named(&stage.kind)) {
                result.evals.push(EvalResult {
                    stage: stage.name.clone(),
                    key: stage.key.clone(),
                    metrics: eval_metrics(store, &stage.outputs, &stage.metrics)?,
                });
            } else if is_training(StageKind::named(&stage.kind)) {
                let rewards: Option<&IndexMap<_, _>> = specs.get(&stage.key).map(|s| &s.rewards);
                result.curves.push(stage_series(store, reference, rewards)?);
            }
        }
        variants.push(result);
    }
    Ok(variants)
}
