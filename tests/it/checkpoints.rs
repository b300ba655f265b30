//! Bring your own checkpoint: `pipelines/hf-grpo.yaml` on a HuggingFace checkpoint
//! directory (the tiny Llama with SmolLM2's chat template in tests/fixtures, made by
//! scripts/make_hf_checkpoint.py) — it validates where the checkpoint is in place, and its
//! CI-sized version runs: prompts rendered with the checkpoint's chat template, GSM8K
//! answers extracted, eval before and after GRPO, export.

use std::path::Path;

use crate::support::{blob_path, repo_root, run_stage, Test};

/// Where hf-grpo.yaml expects the checkpoint and the data, relative to the manifest.
const CHECKPOINT: &str = "checkpoints/SmolLM2-135M-Instruct";
const DATA: &str = "data/gsm8k-style.jsonl";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the checkpoint directory");
    for entry in std::fs::read_dir(from).expect("fixture").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
    }
}

/// A directory laid out as a user's: the manifest (edited by `edit`), the data and the
/// checkpoint where the manifest says.
fn project(edit: impl Fn(String) -> String) -> Test {
    let manifest =
        std::fs::read_to_string(repo_root().join("pipelines/hf-grpo.yaml")).expect("manifest");
    let data = std::fs::read(repo_root().join("pipelines").join(DATA)).expect("data");
    let test = Test::new()
        .write("hf-grpo.yaml", edit(manifest))
        .write(DATA, data);
    copy_dir(
        &repo_root().join("tests/fixtures/llama-chat-tiny"),
        &test.path(CHECKPOINT),
    );
    test
}

/// Sets `key: value` on every line that sets `key` (the manifest's own lines, so the
/// test follows the shipped file).
fn set(manifest: String, key: &str, value: &str) -> String {
    let prefix = format!("{key}:");
    manifest
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with(&prefix) {
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}{key}: {value}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn hf_grpo_validates_with_the_checkpoint_in_place() {
    let test = project(|m| m);
    let outcome = test.clone_args(["validate", "hf-grpo.yaml"]).run();
    outcome.assert_success();
    assert!(outcome.stderr.is_empty(), "warnings: {}", outcome.stderr);
    let missing = Test::in_dir(&repo_root().join("pipelines"))
        .args(["validate", "hf-grpo.yaml"])
        .run();
    assert!(
        missing.stderr.contains("checkpoint directory") && missing.stderr.contains(CHECKPOINT),
        "without a checkpoint, validate says where it goes: {}",
        missing.stderr
    );
}

#[test]
fn hf_grpo_runs_at_ci_size_on_a_tiny_checkpoint() {
    let test = project(|m| {
        let mut m = m;
        for (key, value) in [
            ("max_prompt_length", "160"),
            ("max_completion_length", "12"),
            ("test_size", "4"),
            ("num_samples", "2"),
            ("k", "[1, 2]"),
            ("num_generations", "2"),
            ("per_device_train_batch_size", "4"),
            ("max_steps", "2"),
            ("learning_rate", "1.0e-3"),
        ] {
            m = set(m, key, value);
        }
        m.replace("    test_size: 4\n", "    test_size: 4\n    limit: 16\n")
    });
    let run = test
        .clone_args(["run", "hf-grpo.yaml", "--store", "store"])
        .run();
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let shown = crate::support::last_run_json(&test);
    let stages = shown["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 5, "{shown}");
    assert!(stages.iter().all(|s| s["status"] == "ran"), "{shown}");

    // The prompts are the checkpoint's ChatML turns, the system prompt first, and the
    // references the numbers after `####`.
    let prompts = run_stage(&shown, "prompts");
    let train = prompts["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["name"] == "train.jsonl")
        .expect("train.jsonl");
    let hash = train["hash"].as_str().expect("hash");
    let text = std::fs::read_to_string(blob_path(&test, hash)).expect("blob");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a record")).expect("json");
    let prompt = first["prompt"].as_str().expect("prompt");
    assert!(
        prompt.starts_with("<|im_start|>system\nA conversation between User and Assistant.")
            && prompt.contains("<|im_end|>\n<|im_start|>user\n")
            && prompt.ends_with("<|im_end|>\n<|im_start|>assistant\n"),
        "{prompt:?}"
    );
    let answer = first["answer"].as_str().expect("answer");
    assert!(answer.parse::<f64>().is_ok(), "a bare number: {answer:?}");

    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            test.path("exports/hf-grpo").join(file).is_file(),
            "exports/hf-grpo/{file}"
        );
    }
    // The export carries the checkpoint's chat template back, for transformers and vLLM.
    let exported: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(test.path("exports/hf-grpo/tokenizer_config.json"))
            .expect("tokenizer_config.json"),
    )
    .expect("json");
    let original: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("tests/fixtures/llama-chat-tiny/tokenizer_config.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    assert_eq!(exported["chat_template"], original["chat_template"]);
    assert_eq!(exported["eos_token"], "<|im_end|>");
}

#[test]
fn a_cut_or_mismatched_checkpoint_is_a_validate_error_at_its_path() {
    // Weights cut short (an interrupted download): found from the header, before any
    // stage loads them.
    let test = project(|m| m);
    let weights = test.path(CHECKPOINT).join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() - 100]).expect("cut");
    let outcome = test.clone_args(["validate", "hf-grpo.yaml"]).run();
    outcome
        .assert_failure_says("hf-grpo.yaml:")
        .assert_stderr_says("cut short")
        .assert_stderr_says("model.safetensors");

    // A config.json of another model than its weights.
    let test = project(|m| m);
    let config_path = test.path(CHECKPOINT).join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config"))
            .expect("json");
    let layers = config["num_hidden_layers"].as_u64().expect("layers");
    config["num_hidden_layers"] = serde_json::json!(layers + 1);
    std::fs::write(&config_path, config.to_string()).expect("write");
    let outcome = test.clone_args(["validate", "hf-grpo.yaml"]).run();
    outcome
        .assert_failure_says(format!("model.layers.{layers}."))
        .assert_stderr_says("missing");
}

#[test]
fn a_checkpoint_with_nan_weights_names_the_tensor() {
    let test = project(|m| m);
    let weights = test.path(CHECKPOINT).join("model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("weights");
    let len = bytes.len();
    for byte in &mut bytes[len - 64..] {
        *byte = 0xff; // NaN in f32, f16 and bf16 alike
    }
    std::fs::write(&weights, bytes).expect("write");
    let outcome = test
        .clone_args([
            "generate",
            "--model",
            CHECKPOINT,
            "--prompt",
            "1 + 1 =",
            "--max-new-tokens",
            "2",
        ])
        .run();
    assert!(!outcome.success, "{}", outcome.stdout);
    outcome
        .assert_stderr_says("NaN or infinite values")
        .assert_stderr_says("tensor `");
    // In a run, the stages that load it fail naming the input, what it names and the tensor.
    let run = test
        .clone_args(["run", "hf-grpo.yaml", "--store", "store"])
        .run();
    assert!(!run.success);
    let record = crate::support::last_run_json(&test);
    let errors: Vec<&str> = record["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["error"].as_str())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("input `from` (model `policy`): ")
                && e.contains("NaN or infinite values")
                && e.contains("tensor `")),
        "{errors:#?}"
    );
}
