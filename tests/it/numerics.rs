//! Numeric profiles through the real binary: the portable profile writes the same bytes
//! whatever vector width the kernels may use and however many threads run them, and a
//! native result is keyed by the machine, so a store never serves it as a portable one.

use crate::support::{last_run_json, output_hashes, Test};

/// Pretraining, GRPO and an eval on a micro model: every kind of kernel (matrix products
/// of every threading path, the fused operations, the ordered sums of the losses and of
/// gradient clipping, sampling).
const MANIFEST: &str = r#"
name: numerics-test
seed: 3
defaults:
  max_prompt_length: 32
  max_completion_length: 12
models:
  micro: {preset: tiny, hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 112}
rewards:
  short: {kind: length, max_length: 12, buffer: 10}
datasets:
  arith: {kind: arithmetic, num_samples: 120, operations: [add], max_digits: 1}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 8}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 6, per_device_train_batch_size: 8, max_grad_norm: 0.5}
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {accuracy: 1.0, format: 0.5, short: 1.0}
    learning_rate: 1.0e-3
    num_generations: 4
    per_device_train_batch_size: 8
    max_steps: 3
    beta: 0.05
  eval: {kind: eval, from: zero, prompts: tasks, num_samples: 2, k: [1, 2], limit: 4}
"#;

/// Runs the manifest into a fresh store with `env` and returns its outputs' hashes.
fn hashes(env: &[(&str, &str)]) -> Vec<String> {
    let test = Test::new().write("m.yaml", MANIFEST);
    let run = env
        .iter()
        .fold(test.run_in_store(), |t, (key, value)| t.env(key, value))
        .run();
    assert!(run.success, "{env:?}: {}", run.stderr);
    output_hashes(&last_run_json(&test))
}

/// The issue's promise, proven on one machine: the kernels capped to scalar code or to
/// AVX2 and given one or three threads write the bytes of the uncapped run on two.
#[test]
fn the_portable_profile_writes_the_same_bytes_at_any_width_and_thread_count() {
    let reference = hashes(&[("RAYON_NUM_THREADS", "2")]);
    assert_eq!(reference.len(), 9, "{reference:?}");
    let scalar_one_thread = hashes(&[("R1FLOW_MAX_SIMD", "scalar"), ("RAYON_NUM_THREADS", "1")]);
    assert_eq!(scalar_one_thread, reference, "scalar code on one thread");
    let avx2_three_threads = hashes(&[("R1FLOW_MAX_SIMD", "avx2"), ("RAYON_NUM_THREADS", "3")]);
    assert_eq!(
        avx2_three_threads, reference,
        "AVX2 at most on three threads"
    );
}

/// The status column of `plan`'s rows (`#  stage  kind  key  status …`), in order.
fn statuses(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

/// A native run's model stages are other entries of the store than the portable ones
/// (their keys name the profile and this machine), `plan` says why they would run, and the
/// dataset stage, which computes with no model, is shared.
#[test]
fn a_native_result_is_keyed_by_the_machine_and_never_served_as_portable() {
    let test = Test::new().write("m.yaml", MANIFEST);
    let run = test
        .clone_args(["run", "m.yaml", "--store", "store", "--numerics", "native"])
        .run();
    run.assert_success();
    let plan = test.plan_in_store().run();
    plan.assert_success();
    let machine = r1flow::check::numerics::native_machine();
    let short: String = machine.chars().take(20).collect();
    assert!(
        plan.stdout.contains("numerics: native ") && plan.stdout.contains(&short),
        "plan names the native machine as the reason:\n{}",
        plan.stdout
    );
    plan.assert_stdout_says("→ portable");
    assert_eq!(
        statuses(&plan.stdout),
        ["cached", "run", "run", "run"],
        "{}",
        plan.stdout
    );
    let native = test
        .clone_args(["plan", "m.yaml", "--store", "store", "--numerics", "native"])
        .run();
    native.assert_success();
    assert_eq!(statuses(&native.stdout), ["cached"; 4], "{}", native.stdout);
}

/// `numerics: portable` is a profile of the CPU kernels: a GPU backend is refused at the
/// value, and so is a cap the kernels would not understand.
#[test]
fn portable_on_a_gpu_and_an_unknown_cap_are_refused() {
    let manifest = MANIFEST.replace("seed: 3\n", "seed: 3\nbackend: cuda\nnumerics: portable\n");
    let test = Test::new().write("m.yaml", &manifest);
    let validate = test.clone_args(["validate", "m.yaml"]).run();
    validate
        .assert_failure_says(
            "`numerics: portable` is a profile of the CPU kernels; backend `cuda` runs its own",
        )
        .assert_stderr_says("m.yaml:5:11");
    let capped = Test::new()
        .write("m.yaml", MANIFEST)
        .args(["validate", "m.yaml"])
        .env("R1FLOW_MAX_SIMD", "sse9")
        .run();
    capped.assert_failure_says(
        "R1FLOW_MAX_SIMD=sse9: not an instruction-set cap; use avx512, avx2 or scalar",
    );
}
