//! Report (`compare`): a variant's resolved parameters as `dotted.path → value`, the way
//! ablations name them (`stages.reasoning_rl.rewards.language`), and which of them differ
//! between variants. Built from a checked pipeline, or from the stage specs a run stored,
//! so that rows from manifests and from runs line up.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::check::{Pipeline, Target};
use crate::plan::{InputSpec, StageSpec};

/// `dotted.path → value` of one variant. Objects are walked; arrays and scalars are leaves.
pub type Params = BTreeMap<String, Value>;

/// Adds the leaves of `value` under `prefix`.
pub fn flatten_into(prefix: &str, value: &Value, out: &mut Params) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                flatten_into(&format!("{prefix}.{key}"), child, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The parameters of one variant of a checked manifest: every stage's resolved config
/// (defaults filled), the declarations of the models, datasets and rewards its stages use
/// (as a run's stored specs have them, so manifests and runs compare alike), backend and
/// dtype.
pub fn of_pipeline(pipeline: &Pipeline) -> Params {
    let mut params = Params::new();
    for (name, stage) in &pipeline.stages {
        flatten_into(
            &format!("stages.{name}"),
            &stage.decl.to_json(),
            &mut params,
        );
        for binding in &stage.bindings {
            match &binding.target {
                Target::Model(model) => {
                    if let Some(decl) = pipeline.models.get(model) {
                        flatten_into(&format!("models.{model}"), &json_of(decl), &mut params);
                    }
                }
                Target::Source(dataset) => {
                    if let Some(decl) = pipeline.datasets.get(dataset) {
                        flatten_into(&format!("datasets.{dataset}"), &json_of(decl), &mut params);
                    }
                }
                Target::Stage(_) => {}
            }
        }
        for refs in stage.decl.rewards() {
            for reward in refs.rewards.keys() {
                if let Some(decl) = pipeline.rewards.get(reward) {
                    flatten_into(&format!("rewards.{reward}"), &json_of(decl), &mut params);
                }
            }
        }
    }
    params.insert("backend".into(), json_of(&pipeline.backend));
    params.insert("dtype".into(), json_of(&pipeline.dtype));
    params
}

/// The parameters of one variant of a stored run, from the specs of its stages (what the
/// store records of each stage instance: resolved config, the declarations it read).
pub fn of_specs<'a>(specs: impl IntoIterator<Item = &'a StageSpec>) -> Params {
    let mut params = Params::new();
    for spec in specs {
        flatten_into(
            &format!("stages.{}", spec.name),
            &spec.config.to_json(),
            &mut params,
        );
        for input in spec.inputs.values() {
            match input {
                InputSpec::Model { name, decl } => {
                    flatten_into(&format!("models.{name}"), &json_of(decl), &mut params)
                }
                InputSpec::Source { name, decl } => {
                    flatten_into(&format!("datasets.{name}"), &json_of(decl), &mut params)
                }
                InputSpec::Artifact { .. } => {}
            }
        }
        for (name, reward) in &spec.rewards {
            flatten_into(&format!("rewards.{name}"), &json_of(reward), &mut params);
        }
        params.insert("backend".into(), json_of(&spec.backend));
        params.insert("dtype".into(), json_of(&spec.dtype));
    }
    params
}

/// The paths whose value is not the same in every row (a path missing from some rows
/// differs too). With one row or none, nothing differs.
pub fn differing(rows: &[&Params]) -> BTreeSet<String> {
    let Some((first, rest)) = rows.split_first() else {
        return BTreeSet::new();
    };
    let mut paths: BTreeSet<&String> = BTreeSet::new();
    for row in rows {
        paths.extend(row.keys());
    }
    paths
        .into_iter()
        .filter(|path| rest.iter().any(|row| row.get(*path) != first.get(*path)))
        .cloned()
        .collect()
}

/// Whether a path names a seed (`seed`, `stages.rl.seed`, `datasets.x.seed`).
pub fn is_seed(path: &str) -> bool {
    path.rsplit('.').next() == Some("seed")
}

/// A value as a table shows it: strings bare, the rest as JSON.
pub fn display(value: Option<&Value>) -> String {
    match value {
        None => "—".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Params {
        let mut out = Params::new();
        if let Value::Object(map) = value {
            for (key, child) in &map {
                flatten_into(key, child, &mut out);
            }
        }
        out
    }

    #[test]
    fn nested_objects_become_dotted_paths_and_arrays_stay_whole() {
        let flat = params(json!({
            "stages": {"rl": {"rewards": {"accuracy": 1.0, "language": 0.5}, "k": [1, 8], "opts": {}}}
        }));
        assert_eq!(flat["stages.rl.rewards.language"], json!(0.5));
        assert_eq!(flat["stages.rl.k"], json!([1, 8]));
        assert_eq!(flat["stages.rl.opts"], json!({}));
        assert_eq!(flat.len(), 4);
    }

    #[test]
    fn only_parameters_that_differ_are_kept() {
        let a = params(
            json!({"stages": {"rl": {"lr": 1e-3, "seed": 1, "rewards": {"language": 0.0}}}, "backend": "cpu"}),
        );
        let b = params(
            json!({"stages": {"rl": {"lr": 1e-3, "seed": 2, "rewards": {"language": 0.5}}}, "backend": "cpu"}),
        );
        let c = params(
            json!({"stages": {"rl": {"lr": 1e-3, "seed": 1, "rewards": {"language": 0.5}}, "eval": {"k": [1]}}, "backend": "cpu"}),
        );
        let diff = differing(&[&a, &b]);
        assert_eq!(
            diff.into_iter().collect::<Vec<_>>(),
            ["stages.rl.rewards.language", "stages.rl.seed"]
        );
        // A path only some rows have differs; equal values in all rows never show.
        let diff = differing(&[&a, &b, &c]);
        assert!(diff.contains("stages.eval.k"));
        assert!(!diff.contains("stages.rl.lr"));
        assert!(!diff.contains("backend"));
        // One row: nothing to compare against.
        assert!(differing(&[&a]).is_empty());
        assert!(differing(&[]).is_empty());
    }

    #[test]
    fn seed_paths_are_recognised() {
        assert!(is_seed("seed"));
        assert!(is_seed("stages.reasoning_rl.seed"));
        assert!(!is_seed("stages.seed_stage.lr"));
        assert!(!is_seed("stages.x.seeds"));
    }

    #[test]
    fn values_display_plainly() {
        assert_eq!(display(Some(&json!("cpu"))), "cpu");
        assert_eq!(display(Some(&json!(0.5))), "0.5");
        assert_eq!(display(Some(&json!([1, 8]))), "[1,8]");
        assert_eq!(display(None), "—");
    }
}
