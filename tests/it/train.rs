//! Training stages through the real binary on a micro model: determinism, resume after a
//! crash inside a training stage (bit-identical on the CPU), and what GRPO logs.

use crate::support::{
    blob_path, last_run_json, metric_series, micro_pipeline, output_hashes, run_stage, Test,
};

/// The pipeline the tests here run: a pretraining, GRPO from it (checkpointed every 2
/// steps, with a KL term) and an eval.
fn pipeline() -> String {
    micro_pipeline("train-test", 1)
        .lengths(32, 16)
        // Varies with the length of even an untrained model's output, so groups differ.
        .reward("short: {kind: length, max_length: 16, buffer: 14}")
        .stages(
            r#"  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 8, per_device_train_batch_size: 4, save_steps: 4, logging_steps: 2}
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {accuracy: 1.0, format: 0.5, short: 1.0}
    learning_rate: 1.0e-3
    num_generations: 4
    per_device_train_batch_size: 8
    max_steps: 4
    save_steps: 2
    beta: 0.05
  eval: {kind: eval, from: zero, prompts: tasks, num_samples: 2, k: [1, 2], limit: 5}
"#,
        )
}

fn full_run() -> (Test, Vec<String>) {
    let test = Test::new().write("m.yaml", pipeline());
    let run = test.run_recorded();
    (test, output_hashes(&run))
}

#[test]
fn the_same_seed_gives_the_same_bits() {
    let (_, first) = full_run();
    let (test, second) = full_run();
    assert_eq!(first, second);
    assert!(
        first.iter().any(|h| h.starts_with("zero/rollouts.jsonl=")),
        "{first:?}"
    );
    assert!(
        first.iter().any(|h| h.starts_with("eval/samples.jsonl=")),
        "{first:?}"
    );

    let series = metric_series(&test, "zero");
    assert_eq!(series.len(), 4, "one point per GRPO step");
    for name in [
        "reward",
        "reward_std",
        "reward/accuracy",
        "reward/format",
        "frac_reward_zero_std",
        "kl",
        "clip_ratio",
        "entropy",
        "completion_length",
        "completion_length_max",
        "truncated_ratio",
        "worked_share",
        "learning_rate",
    ] {
        assert!(
            series[0]["values"].get(name).is_some(),
            "GRPO logs `{name}`: {}",
            series[0]["values"]
        );
    }
    let rescored = test
        .clone_args([
            "rescore",
            "last",
            "eval",
            "--reward",
            "tag_count",
            "--reward",
            "short",
            "--store",
            "store",
        ])
        .run();
    // 5 prompts × 2 samples.
    rescored
        .assert_success()
        .assert_stdout_says("10 completions");
    assert!(
        rescored.stdout.lines().any(|l| l.starts_with("tag_count")),
        "{}",
        rescored.stdout
    );
    let logged = test
        .clone_args(["run", "m.yaml", "--store", "store", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .run();
    assert!(
        logged
            .stderr
            .lines()
            .any(|l| l.starts_with('{') && l.contains("reusing the stored artifact")),
        "{}",
        logged.stderr
    );
    let stored = test
        .clone_args([
            "generate",
            "--model",
            "last/zero",
            "--prompt",
            "Q: Calculate 1 + 2.\nA: <think>",
            "--max-new-tokens",
            "4",
            "--temperature",
            "0",
        ])
        .env("R1FLOW_STORE", "store")
        .run();
    assert!(
        stored.success,
        "generate from a stored stage: {}",
        stored.stderr
    );
    let kl_last = series[3]["values"]["kl"].as_f64().unwrap_or(0.0);
    assert!(
        kl_last > 0.0,
        "with beta > 0 the policy drifts from its reference: kl {kl_last}"
    );
}

#[test]
fn a_run_killed_inside_a_training_stage_resumes_bit_identical() {
    let (_, expected) = full_run();
    let test = Test::new().write("m.yaml", pipeline());
    // Dies right after the first checkpoint of `base` (step 4 of 8).
    let killed = test
        .run_in_store()
        .env("R1FLOW_FAILPOINT", "after-checkpoint")
        .run();
    assert!(!killed.success);
    let plan = test.plan_in_store().run();
    plan.assert_stdout_line_says(&["base", "resume@4"]);
    // Dies again at the first checkpoint of `zero` (step 2 of 4), after finishing `base`.
    let killed = test
        .run_in_store()
        .env("R1FLOW_FAILPOINT", "after-checkpoint")
        .run();
    killed.assert_failure_says("resuming from step 4");
    let resumed = test.run_in_store().run();
    resumed
        .assert_success()
        .assert_stderr_says("zero (grpo)")
        .assert_stderr_says("resuming from step 2");
    // The resumed run's record lists every stage: all outputs are compared.
    assert_eq!(output_hashes(&last_run_json(&test)), expected);
}

/// Runs `manifest` to the end in a fresh directory; the output hashes.
fn hashes_of(manifest: &str) -> Vec<String> {
    let test = Test::new().write("m.yaml", manifest);
    output_hashes(&test.run_recorded())
}

/// Runs `manifest`, killed after every checkpoint until it finishes; the output hashes.
fn hashes_killed_and_resumed(manifest: &str) -> Vec<String> {
    let test = Test::new().write("m.yaml", manifest);
    for _ in 0..10 {
        let outcome = test
            .run_in_store()
            .env("R1FLOW_FAILPOINT", "after-checkpoint")
            .run();
        if outcome.success {
            return output_hashes(&last_run_json(&test));
        }
    }
    panic!("the run did not finish after 10 resumptions");
}

#[test]
fn a_synced_reference_model_is_checkpointed_and_moves_the_result() {
    let synced = pipeline().replace(
        "    beta: 0.05\n",
        "    beta: 0.05\n    sync_ref_model: 1\n    ref_model_mixup_alpha: 0.5\n",
    );
    assert_ne!(synced, pipeline());
    let uninterrupted = hashes_of(&synced);
    assert_eq!(hashes_killed_and_resumed(&synced), uninterrupted);
    let zero = |hashes: &[String]| {
        hashes
            .iter()
            .find(|h| h.starts_with("zero/model.safetensors="))
            .cloned()
    };
    assert_ne!(
        zero(&uninterrupted),
        zero(&hashes_of(&pipeline())),
        "syncing the reference changes the KL term, so the trained policy"
    );
}

#[test]
fn beta_zero_trains_without_a_reference() {
    let test = Test::new().write("m.yaml", pipeline().replace("beta: 0.05", "beta: 0.0"));
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "zero"])
        .run();
    outcome.assert_success();
    let series = metric_series(&test, "zero");
    assert!(
        series
            .iter()
            .all(|p| p["values"]["kl"].as_f64() == Some(0.0)),
        "no reference, no KL: {series:?}"
    );
}

#[test]
fn export_writes_a_huggingface_directory_that_generate_reads() {
    let test = Test::new().write(
        "m.yaml",
        "name: export\nmodels:\n  micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}\ndatasets:\n  arith: {kind: arithmetic, num_samples: 100, operations: [add], max_digits: 1}\nstages:\n  base: {kind: pretrain, from: micro, data: arith, max_seq_length: 32, max_steps: 2, per_device_train_batch_size: 2}\n  hf: {kind: export, from: base, path: exported}\n",
    );
    let run = test.run_in_store().run();
    run.assert_success();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
    ] {
        assert!(
            test.path("exported").join(file).is_file(),
            "exported/{file}"
        );
    }
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(test.path("exported/config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(config["architectures"][0], "Qwen2ForCausalLM");
    let generated = test
        .clone_args([
            "generate",
            "--model",
            "exported",
            "--prompt",
            "Q: 1+1",
            "--max-new-tokens",
            "4",
            "--temperature",
            "0",
            "--json",
        ])
        .run();
    generated.assert_success();
}

#[test]
fn rejection_sampling_feeds_distillation_into_a_student() {
    let manifest = pipeline().replace(
        "  eval: {kind: eval, from: zero, prompts: tasks, num_samples: 2, k: [1, 2], limit: 5}\n",
        "  samples: {kind: rejection_sampling, from: zero, prompts: tasks, num_samples: 2, thresholds: {short: -0.5}, require_format: false, max_per_prompt: 1, limit: 60}\n  student: {kind: distill, student: micro, data: samples, max_seq_length: 48, max_steps: 2, per_device_train_batch_size: 4}\n",
    );
    let test = Test::new().write("m.yaml", manifest);
    let run = test.run_recorded();
    let samples = run_stage(&run, "samples");
    let rate = samples["metrics"]["acceptance_rate"]
        .as_f64()
        .expect("acceptance rate");
    assert!((0.0..=1.0).contains(&rate), "{rate}");
    assert!(
        samples["metrics"]["kept"].as_f64().unwrap_or(0.0) >= 1.0,
        "{}",
        samples["metrics"]
    );
    let kept = samples["metrics"]["kept"].as_f64().unwrap_or(0.0);
    assert!(
        kept <= 60.0,
        "at most one sample for each of the 60 prompts sampled: {kept}"
    );
    assert!(run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .any(|s| s["name"] == "student" && s["status"] == "ran"));
}

/// A verifier whose score an untrained model's output already varies in: whether the text
/// after the pre-filled `<think>` opens a tag (so some groups are all 0 or all 1).
const TAG_JUDGE: &str = r#"import json, sys
for line in sys.stdin:
    print(int(json.loads(line)["completion"].count("<") > 1))
"#;

/// `pipeline()`'s GRPO stage as GSPO (sequence ratios with the paper's clip range, two updates
/// per batch so the ratio moves) with DAPO's dynamic sampling on the verifier's raw score.
fn gspo_with_dynamic_sampling() -> String {
    let manifest = pipeline()
        .replace(
            "  short: {kind: length, max_length: 16, buffer: 14}\n",
            "  short: {kind: length, max_length: 16, buffer: 14}\n  tag: {kind: command, command: [python3, judge.py]}\n",
        )
        .replace(
            "rewards: {accuracy: 1.0, format: 0.5, short: 1.0}",
            "rewards: {accuracy: 1.0, format: 0.5, short: 1.0, tag: 0.5}",
        )
        .replace(
            "    beta: 0.05\n",
            "    beta: 0.05\n    num_iterations: 2\n    importance_sampling_level: sequence\n    epsilon: 3.0e-4\n    epsilon_high: 4.0e-4\n    dynamic_sampling: {metric: tag, max_rounds: 2}\n",
        );
    assert_ne!(manifest, pipeline());
    manifest
}

#[test]
fn gspo_with_dynamic_sampling_logs_what_it_drew_and_resumes_bit_identical() {
    let manifest = gspo_with_dynamic_sampling();
    let fresh = || {
        Test::new()
            .write("m.yaml", &manifest)
            .write("judge.py", TAG_JUDGE)
    };
    let test = fresh();
    let run = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "zero"])
        .run();
    run.assert_success();
    let uninterrupted = output_hashes(&last_run_json(&test));

    let series = metric_series(&test, "zero");
    assert_eq!(series.len(), 4, "one point per step");
    let value = |point: &serde_json::Value, name: &str| {
        point["values"][name]
            .as_f64()
            .unwrap_or_else(|| panic!("`{name}` is logged: {}", point["values"]))
    };
    let mut dropped = 0.0;
    for point in &series {
        let (drawn, kept) = (
            value(point, "dynamic_sampling/prompts_drawn"),
            value(point, "dynamic_sampling/groups_kept"),
        );
        let step_dropped = value(point, "dynamic_sampling/groups_dropped");
        let rounds = value(point, "dynamic_sampling/rounds");
        // Every prompt drawn is sampled as one group, then kept or dropped; a step keeps
        // at most its batch of 2 groups, in at most `max_rounds` rounds.
        assert_eq!(drawn, kept + step_dropped, "{}", point["values"]);
        assert!(
            kept <= 2.0 && (1.0..=2.0).contains(&rounds),
            "{}",
            point["values"]
        );
        assert!(point["values"].get("frac_reward_zero_std").is_some());
        dropped += step_dropped;
    }
    assert!(
        dropped > 0.0,
        "the judge's constant groups were dropped: {series:?}"
    );
    assert!(
        series.iter().any(|p| value(p, "clip_ratio") > 0.0),
        "the second update's sequence ratios leave GSPO's narrow range: {series:?}"
    );

    // Killed after every checkpoint (base at 4, zero at 2) and resumed: the same bits.
    let test = fresh();
    for attempt in 0.. {
        assert!(attempt < 10, "the run did not finish after 10 resumptions");
        let outcome = test
            .clone_args(["run", "m.yaml", "--store", "store", "--until", "zero"])
            .env("R1FLOW_FAILPOINT", "after-checkpoint")
            .run();
        if outcome.success {
            break;
        }
    }
    assert_eq!(output_hashes(&last_run_json(&test)), uninterrupted);
}

/// `pipeline()` with LoRA: an `sft` stage training rank-4 adapters on every projection of
/// `base`, then `zero` (GRPO with a KL term against the frozen base) with PEFT's default
/// adapters on the merged result.
fn with_lora() -> String {
    let manifest = pipeline()
        .replace(
            "  zero:\n    kind: grpo\n    from: base\n",
            "  tuned: {kind: sft, from: base, data: tasks, max_seq_length: 48, max_steps: 4, per_device_train_batch_size: 4, save_steps: 2, learning_rate: 1.0e-2, lora: {r: 4, alpha: 8, target_modules: [all-linear]}}\n  zero:\n    kind: grpo\n    from: tuned\n",
        )
        .replace("    beta: 0.05\n", "    beta: 0.05\n    lora: {}\n");
    assert_ne!(manifest, pipeline());
    manifest
}

/// The stored bytes of output `name` (`stage/file`) of a run's hashes.
fn output_bytes(test: &Test, hashes: &[String], name: &str) -> Vec<u8> {
    let hash = hashes
        .iter()
        .find_map(|h| h.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no output {name} in {hashes:#?}"));
    std::fs::read(blob_path(test, hash)).expect("blob")
}

/// `[name, shape]` of every tensor in a safetensors file's header.
fn safetensors_shapes(bytes: &[u8]) -> Vec<(String, Vec<u64>)> {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("header length")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("header");
    header
        .as_object()
        .expect("header object")
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, t)| {
            let shape = t["shape"].as_array().expect("shape");
            (
                name.clone(),
                shape.iter().map(|d| d.as_u64().expect("dim")).collect(),
            )
        })
        .collect()
}

#[test]
fn lora_sft_and_grpo_store_merged_models_and_peft_adapters_and_resume_bit_identical() {
    let manifest = with_lora();
    let test = Test::new().write("m.yaml", &manifest);
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "zero"])
        .run();
    outcome.assert_success();
    let hashes = output_hashes(&last_run_json(&test));
    let hash = |name: &str| {
        hashes
            .iter()
            .find(|h| h.starts_with(&format!("{name}=")))
            .cloned()
            .unwrap_or_else(|| panic!("no output {name} in {hashes:#?}"))
    };
    // The merged models moved away from what they started from.
    assert_ne!(
        hash("base/model.safetensors").split('=').nth(1),
        hash("tuned/model.safetensors").split('=').nth(1)
    );
    assert_ne!(
        hash("tuned/model.safetensors").split('=').nth(1),
        hash("zero/model.safetensors").split('=').nth(1)
    );
    // A stage without `lora:` stores no adapter.
    assert!(!hashes.iter().any(|h| h.starts_with("base/adapter")));
    for (stage, rank, targets) in [
        (
            "tuned",
            4,
            vec![
                "down_proj",
                "gate_proj",
                "k_proj",
                "o_proj",
                "q_proj",
                "up_proj",
                "v_proj",
            ],
        ),
        ("zero", 8, vec!["q_proj", "v_proj"]),
    ] {
        let config: serde_json::Value = serde_json::from_slice(&output_bytes(
            &test,
            &hashes,
            &format!("{stage}/adapter_config.json"),
        ))
        .expect("adapter_config.json");
        assert_eq!(config["r"], rank, "{config}");
        assert_eq!(config["peft_type"], "LORA");
        let mut written: Vec<&str> = config["target_modules"]
            .as_array()
            .expect("target_modules")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        written.sort();
        assert_eq!(written, targets);
        let shapes = safetensors_shapes(&output_bytes(
            &test,
            &hashes,
            &format!("{stage}/adapter_model.safetensors"),
        ));
        // Two layers, A and B per target.
        assert_eq!(shapes.len(), 2 * 2 * targets.len(), "{shapes:?}");
        for (name, shape) in &shapes {
            let expected_rank_dim = if name.ends_with("lora_A.weight") {
                0
            } else {
                1
            };
            assert_eq!(shape[expected_rank_dim], rank as u64, "{name}: {shape:?}");
        }
    }
    // Killed after every checkpoint and resumed: the same bits.
    let resumed = {
        let test = Test::new().write("m.yaml", &manifest);
        let mut finished = None;
        for _ in 0..12 {
            let outcome = test
                .clone_args(["run", "m.yaml", "--store", "store", "--until", "zero"])
                .env("R1FLOW_FAILPOINT", "after-checkpoint")
                .run();
            if outcome.success {
                finished = Some(output_hashes(&last_run_json(&test)));
                break;
            }
        }
        finished.expect("the run finished after at most 12 resumptions")
    };
    assert_eq!(resumed, hashes);
}
