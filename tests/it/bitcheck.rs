//! The bits of every training kind, recorded: a micro pipeline through pretrain, sft,
//! GRPO (several iterations, a KL term with reference syncing, DAPO's dynamic sampling,
//! GSPO's sequence ratios), the reward model, RLHF, rejection sampling and both modes of
//! distillation, in the portable profile (the same bytes on every x86-64 machine with
//! AVX2). Its output hashes and logged metric points are a snapshot: a refactor of the
//! training code must leave them as they are; a change that means to move them bumps
//! `IMPLEMENTATION` (the keys' version) and says why when it accepts the new snapshot.

use std::process::Command;

use crate::support::{
    last_run_json, metric_series, output_hashes, repo_root, tool_available, Outcome, Test,
};

const MANIFEST: &str = r#"
name: bitcheck
seed: 3
defaults:
  max_prompt_length: 32
  max_completion_length: 24
models:
  micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}
datasets:
  arith: {kind: arithmetic, num_samples: 120, operations: [add], max_digits: 1, noise: {shortcut: 0.5, unformatted: 0.3}}
  prefs: {kind: jsonl, path: preferences.jsonl, format: preferences}
  rlhf_prompts: {kind: jsonl, path: rlhf_prompts.jsonl, format: prompts}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 10}
  general: {kind: dataset, source: rlhf_prompts, template: {user: "Q: {question}\nA: <think>"}, test_size: 2}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 64, learning_rate: 3.0e-3, per_device_train_batch_size: 4, gradient_accumulation_steps: 2, max_steps: 12, logging_steps: 5, save_steps: 5, warmup_ratio: 0.1, lr_scheduler_type: cosine}
  sft: {kind: sft, from: base, data: tasks, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 6, logging_steps: 4}
  grpo: {kind: grpo, from: sft, prompts: tasks, rewards: {accuracy: 1.0, format: 0.2}, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, max_steps: 5, beta: 0.04, sync_ref_model: 2, num_iterations: 2, logging_steps: 2, save_steps: 2}
  dapo: {kind: grpo, from: sft, prompts: tasks, rewards: {accuracy: 1.0, format: 0.2}, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, max_steps: 4, beta: 0.0, loss_type: dapo, epsilon_high: 0.28, dynamic_sampling: {metric: accuracy, max_rounds: 2}, save_steps: 2}
  gspo: {kind: grpo, from: sft, prompts: tasks, rewards: {accuracy: 1.0, format: 0.2}, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, max_steps: 2, importance_sampling_level: sequence, num_iterations: 2, epsilon: 3.0e-4, epsilon_high: 4.0e-4}
  pairs: {kind: dataset, source: prefs, test_size: 4}
  rm: {kind: reward_model, from: sft, data: pairs, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 6, max_seq_length: 64, logging_steps: 3}
  rlhf: {kind: rlhf, from: sft, prompts: general, rewards: {accuracy: 1.0, format: 0.5}, reward_model: rm, general_rewards: {format: 0.5}, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, max_steps: 3, beta: 0.0}
  student: {kind: pretrain, from: micro, data: tasks, max_seq_length: 64, per_device_train_batch_size: 4, max_steps: 4}
  traces: {kind: rejection_sampling, from: grpo, prompts: tasks, num_samples: 2, thresholds: {accuracy: 0.0}, require_format: false, max_per_prompt: 1}
  distil_sft: {kind: distill, teacher: grpo, student: student, data: traces, mode: sft, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 4}
  distil_logits: {kind: distill, teacher: grpo, student: student, data: tasks, mode: logits, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 4}
"#;

/// The stages whose logged points are recorded: every training kind.
const TRAINED: [&str; 9] = [
    "base",
    "sft",
    "grpo",
    "dapo",
    "gspo",
    "rm",
    "rlhf",
    "distil_sft",
    "distil_logits",
];

/// A directory holding the manifest and the data it reads.
fn bitcheck_project() -> Test {
    let data = |name: &str| {
        std::fs::read(repo_root().join("pipelines/data").join(name)).expect("shipped data")
    };
    Test::new()
        .write("bitcheck.yaml", MANIFEST)
        .write("preferences.jsonl", data("preferences.jsonl"))
        .write("rlhf_prompts.jsonl", data("rlhf_prompts.jsonl"))
}

#[test]
fn every_training_kind_writes_its_recorded_bits() {
    let test = bitcheck_project();
    let run = test
        .clone_args(["run", "bitcheck.yaml", "--store", "store"])
        .run();
    run.assert_success();
    let mut record = output_hashes(&last_run_json(&test));
    for stage in TRAINED {
        for point in metric_series(&test, stage) {
            // Wall times are measurements, not results.
            let mut point = point;
            if let Some(values) = point.get_mut("values").and_then(|v| v.as_object_mut()) {
                values.retain(|name, _| !name.starts_with("time/"));
            }
            record.push(format!("{stage} {point}"));
        }
    }
    insta::assert_snapshot!(record.join("\n"));
}

/// Whether `qemu-x86_64` (Debian's qemu-user) can run a program; required under
/// R1FLOW_REQUIRE_QEMU=1 (`.ci/run` installs it).
fn qemu_available() -> bool {
    let found = Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    tool_available(
        found,
        "the emulated-CPU bit check",
        "R1FLOW_REQUIRE_QEMU",
        "`qemu-x86_64 --version` fails: install qemu-user",
    )
}

/// The CPUs that produced the outputs of a run record (`runs show --json`).
fn devices(run: &serde_json::Value) -> Vec<String> {
    let mut devices: Vec<String> = run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["produced"]["device"].as_str().map(str::to_string))
        .collect();
    devices.dedup();
    devices
}

/// The portable profile's promise on a narrower CPU for real: the same binary, run on an
/// emulated CPU with AVX2 and FMA but no AVX-512 (`qemu-x86_64 -cpu Haswell`), writes the
/// bytes the run on this machine writes, for every training kind. `R1FLOW_MAX_SIMD` caps
/// r1flow's own kernels only; the emulated CPU caps every instruction the process runs,
/// its dependencies' included. That is how a reward model whose scalar head went through
/// burn's product (the `gemm` crate's, which follows the CPU) was found to train other
/// bits on AVX-512 than on AVX2. On a machine without AVX-512 both runs use AVX2: the
/// check then holds trivially, and says so.
#[test]
fn every_training_kind_writes_the_same_bits_on_an_emulated_avx2_cpu() {
    if !qemu_available() {
        return;
    }
    let test = bitcheck_project();
    let native = test
        .clone_args(["run", "bitcheck.yaml", "--store", "store"])
        .run();
    native.assert_success();
    let emulated: Outcome = Command::new("qemu-x86_64")
        .args(["-cpu", "Haswell", env!("CARGO_BIN_EXE_r1flow")])
        .args(["run", "bitcheck.yaml", "--store", "store-avx2"])
        .current_dir(test.path(""))
        .env("NO_COLOR", "1")
        .output()
        .expect("qemu-x86_64 runs")
        .into();
    emulated.assert_success();
    let shown = test
        .clone_args(["runs", "show", "last", "--json", "--store", "store-avx2"])
        .run();
    shown.assert_success();
    let (emulated, native) = (shown.stdout_json(), last_run_json(&test));
    let (emulated_devices, native_devices) = (devices(&emulated), devices(&native));
    assert!(
        emulated_devices
            .iter()
            .all(|d| d.contains("avx2") && !d.contains("avx512")),
        "the emulated CPU must offer AVX2 and no AVX-512: {emulated_devices:?}"
    );
    if !native_devices.iter().any(|d| d.contains("avx512")) {
        eprintln!("this machine has no AVX-512 ({native_devices:?}): both runs used AVX2");
    }
    assert_eq!(
        output_hashes(&emulated),
        output_hashes(&native),
        "AVX2 ({emulated_devices:?}) against this machine ({native_devices:?})"
    );
}
