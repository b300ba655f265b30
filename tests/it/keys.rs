//! Cache keys: a stage's key ignores everything that cannot change its output (names,
//! comments, key order, formatting, other stages, checkpoint cadence) and changes with
//! everything that can (its parameters, upstream keys, seed, backend, rewards, files).

use std::collections::BTreeMap;
use std::path::Path;

use r1flow::check::{check_document, check_file};
use r1flow::diag::{render_all, SourceFile};
use r1flow::plan::{plan, StageKey};
use r1flow::syntax::parse;

const BASE: &str = r#"
name: keys
seed: 1
models:
  tiny: {preset: tiny}
datasets:
  arith: {kind: arithmetic, num_samples: 100}
stages:
  tasks: {kind: dataset, source: arith}
  base:
    kind: pretrain
    from: tiny
    data: tasks
    max_steps: 10
  rl:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {accuracy: 1.0, format: 0.5}
    learning_rate: 1.0e-5
  other:
    kind: sft
    from: base
    data: tasks
"#;

/// stage name → key, for a manifest without ablations.
fn keys(yaml: &str) -> BTreeMap<String, StageKey> {
    let doc =
        parse(SourceFile::new("keys.yaml", yaml)).unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let checked = check_document(&doc, &r1flow::check::Capabilities::any());
    assert!(
        !checked.has_errors(),
        "{}",
        render_all(&checked.diagnostics)
    );
    plan(checked.pipelines)
        .stages
        .into_iter()
        .map(|s| (s.name, s.key))
        .collect()
}

fn key_of(yaml: &str, stage: &str) -> StageKey {
    keys(yaml)
        .remove(stage)
        .unwrap_or_else(|| panic!("no stage {stage}"))
}

#[test]
fn unrelated_edits_keep_the_key() {
    let original = key_of(BASE, "rl");
    let edits = [
        ("manifest name", BASE.replace("name: keys", "name: renamed")),
        ("comments", BASE.replace("  rl:\n", "  # the RL stage\n  rl:   # trailing comment\n")),
        ("another stage's parameters", BASE.replace("    data: tasks\n\"#", "    data: tasks\n    learning_rate: 0.5\n\"#").replace("  other:\n    kind: sft\n    from: base\n    data: tasks\n", "  other:\n    kind: sft\n    from: base\n    data: tasks\n    max_steps: 77\n")),
        ("another stage removed", BASE.replace("  other:\n    kind: sft\n    from: base\n    data: tasks\n", "")),
        ("key order", BASE.replace("    from: base\n    prompts: tasks\n    rewards: {accuracy: 1.0, format: 0.5}\n    learning_rate: 1.0e-5\n", "    learning_rate: 1.0e-5\n    rewards: {format: 0.5, accuracy: 1.0}\n    prompts: tasks\n    from: base\n")),
        ("flow style", BASE.replace("  rl:\n    kind: grpo\n    from: base\n    prompts: tasks\n    rewards: {accuracy: 1.0, format: 0.5}\n    learning_rate: 1.0e-5\n", "  rl: {kind: grpo, from: base, prompts: tasks, rewards: {accuracy: 1.0, format: 0.5}, learning_rate: 0.00001}\n")),
        ("number spelling", BASE.replace("learning_rate: 1.0e-5", "learning_rate: 0.00001")),
        ("checkpoint cadence", BASE.replace("    learning_rate: 1.0e-5\n", "    learning_rate: 1.0e-5\n    save_steps: 3\n")),
        ("an explicit value equal to the default", BASE.replace("    learning_rate: 1.0e-5\n", "    learning_rate: 1.0e-5\n    num_generations: 8\n")),
        ("the value set through `defaults:` instead", BASE.replace("seed: 1\n", "seed: 1\ndefaults: {beta: 0.0}\n")),
    ];
    for (what, edited) in edits {
        assert_eq!(
            key_of(&edited, "rl"),
            original,
            "changing {what} changed the key of `rl`"
        );
    }
}

#[test]
fn renaming_stages_keeps_their_keys() {
    let original = keys(BASE);
    let renamed = keys(
        &BASE
            .replace("base", "foundation")
            .replace("  rl:", "  policy:")
            .replace("from: rl", "from: policy"),
    );
    assert_eq!(renamed["foundation"], original["base"]);
    assert_eq!(renamed["policy"], original["rl"]);
}

/// What an edit of `BASE` changes the keys of: every stage, `base` and the stages
/// trained from it, or `rl` alone.
const EVERY_STAGE: &[&str] = &["tasks", "base", "rl", "other"];
const FROM_BASE_ON: &[&str] = &["base", "rl", "other"];
const ONLY_RL: &[&str] = &["rl"];

#[test]
fn edits_that_change_the_output_change_the_key() {
    let original = keys(BASE);
    #[rustfmt::skip]
    let edits = [
        ("its own parameter", "learning_rate: 1.0e-5", "learning_rate: 2.0e-5", ONLY_RL),
        ("a reward weight", "format: 0.5", "format: 0.25", ONLY_RL),
        ("an added reward", "format: 0.5}", "format: 0.5, tag_count: 0.1}", ONLY_RL),
        ("an upstream parameter", "max_steps: 10", "max_steps: 11", FROM_BASE_ON),
        ("the dataset declaration", "num_samples: 100", "num_samples: 101", EVERY_STAGE),
        ("the seed", "seed: 1", "seed: 2", EVERY_STAGE),
        ("the backend", "seed: 1", "seed: 1\nbackend: wgpu", EVERY_STAGE),
        ("the dtype", "seed: 1", "seed: 1\ndtype: bf16", EVERY_STAGE),
        ("the model architecture", "{preset: tiny}", "{preset: tiny, num_hidden_layers: 3}", FROM_BASE_ON),
        ("a default the stage uses", "seed: 1\n", "seed: 1\ndefaults: {temperature: 0.7}\n", ONLY_RL),
    ];
    for (what, from, to, changed) in edits {
        let new = keys(&BASE.replace(from, to));
        for (stage, key) in &original {
            let should_change = changed.contains(&stage.as_str());
            assert_eq!(
                new[stage] != *key,
                should_change,
                "changing {what}: key of `{stage}` {}",
                if should_change {
                    "should change"
                } else {
                    "should not change"
                }
            );
        }
    }
}

#[test]
fn a_reward_definition_is_part_of_the_key_not_just_its_name() {
    let declared = BASE.replace(
        "seed: 1\n",
        "seed: 1\nrewards:\n  accuracy: {kind: accuracy, format_score: 0.1}\n",
    );
    assert_eq!(
        key_of(&declared, "rl"),
        key_of(BASE, "rl"),
        "declaring the built-in defaults is no change"
    );
    let changed = declared.replace("format_score: 0.1", "format_score: 0.0");
    assert_ne!(key_of(&changed, "rl"), key_of(BASE, "rl"));
}

fn write_project(dir: &Path, jsonl: &str) {
    std::fs::write(dir.join("data.jsonl"), jsonl).expect("write jsonl");
    std::fs::write(
        dir.join("m.yaml"),
        "name: files\ndatasets:\n  mine: {kind: jsonl, path: data.jsonl, format: prompts}\nstages:\n  data: {kind: dataset, source: mine}\n",
    )
    .expect("write manifest");
}

fn file_key(dir: &Path) -> StageKey {
    let checked = check_file(&dir.join("m.yaml"), &r1flow::check::Capabilities::any());
    assert!(
        !checked.has_errors(),
        "{}",
        render_all(&checked.diagnostics)
    );
    plan(checked.pipelines).stages[0].key.clone()
}

#[test]
fn input_files_are_keyed_by_content_not_path() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    write_project(one.path(), "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n");
    write_project(two.path(), "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n");
    assert_eq!(
        file_key(one.path()),
        file_key(two.path()),
        "same content elsewhere: same key"
    );
    write_project(two.path(), "{\"prompt\": \"1+1\", \"answer\": \"3\"}\n");
    assert_ne!(
        file_key(one.path()),
        file_key(two.path()),
        "edited file: new key"
    );
}

#[test]
fn ablation_arms_share_every_equal_upstream_stage() {
    let manifest = format!(
        "{BASE}ablations:\n  lr:\n    low: {{stages.rl.learning_rate: 1.0e-5}}\n    high: {{stages.rl.learning_rate: 1.0e-4}}\n  seed:\n    a: {{}}\n    b: {{stages.rl.seed: 9}}\n"
    );
    let doc = parse(SourceFile::new("ablate.yaml", manifest))
        .unwrap_or_else(|d| panic!("{}", render_all(&d)));
    let checked = check_document(&doc, &r1flow::check::Capabilities::any());
    assert!(
        !checked.has_errors(),
        "{}",
        render_all(&checked.diagnostics)
    );
    let plan = plan(checked.pipelines);
    let variants: Vec<&str> = plan.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(variants, ["low+a", "low+b", "high+a", "high+b"]);
    let count = |name: &str| plan.stages.iter().filter(|s| s.name == name).count();
    assert_eq!(
        (count("tasks"), count("base"), count("other"), count("rl")),
        (1, 1, 1, 4)
    );
    let shared = plan.stages.iter().find(|s| s.name == "base").expect("base");
    assert_eq!(shared.variants.len(), 4);
    // The `low+a` arm sets what the manifest already says: its `rl` is the base manifest's.
    let low_a = plan
        .stages
        .iter()
        .find(|s| s.name == "rl" && s.variants == ["low+a"])
        .expect("rl of low+a");
    assert_eq!(low_a.key, key_of(BASE, "rl"));
}

/// `BASE` with `line` added to the `rl` stage.
fn rl_with(line: &str) -> String {
    BASE.replace(
        "    learning_rate: 1.0e-5\n",
        &format!("    learning_rate: 1.0e-5\n{line}"),
    )
}

#[test]
fn gradient_checkpointing_off_is_the_key_of_a_stage_that_never_set_it() {
    let off = rl_with("    gradient_checkpointing: false\n");
    let on = rl_with("    gradient_checkpointing: true\n");
    assert_eq!(key_of(BASE, "rl"), key_of(&off, "rl"));
    assert_ne!(key_of(BASE, "rl"), key_of(&on, "rl"));
    assert_eq!(
        key_of(BASE, "base"),
        key_of(&on, "base"),
        "other stages keep theirs"
    );
}

#[test]
fn token_ratios_are_the_key_of_a_stage_that_never_set_them() {
    let with = rl_with;
    let token = with("    importance_sampling_level: token\n");
    let sequence = with("    importance_sampling_level: sequence\n");
    let filtered = with("    dynamic_sampling: {metric: accuracy, max_rounds: 3}\n");
    assert_eq!(key_of(BASE, "rl"), key_of(&token, "rl"));
    assert_ne!(key_of(BASE, "rl"), key_of(&sequence, "rl"));
    assert_ne!(key_of(BASE, "rl"), key_of(&filtered, "rl"));
    assert_ne!(
        key_of(&filtered, "rl"),
        key_of(&filtered.replace("max_rounds: 3", "max_rounds: 2"), "rl")
    );
}

#[test]
fn lora_changes_its_stages_key_and_pefts_defaults_written_out_do_not() {
    let with = rl_with;
    let lora = with("    lora: {}\n");
    // PEFT's defaults written out are `lora: {}`.
    let written = with(
        "    lora: {r: 8, alpha: 8, dropout: 0, target_modules: [q_proj, v_proj], init: true}\n",
    );
    let rank = with("    lora: {r: 4}\n");
    let targets = with("    lora: {target_modules: [all-linear]}\n");
    assert_ne!(key_of(BASE, "rl"), key_of(&lora, "rl"));
    assert_eq!(key_of(&lora, "rl"), key_of(&written, "rl"));
    assert_ne!(key_of(&lora, "rl"), key_of(&rank, "rl"));
    assert_ne!(key_of(&lora, "rl"), key_of(&targets, "rl"));
    for stage in ["tasks", "base", "other"] {
        assert_eq!(
            key_of(BASE, stage),
            key_of(&lora, stage),
            "{stage} keeps its key"
        );
    }
    let sft_stage = "  other:\n    kind: sft\n    from: base\n    data: tasks\n";
    let sft = BASE.replace(sft_stage, &format!("{sft_stage}    lora: {{r: 4}}\n"));
    assert_ne!(key_of(BASE, "other"), key_of(&sft, "other"));
}

#[test]
fn the_steps_scratchpad_is_the_key_of_a_dataset_that_never_set_it() {
    let added = BASE.replace(
        "{kind: arithmetic, num_samples: 100}",
        "{kind: arithmetic, num_samples: 100, operations: [add]}",
    );
    let steps = added.replace(
        "operations: [add]}",
        "operations: [add], scratchpad: steps}",
    );
    let columns = added.replace(
        "operations: [add]}",
        "operations: [add], scratchpad: columns}",
    );
    assert_eq!(keys(&added), keys(&steps), "`steps` is the default");
    let (before, after) = (keys(&added), keys(&columns));
    for stage in ["tasks", "base", "rl", "other"] {
        assert_ne!(
            before[stage], after[stage],
            "`columns` writes other solutions: {stage}"
        );
    }
}

/// One stage of every kind, with only what each needs written and no `defaults:`, so that
/// a parameter left out takes the kind's built-in default or its type's.
const EVERY_KIND: &str = r#"
name: every-kind
seed: 3
models:
  tiny: {preset: tiny}
datasets:
  arith: {kind: arithmetic, num_samples: 100}
stages:
  tasks: {kind: dataset, source: arith}
  base: {kind: pretrain, from: tiny, data: tasks, max_steps: 10}
  tuned: {kind: sft, from: base, data: tasks}
  rl: {kind: grpo, from: base, prompts: tasks, rewards: {accuracy: 1.0}}
  kept: {kind: rejection_sampling, from: rl, prompts: tasks, thresholds: {accuracy: 1.0}}
  pairs: {kind: rejection_sampling, from: rl, prompts: tasks, thresholds: {accuracy: 1.0}, emit: preferences}
  judge: {kind: reward_model, from: base, data: pairs}
  aligned: {kind: rlhf, from: rl, prompts: tasks, rewards: {accuracy: 1.0}, reward_model: judge}
  student: {kind: distill, student: base, data: kept}
  scored: {kind: eval, from: rl, prompts: tasks}
  shipped: {kind: export, from: rl}
"#;

/// A parameter written at the value it takes when left out gives the key of the stage that
/// leaves it out, for every parameter of every kind that has a default: the kind's built-in
/// default (a shared parameter) or the default its schema documents.
#[test]
fn a_parameter_written_at_its_default_keeps_the_key() {
    let manifest: serde_yaml::Value = serde_yaml::from_str(EVERY_KIND).expect("yaml");
    let original = keys(EVERY_KIND);
    let stages = manifest["stages"].as_mapping().expect("stages");
    let mut kinds_seen = std::collections::BTreeSet::new();
    let mut tried = 0;
    let mut moved = Vec::new();
    for (name, stage) in stages {
        let name = name.as_str().expect("stage name");
        let kind = stage["kind"].as_str().expect("kind");
        kinds_seen.insert(kind.to_string());
        let mut defaults: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let schema = r1flow::stages::StageDecl::schema_of(kind)
            .expect("a kind's schema")
            .to_value();
        for (param, property) in schema["properties"].as_object().expect("properties") {
            if let Some(default) = property.get("default") {
                defaults.insert(param.clone(), default.clone());
            }
        }
        let builtin = r1flow::stages::StageDecl::builtin_defaults(kind).expect("builtins");
        if let serde_json::Value::Object(map) = serde_json::to_value(&builtin).expect("json") {
            for (param, value) in map {
                if !value.is_null() && schema["properties"].get(&param).is_some() {
                    defaults.insert(param, value);
                }
            }
        }
        for (param, value) in defaults {
            if stage.get(param.as_str()).is_some() || value.is_null() {
                continue;
            }
            let mut edited = manifest.clone();
            edited["stages"][name][param.as_str()] =
                serde_yaml::to_value(&value).expect("yaml value");
            let text = serde_yaml::to_string(&edited).expect("yaml text");
            tried += 1;
            if key_of(&text, name) != original[name] {
                moved.push(format!("{kind} `{param}: {value}`"));
            }
        }
    }
    assert_eq!(
        kinds_seen.len(),
        r1flow::stages::StageDecl::KINDS.len(),
        "every kind is tried"
    );
    assert!(tried > 50, "only {tried} parameters tried");
    assert!(moved.is_empty(), "these move the key: {moved:#?}");
}
