//! The manifests shipped in `pipelines/` validate, point editors at the schema, and plan.

use crate::support::{repo_root, Test};

/// Manifests that read a checkpoint the user brings: tests/it/checkpoints.rs (hf-grpo)
/// and tests/it/lora_export.rs (hf-grpo-lora) validate them with one in place.
const BRING_YOUR_OWN: &[&str] = &["hf-grpo.yaml", "hf-grpo-lora.yaml"];

/// The shipped manifests that run as they are.
fn runnable_manifests() -> Vec<String> {
    manifests()
        .into_iter()
        .filter(|n| !BRING_YOUR_OWN.contains(&n.as_str()))
        .collect()
}

fn manifests() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("pipelines"))
        .expect("pipelines/ exists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

#[test]
fn shipped_pipelines_validate() {
    let names = manifests();
    for required in [
        "quickstart.yaml",
        "r1-zero.yaml",
        "r1.yaml",
        "distill.yaml",
        "ablation-readability.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "pipelines/{required} is missing"
        );
    }
    for name in &runnable_manifests() {
        let outcome = Test::in_dir(&repo_root().join("pipelines"))
            .args(["validate", name.as_str()])
            .run();
        assert!(outcome.success, "{name}:\n{}", outcome.stderr);
        assert!(
            outcome.stderr.is_empty(),
            "{name} has warnings:\n{}",
            outcome.stderr
        );
    }
}

#[test]
fn shipped_pipelines_name_the_schema_on_their_first_line() {
    for name in manifests() {
        let text =
            std::fs::read_to_string(repo_root().join("pipelines").join(&name)).expect("read");
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../schemas/pipeline.schema.json"),
            "{name}"
        );
    }
}

#[test]
fn plan_shows_shared_stages_of_the_readability_ablation() {
    let outcome = Test::in_dir(&repo_root())
        .args(["plan", "pipelines/ablation-readability.yaml", "--json"])
        .run();
    let plan = outcome.stdout_json();
    let stages = plan["stages"].as_array().expect("stages");
    let variants_of = |name: &str| -> Vec<usize> {
        stages
            .iter()
            .filter(|s| s["name"] == name)
            .map(|s| s["variants"].as_array().map_or(0, Vec::len))
            .collect()
    };
    assert_eq!(
        variants_of("base"),
        [4],
        "the base model is shared by all four variants"
    );
    assert_eq!(variants_of("eval_base"), [4]);
    assert_eq!(variants_of("reasoning_rl"), [1, 1, 1, 1]);
    for stage in stages {
        let key = stage["key"].as_str().expect("key");
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    }
}

#[test]
fn plan_renders_graphviz_and_selects_variants() {
    let dot = Test::in_dir(&repo_root())
        .args(["plan", "pipelines/distill.yaml", "--dot"])
        .run();
    dot.assert_success()
        .assert_stdout_starts_with("digraph \"distill\" {")
        .assert_stdout_says("[label=\"data\"]");

    let one = Test::in_dir(&repo_root())
        .args(["plan", "pipelines/distill.yaml", "--variant", "s2+micro"])
        .run();
    one.assert_success()
        .assert_stdout_says("variants: 1 (s2+micro)");

    let unknown = Test::in_dir(&repo_root())
        .args(["plan", "pipelines/distill.yaml", "--variant", "huge"])
        .run();
    unknown.assert_failure_says("the variants are: s1+mini, s1+micro, s2+mini, s2+micro");
}

#[test]
fn the_readme_walkthrough_manifest_validates() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme.find("```yaml\n").expect("a yaml block in README.md") + "```yaml\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    let outcome = Test::new()
        .write("walkthrough.yaml", &readme[start..end])
        .args(["plan", "walkthrough.yaml"])
        .run();
    outcome
        .assert_success()
        .assert_stdout_says("variants: 2 (low, high)");
}

/// Every stage key of every shipped pipeline, as a snapshot: a change that moves a key
/// (so that stored results are computed again) shows up here and must be accepted on
/// purpose, with the kind's `IMPLEMENTATION` bumped where its bits change.
#[test]
fn shipped_pipeline_keys_change_only_on_purpose() {
    let mut lines = Vec::new();
    for name in runnable_manifests() {
        let plan = Test::in_dir(&repo_root().join("pipelines")).plan_json(&name);
        for stage in plan["stages"].as_array().expect("stages") {
            lines.push(format!(
                "{name} {} {}",
                stage["name"].as_str().unwrap_or("?"),
                stage["key"].as_str().unwrap_or("?")
            ));
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}
