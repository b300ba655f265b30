//! Every stage kind on a GPU backend, checked against the CPU backend: `wgpu` by default
//! (on a machine without a GPU, through Mesa's lavapipe, a real Vulkan driver: the same
//! shaders a GPU gets), or the backend `R1FLOW_GPU_BACKEND` names (`cuda`:
//! scripts/gpu-check.sh). Ignored by a plain `cargo test`: on lavapipe each stage's new
//! shaders are compiled by LLVM on the CPU. `.ci/run` runs it with `--include-ignored`:
//! about 6 minutes on two cores with cold shader caches.
//!
//! One micro pipeline with every kind — dataset, pretrain, SFT, GRPO (with a KL term and
//! the language reward, whose value differs between completions of one prompt even for a
//! barely trained model, so that the policy gradient is not zero),
//! rejection sampling in both modes, the reward model, RLHF, distillation in both modes,
//! eval and export — runs into one store per backend. Compared: every metric each training
//! stage logs at each step and every stage's final metrics (wall times aside), within
//! [`TOLERANCE`]; the outputs each stage wrote (the same names); and the greedy
//! completions of the GPU-trained model, decoded on both backends from the exported
//! checkpoint, token for token. The stages train one or two steps: lavapipe runs a micro
//! model's step in seconds, not milliseconds (it is a CPU emulating a GPU), and what the
//! test is for shows on the first step.
//!
//! Why a tolerance and which: the backends add in different orders (flex's kernels in a
//! fixed lane-wise order, CubeCL's matrix products and reductions in tiles), so their f32
//! results differ in the last bits, about 1e-6 relative per operation; a few optimizer
//! steps carry that to about 1e-5. A wrong gradient, a mask that lets padding in or a
//! reward wired to the wrong completion moves a loss or a reward by far more than
//! [`TOLERANCE`] on the first logged step. Sampling reads the same logits on the host with
//! the same seeded generator, so completions match unless two tokens' probabilities sit
//! within that noise of a sampling boundary; the pipeline is small enough that none does.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use crate::support::{
    last_run_json, metric_series, output_hashes, repo_root, run_on_backend, Test,
};

/// Largest difference allowed between a metric on the two backends, relative to
/// `max(1, |cpu value|)`.
const TOLERANCE: f64 = 1e-3;

const MANIFEST: &str = r#"
name: every-kind-on-a-gpu
seed: 5
defaults:
  max_prompt_length: 32
  max_completion_length: 8
models:
  micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}
rewards:
  english: {kind: language, language: en}
datasets:
  arith: {kind: arithmetic, num_samples: 48, operations: [add], max_digits: 1, noise: {shortcut: 0.5, unformatted: 0.3}}
  prefs: {kind: jsonl, path: preferences.jsonl, format: preferences}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 8}
  pairs: {kind: dataset, source: prefs, test_size: 4}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, learning_rate: 3.0e-3, per_device_train_batch_size: 4, max_steps: 2, logging_steps: 1}
  sft: {kind: sft, from: base, data: tasks, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 1, logging_steps: 1}
  grpo: {kind: grpo, from: sft, prompts: tasks, rewards: {accuracy: 1.0, format: 0.2, english: 1.0}, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, max_steps: 1, beta: 0.04, logging_steps: 1}
  kept: {kind: rejection_sampling, from: grpo, prompts: tasks, num_samples: 2, thresholds: {accuracy: 0.0}, require_format: false, max_per_prompt: 1, limit: 4}
  judged: {kind: rejection_sampling, from: grpo, prompts: tasks, num_samples: 2, emit: preferences, thresholds: {accuracy: 0.0}, require_format: false, max_per_prompt: 1, limit: 4}
  rm: {kind: reward_model, from: sft, data: pairs, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 1, max_seq_length: 64, logging_steps: 1}
  rlhf: {kind: rlhf, from: sft, prompts: tasks, rewards: {accuracy: 1.0, format: 0.5, english: 1.0}, reward_model: rm, learning_rate: 1.0e-4, num_generations: 4, per_device_train_batch_size: 8, max_steps: 1, beta: 0.0, logging_steps: 1}
  distil_sft: {kind: distill, teacher: grpo, student: base, data: kept, mode: sft, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 1, logging_steps: 1}
  distil_logits: {kind: distill, teacher: grpo, student: base, data: tasks, mode: logits, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 1, logging_steps: 1}
  scored: {kind: eval, from: grpo, prompts: tasks, num_samples: 2, k: [1, 2], limit: 4}
  shipped: {kind: export, from: grpo, path: exported}
"#;

/// The stages that log a point per step (every stage's final metrics are compared too).
const LOGGED: [&str; 7] = [
    "base",
    "sft",
    "grpo",
    "rm",
    "rlhf",
    "distil_sft",
    "distil_logits",
];

/// Runs the manifest on `backend` in a fresh directory.
fn run_on(backend: &str) -> Test {
    let prefs = std::fs::read(repo_root().join("pipelines/data/preferences.jsonl"))
        .expect("shipped preferences");
    let test = Test::new()
        .write("m.yaml", MANIFEST)
        .write("preferences.jsonl", prefs);
    let run = run_on_backend(&test, backend);
    assert!(run.success, "--backend {backend}: {}", run.stderr);
    test
}

/// The metrics of a stage's logged points, `(step, name, value)`, wall times aside.
fn points(test: &Test, stage: &str) -> Vec<(u64, String, f64)> {
    let mut out = Vec::new();
    for point in metric_series(test, stage) {
        let step = point["step"].as_u64().unwrap_or(0);
        if let Some(values) = point["values"].as_object() {
            for (name, value) in values {
                if let (false, Some(value)) = (name.starts_with("time/"), value.as_f64()) {
                    out.push((step, name.clone(), value));
                }
            }
        }
    }
    out
}

/// Every stage's final metrics, `(stage, name, value)` (what `runs show` lists).
fn final_metrics(test: &Test) -> Vec<(u64, String, f64)> {
    let run = last_run_json(test);
    let mut out = Vec::new();
    for stage in run["stages"].as_array().expect("stages") {
        let name = stage["name"].as_str().unwrap_or("");
        if let Some(metrics) = stage["metrics"].as_object() {
            for (metric, value) in metrics {
                if let (false, Some(value)) = (metric.starts_with("time/"), value.as_f64()) {
                    out.push((0, format!("{name} {metric}"), value));
                }
            }
        }
    }
    out
}

/// Greedy completions of the exported model decoded on `backend`, one line per prompt.
fn greedy(test: &Test, backend: &str) -> String {
    let out = test
        .clone_args([
            "generate",
            "--model",
            "exported",
            "--backend",
            backend,
            "--temperature",
            "0",
            "--max-new-tokens",
            "16",
            "--prompt",
            "Q: 3 + 4\nA: <think>",
            "--prompt",
            "Q: 12 + 7 + 1\nA: <think>",
        ])
        .run();
    assert!(out.success, "generate on {backend}: {}", out.stderr);
    out.stdout
}

/// The GPU backend under test: `R1FLOW_GPU_BACKEND`, else wgpu where it is compiled in.
fn gpu_backend() -> String {
    std::env::var("R1FLOW_GPU_BACKEND").unwrap_or_else(|_| {
        if cfg!(feature = "wgpu") {
            "wgpu"
        } else {
            "cuda"
        }
        .to_string()
    })
}

#[test]
#[ignore = "minutes on lavapipe (its LLVM compiles each stage's shaders): run with \
            --include-ignored, as .ci/run and scripts/gpu-check.sh do"]
fn every_stage_kind_runs_on_a_gpu_backend_and_agrees_with_the_cpu() {
    let backend = gpu_backend();
    let cpu = run_on("cpu");
    let gpu = run_on(&backend);

    let mut worst: std::collections::BTreeMap<String, f64> = Default::default();
    let mut wrong = Vec::new();
    let logged = LOGGED.iter().map(|stage| {
        let (want, got) = (points(&cpu, stage), points(&gpu, stage));
        assert!(!want.is_empty(), "{stage} logged nothing on the CPU");
        (stage.to_string(), want, got)
    });
    let finals = std::iter::once((
        "final".to_string(),
        final_metrics(&cpu),
        final_metrics(&gpu),
    ));
    for (stage, want, got) in logged.chain(finals) {
        let want_keys: Vec<_> = want.iter().map(|(s, n, _)| (s, n)).collect();
        let got_keys: Vec<_> = got.iter().map(|(s, n, _)| (s, n)).collect();
        assert_eq!(got_keys, want_keys, "{stage}: the same points and metrics");
        for ((step, name, a), (_, _, b)) in want.iter().zip(&got) {
            let difference = (a - b).abs() / a.abs().max(1.0);
            let slot = worst.entry(format!("{stage} {name}")).or_insert(0.0);
            *slot = slot.max(difference);
            if difference > TOLERANCE || a.is_nan() != b.is_nan() {
                wrong.push(format!(
                    "{stage} step {step} {name}: cpu {a}, {backend} {b}"
                ));
            }
        }
    }
    // The largest difference per metric, for the CI log.
    for (metric, difference) in &worst {
        eprintln!("max relative difference {metric}: {difference:.2e}");
    }
    assert!(
        wrong.is_empty(),
        "beyond {TOLERANCE} of the CPU: {wrong:#?}"
    );

    // Each output's name (its bytes differ between backends).
    let outputs = |test: &Test| -> Vec<String> {
        output_hashes(&last_run_json(test))
            .into_iter()
            .map(|named| named.split('=').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(outputs(&gpu), outputs(&cpu), "the same outputs");

    // The same weights decode the same greedy tokens on both backends.
    let on_gpu = greedy(&gpu, &backend);
    assert_eq!(greedy(&gpu, "cpu"), on_gpu, "greedy completions");
    assert!(!on_gpu.trim().is_empty(), "generate printed nothing");
}
