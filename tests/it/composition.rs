//! Manifests that compose: `include:`, `extends:` and per-kind `defaults:` give every stage
//! exactly the cache key it has when written out in full, and compose as documented
//! (the errors are snapshots in tests/data/invalid/composition_*.yaml).

use std::collections::BTreeMap;

use crate::support::Test;

const TINY: &str = "{preset: tiny, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}";

/// A teacher manifest in a directory of its own, with a JSONL file it names relatively and
/// defaults of its own.
fn teacher() -> String {
    format!(
        r#"name: teacher
seed: 5
defaults:
  max_prompt_length: 16
  max_completion_length: 8
models:
  tiny: {TINY}
datasets:
  arith: {{kind: arithmetic, num_samples: 300, max_digits: 3}}
  mine: {{kind: jsonl, path: data.jsonl, format: prompts}}
stages:
  tasks: {{kind: dataset, source: arith, test_size: 20}}
  own: {{kind: dataset, source: mine, test_size: 2}}
  base: {{kind: pretrain, from: tiny, data: tasks, max_steps: 2, max_seq_length: 32}}
  eval_base: {{kind: eval, from: base, prompts: tasks, num_samples: 2, temperature: 0.6}}
ablations:
  never_used: {{a: {{}}, b: {{seed: 6}}}}
"#
    )
}

/// The student includes the teacher and declares variations of its stages; its own
/// defaults (a longer prompt, eval defaults) must not reach the teacher's stages.
const STUDENT: &str = r#"name: student
seed: 5
include: common/teacher.yaml
defaults:
  max_prompt_length: 24
  max_completion_length: 8
  eval: {temperature: 0.9}
stages:
  eval_again: {extends: eval_base, num_samples: 3}
  eval_own_default: {kind: eval, from: base, prompts: tasks, num_samples: 2}
  longer: {extends: base, max_steps: 3}
"#;

/// The student written out in full, in one file: what each composed stage must equal.
fn written_out() -> String {
    format!(
        r#"name: written-out
seed: 5
models:
  tiny: {TINY}
datasets:
  arith: {{kind: arithmetic, num_samples: 300, max_digits: 3}}
  mine: {{kind: jsonl, path: common/data.jsonl, format: prompts}}
stages:
  tasks: {{kind: dataset, source: arith, test_size: 20}}
  own: {{kind: dataset, source: mine, test_size: 2}}
  base: {{kind: pretrain, from: tiny, data: tasks, max_steps: 2, max_seq_length: 32}}
  eval_base: {{kind: eval, from: base, prompts: tasks, num_samples: 2, temperature: 0.6, max_prompt_length: 16, max_completion_length: 8}}
  eval_again: {{kind: eval, from: base, prompts: tasks, num_samples: 3, temperature: 0.6, max_prompt_length: 16, max_completion_length: 8}}
  eval_own_default: {{kind: eval, from: base, prompts: tasks, num_samples: 2, temperature: 0.9, max_prompt_length: 24, max_completion_length: 8}}
  longer: {{kind: pretrain, from: tiny, data: tasks, max_steps: 3, max_seq_length: 32}}
"#
    )
}

const DATA: &str = "{\"prompt\": \"1+1?\"}\n{\"prompt\": \"2+2?\"}\n{\"prompt\": \"3+3?\"}\n{\"prompt\": \"4+4?\"}\n{\"prompt\": \"5+5?\"}\n";

/// Stage name → key, as `plan --json` gives them for `manifest` in `test`'s directory.
fn keys(test: &Test, manifest: &str) -> BTreeMap<String, String> {
    let plan = test.plan_json(manifest);
    // With ablations, a stage is listed once per distinct key: the first variant's here.
    let mut keys = BTreeMap::new();
    for stage in plan["stages"].as_array().expect("stages") {
        keys.entry(stage["name"].as_str().unwrap_or("?").to_string())
            .or_insert_with(|| stage["key"].as_str().unwrap_or("?").to_string());
    }
    keys
}

/// A project holding the teacher manifest and its data under `common/`, for a manifest
/// that includes it.
fn teacher_project() -> Test {
    Test::new()
        .write("common/teacher.yaml", teacher())
        .write("common/data.jsonl", DATA)
}

#[test]
fn included_and_extended_stages_have_the_keys_they_have_written_out() {
    let test = teacher_project()
        .write("student.yaml", STUDENT)
        .write("full.yaml", written_out());
    let composed = keys(&test, "student.yaml");
    let full = keys(&test, "full.yaml");
    assert_eq!(composed, full, "composed vs written out");
    // An included stage means what it means in its own file.
    let alone = keys(&test, "common/teacher.yaml");
    for (stage, key) in &alone {
        assert_eq!(composed.get(stage), Some(key), "{stage}");
    }
    // Included entries come first, then the including file's own, in the order written.
    let planned = test
        .clone_args([
            "plan",
            "student.yaml",
            "--store",
            "/nonexistent-r1flow-store",
        ])
        .run();
    let order: Vec<&str> = ["tasks", "own", "base", "eval_base", "eval_again", "longer"]
        .into_iter()
        .filter(|s| planned.stdout.contains(&format!("{s} ")))
        .collect();
    assert_eq!(order.len(), 6, "{}", planned.stdout);
}

#[test]
fn a_stage_extending_one_follows_it_and_replaces_what_it_writes() {
    let test = teacher_project()
        .write(
            "chain.yaml",
            r#"name: chain
seed: 5
include: common/teacher.yaml
stages:
  third: {extends: second, temperature: 1.0}
  second: {extends: eval_base, num_samples: 3}
"#,
        )
        .write(
            "chain_full.yaml",
            r#"name: chain
seed: 5
include: common/teacher.yaml
stages:
  third: {kind: eval, from: base, prompts: tasks, num_samples: 3, temperature: 1.0, max_prompt_length: 16, max_completion_length: 8}
  second: {kind: eval, from: base, prompts: tasks, num_samples: 3, temperature: 0.6, max_prompt_length: 16, max_completion_length: 8}
"#,
        );
    assert_eq!(keys(&test, "chain.yaml"), keys(&test, "chain_full.yaml"));
}

/// Precedence of a stage parameter's value, snapshot: the stage's own, then its kind's
/// `defaults:`, then the shared `defaults:`, then the kind's built-in default.
#[test]
fn defaults_apply_by_kind_then_shared_then_built_in() {
    let manifest = |defaults: &str, temperature: &str| {
        format!(
            r#"name: precedence
seed: 5
defaults: {defaults}
models:
  tiny: {TINY}
datasets:
  arith: {{kind: arithmetic, num_samples: 300, max_digits: 3}}
stages:
  tasks: {{kind: dataset, source: arith, test_size: 20}}
  base: {{kind: pretrain, from: tiny, data: tasks, max_steps: 2, max_seq_length: 32}}
  probe: {{kind: eval, from: base, prompts: tasks, num_samples: 2, max_prompt_length: 16, max_completion_length: 8{temperature}}}
"#
        )
    };
    let cases = [
        (
            "own value",
            "{temperature: 0.9, eval: {temperature: 0.7}}",
            ", temperature: 0.5",
        ),
        (
            "kind's default",
            "{temperature: 0.9, eval: {temperature: 0.7}}",
            "",
        ),
        (
            "kind's default of another kind",
            "{temperature: 0.9, grpo: {temperature: 0.7}}",
            "",
        ),
        ("shared default", "{temperature: 0.9}", ""),
        ("built-in default", "{}", ""),
    ];
    let candidates = ["0.5", "0.6", "0.7", "0.9"];
    let mut test = Test::new();
    for (i, value) in candidates.iter().enumerate() {
        test = test.write(
            &format!("explicit{i}.yaml"),
            manifest("{}", &format!(", temperature: {value}")),
        );
    }
    let explicit: Vec<(String, &str)> = candidates
        .iter()
        .enumerate()
        .map(|(i, value)| {
            (
                keys(&test, &format!("explicit{i}.yaml"))["probe"].clone(),
                *value,
            )
        })
        .collect();
    let mut lines = Vec::new();
    for (i, (case, defaults, own)) in cases.iter().enumerate() {
        let name = format!("case{i}.yaml");
        let test = Test::new().write(&name, manifest(defaults, own));
        let key = keys(&test, &name)["probe"].clone();
        let value = explicit
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("none of the candidates", |(_, v)| v);
        lines.push(format!(
            "{case}: defaults {defaults}, stage{own} → temperature {value}"
        ));
    }
    insta::assert_snapshot!(lines.join("\n"), @r"
    own value: defaults {temperature: 0.9, eval: {temperature: 0.7}}, stage, temperature: 0.5 → temperature 0.5
    kind's default: defaults {temperature: 0.9, eval: {temperature: 0.7}}, stage → temperature 0.7
    kind's default of another kind: defaults {temperature: 0.9, grpo: {temperature: 0.7}}, stage → temperature 0.9
    shared default: defaults {temperature: 0.9}, stage → temperature 0.9
    built-in default: defaults {}, stage → temperature 0.6
    ");
}

/// An ablation arm can set what an included file declared, and its override is located at
/// the arm; an included file's own ablations are not the including pipeline's.
#[test]
fn ablations_reach_included_entries_and_included_ablations_do_not_apply() {
    let test = teacher_project()
        .write(
            "arms.yaml",
            "name: arms\nseed: 5\ninclude: common/teacher.yaml\nablations:\n  steps:\n    short: {}\n    long: {stages.base.max_steps: 3}\n",
        );
    let plan = test.plan_json("arms.yaml");
    let variants: Vec<&str> = plan["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter_map(|v| v["name"].as_str().or_else(|| v.as_str()))
        .collect();
    assert_eq!(variants, ["short", "long"], "{plan}");
    let bases = plan["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter(|s| s["name"] == "base")
        .count();
    assert_eq!(bases, 2, "the arm changes the included base");
}
