//! Issue 6's stages through the real binary on micro models: a reward model learns a
//! separable preference set and resumes bit-identical; `rlhf` routes rewards by prompt
//! type; `distill` in `logits` mode trains a smaller student both ways; rejection
//! sampling emits preference pairs a reward model trains on.

use crate::support::{
    last_run_json, metric_series, micro_pipeline, output_hashes, output_names, run_stage, Test,
};

fn pipeline() -> String {
    micro_pipeline("preferences-test", 4)
        .lengths(32, 12)
        .model("student: {preset: tiny, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32}")
        .reward("helpful: {kind: model, model: rm}")
        .arith(60, 10)
        .dataset("prefs: {kind: jsonl, path: prefs.jsonl, format: preferences}")
        .dataset("mixed: {kind: jsonl, path: mixed.jsonl, format: prompts}")
        .stages(
            r#"  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 4, per_device_train_batch_size: 4}
  pairs: {kind: dataset, source: prefs, template: plain, test_size: 8}
  rm:
    kind: reward_model
    from: base
    data: pairs
    max_seq_length: 48
    max_steps: 30
    per_device_train_batch_size: 8
    learning_rate: 3.0e-3
    lr_scheduler_type: constant
    save_steps: 10
    logging_steps: 5
  prompts: {kind: dataset, source: mixed, template: plain, test_size: 2}
  tuned:
    kind: rlhf
    from: base
    prompts: prompts
    rewards: {accuracy: 1.0, format: 0.5}
    reward_model: rm
    general_rewards: {tag_count: 0.5}
    learning_rate: 1.0e-3
    num_generations: 4
    per_device_train_batch_size: 32
    max_steps: 2
  scored: {kind: eval, from: tuned, prompts: prompts, split: train, num_samples: 2, k: [1], rewards: {helpful: 1.0, format: 1.0}}
"#,
        )
}

/// Chosen completions say "yes" politely; rejected ones shout "NO". Trivially separable.
fn preference_lines() -> String {
    (0..40)
        .map(|i| {
            format!(
                "{{\"prompt\": \"request {i}: please help\", \"chosen\": \" yes, gladly {i}.\", \"rejected\": \" NO!!! {i} NO\"}}\n"
            )
        })
        .collect()
}

const MIXED: &str = "{\"prompt\": \"2 + 3 =\", \"answer\": 5}\n{\"prompt\": \"4 + 4 =\", \"answer\": 8}\n{\"prompt\": \"1 + 6 =\", \"answer\": 7}\n{\"prompt\": \"3 + 2 =\", \"answer\": 5}\n{\"prompt\": \"5 + 1 =\", \"answer\": 6}\n{\"prompt\": \"say hello\"}\n{\"prompt\": \"thank a friend\"}\n{\"prompt\": \"describe rain\"}\n{\"prompt\": \"name a colour\"}\n{\"prompt\": \"greet the team\"}\n";

/// A rule that about half of an untrained model's samples pass: an even-length completion.
const JUDGE: &str = "import json, sys\nfor line in sys.stdin:\n    print(1 if len(json.loads(line)['completion']) % 2 == 0 else 0, flush=True)\n";

fn project(manifest: &str) -> Test {
    Test::new()
        .write("m.yaml", manifest)
        .write("prefs.jsonl", preference_lines())
        .write("mixed.jsonl", MIXED)
}

#[test]
fn a_reward_model_learns_separable_pairs_and_rlhf_routes_rewards_by_prompt_type() {
    let test = project(&pipeline());
    let run = test.run_recorded();

    // The reward model: held-out pair accuracy well above chance, stored with the model.
    let rm = run_stage(&run, "rm");
    let accuracy = rm["metrics"]["eval_accuracy"]
        .as_f64()
        .expect("eval_accuracy");
    assert_eq!(rm["metrics"]["eval_pairs"].as_f64(), Some(8.0));
    assert!(accuracy >= 0.875, "held-out pair accuracy {accuracy}");
    assert!(rm["metrics"]["eval_margin"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(
        output_names(rm),
        ["metrics.json", "reward_model.safetensors", "tokenizer.json"]
    );
    let series = metric_series(&test, "rm");
    assert_eq!(series[0]["step"], 0, "the untrained baseline comes first");
    let margin_before = series[0]["values"]["eval_margin"].as_f64().expect("margin");
    let margin_after = rm["metrics"]["eval_margin"].as_f64().expect("margin");
    assert!(
        margin_after > margin_before + 1.0,
        "training separates the pairs: held-out margin {margin_before} → {margin_after}"
    );
    let series = &series[1..];
    let first = series[0]["values"]["loss"].as_f64().expect("loss");
    let last = series[series.len() - 1]["values"]["loss"]
        .as_f64()
        .expect("loss");
    assert!(
        last < first,
        "the Bradley–Terry loss falls: {first} → {last}"
    );
    assert_eq!(
        series[series.len() - 1]["values"]["eval_accuracy"].as_f64(),
        Some(accuracy),
        "the last point carries the held-out accuracy"
    );

    // rlhf: both prompt types in every step, each scored by its own rewards.
    let series = metric_series(&test, "tuned");
    assert_eq!(series.len(), 2);
    for point in &series {
        let values = &point["values"];
        for name in [
            "reward",
            "reward/reasoning",
            "reward/general",
            "reward/reasoning/accuracy",
            "reward/reasoning/format",
            "reward/general/reward_model",
            "reward/general/tag_count",
        ] {
            assert!(
                values[name].as_f64().is_some_and(f64::is_finite),
                "rlhf logs `{name}`: {values}"
            );
        }
        let general = values["prompts/general"].as_f64().unwrap_or(0.0);
        assert!(general > 0.0 && general < 1.0, "{values}");
        assert!(
            values.get("reward/general/accuracy").is_none(),
            "general prompts get no accuracy reward: {values}"
        );
    }

    // A `model` reward scores inside eval too.
    let scored = run_stage(&run, "scored");
    assert!(
        scored["metrics"]["reward/helpful"]
            .as_f64()
            .is_some_and(f64::is_finite),
        "{}",
        scored["metrics"]
    );
}

#[test]
fn a_reward_model_killed_mid_training_resumes_bit_identical() {
    let until = ["run", "m.yaml", "--store", "store", "--until", "rm"];
    let test = project(&pipeline());
    let full = test.clone_args(until).run();
    full.assert_success();
    let expected = output_hashes(&last_run_json(&test));
    assert!(
        expected
            .iter()
            .any(|h| h.starts_with("rm/reward_model.safetensors=")),
        "{expected:?}"
    );

    let test = project(&pipeline());
    // Dies after the checkpoint at step 10, then after the one at step 20.
    for step in ["", "resuming from step 10"] {
        let killed = test
            .clone_args(until)
            .env("R1FLOW_FAILPOINT", "after-checkpoint")
            .run();
        killed.assert_failure_says(step);
    }
    let resumed = test.clone_args(until).run();
    resumed
        .assert_success()
        .assert_stderr_says("resuming from step 20");
    assert_eq!(output_hashes(&last_run_json(&test)), expected);
}

#[test]
fn logit_distillation_trains_a_smaller_student_both_ways() {
    let manifest = format!(
        "{}  forward: {{kind: distill, student: student, teacher: base, data: tasks, mode: logits, kl: forward, max_seq_length: 48, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-2, logging_steps: 1}}\n  reverse: {{kind: distill, student: student, teacher: base, data: tasks, mode: logits, kl: reverse, max_seq_length: 48, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e-2, logging_steps: 1}}\n",
        pipeline()
    );
    let test = project(&manifest);
    for target in ["forward", "reverse"] {
        let outcome = test
            .clone_args(["run", "m.yaml", "--store", "store", "--until", target])
            .run();
        outcome.assert_success();
        let series = metric_series(&test, target);
        let losses: Vec<f64> = series
            .iter()
            .filter_map(|p| p["values"]["loss"].as_f64())
            .collect();
        assert_eq!(losses.len(), 3, "{target}: {series:?}");
        assert!(
            losses.iter().all(|l| *l > 0.0 && l.is_finite()),
            "a KL between different models is positive: {losses:?}"
        );
        assert!(
            losses[2] < losses[0],
            "{target} KL falls as the student learns: {losses:?}"
        );
    }
}

#[test]
fn rejection_sampling_emits_preference_pairs_for_a_reward_model() {
    let manifest = pipeline().replace(
        "  rm:\n    kind: reward_model\n    from: base\n    data: pairs\n",
        "  judged: {kind: rejection_sampling, from: base, prompts: tasks, num_samples: 4, emit: preferences, thresholds: {parity: 1.0}, require_format: false, max_per_prompt: 1, temperature: 1.0, top_p: 1.0}\n  rm:\n    kind: reward_model\n    from: base\n    data: judged\n",
    )
    .replace(
        "rewards:\n  helpful:",
        "rewards:\n  parity: {kind: command, command: [python3, judge.py]}\n  helpful:",
    );
    let test = project(&manifest).write("judge.py", JUDGE);
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "rm"])
        .run();
    outcome.assert_success();
    let run = last_run_json(&test);
    let judged = run_stage(&run, "judged");
    let pairs = judged["metrics"]["pairs"].as_f64().unwrap_or(0.0);
    assert!(pairs >= 1.0, "{}", judged["metrics"]);
    assert!(
        pairs <= 30.0,
        "at most one pair per train prompt (30): {pairs}"
    );
    let rm = run_stage(&run, "rm");
    assert_eq!(rm["status"], "ran");
    assert_eq!(
        rm["metrics"]["train_pairs"].as_f64(),
        Some(pairs),
        "the reward model trains on every pair"
    );

    // A preference dataset is not SFT data: the link is a type error before any compute.
    let wrong = manifest.replace(
        "  prompts: {kind: dataset",
        "  sft_on_pairs: {kind: sft, from: base, data: judged}\n  prompts: {kind: dataset",
    );
    let test = project(&wrong).write("judge.py", JUDGE);
    let outcome = test.clone_args(["validate", "m.yaml"]).run();
    outcome.assert_failure_says("`data` needs a dataset with completions");
}

#[test]
fn an_ablation_axis_over_the_student_shares_the_teacher() {
    // pipelines/distill.yaml: two student sizes as the arms of one axis, two seeds of
    // the whole chain as the other.
    let outcome = Test::in_dir(&crate::support::repo_root())
        .args(["plan", "pipelines/distill.yaml", "--json"])
        .run();
    let plan = outcome.stdout_json();
    let variants_of = |name: &str| -> Vec<usize> {
        plan["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .filter(|s| s["name"] == name)
            .map(|s| s["variants"].as_array().map_or(0, Vec::len))
            .collect()
    };
    for shared in ["tasks", "base", "zero", "teacher_samples", "student_tasks"] {
        assert_eq!(
            variants_of(shared),
            [2, 2],
            "`{shared}` runs once a seed, for both students"
        );
    }
    for per_student in ["student_base", "distilled", "student_rl", "eval_distilled"] {
        assert_eq!(
            variants_of(per_student),
            [1, 1, 1, 1],
            "one `{per_student}` per student and seed"
        );
    }
}

#[test]
fn rlhf_on_general_prompts_only_scores_with_the_reward_model_once() {
    // As in pipelines/r1.yaml: every prompt is general, and `general_rewards` names a
    // `model` reward of the stage's own reward model, whose weight then applies instead
    // of the implicit weight-1 term.
    let manifest = pipeline()
        .replace(
            "  prompts: {kind: dataset, source: mixed, template: plain, test_size: 2}",
            "  prompts: {kind: dataset, source: chat, template: plain, test_size: 1}",
        )
        .replace(
            "general_rewards: {tag_count: 0.5}",
            "general_rewards: {helpful: 2.0, tag_count: 0.5}",
        )
        .replace(
            "  mixed: {kind: jsonl, path: mixed.jsonl, format: prompts}",
            "  mixed: {kind: jsonl, path: mixed.jsonl, format: prompts}\n  chat: {kind: jsonl, path: chat.jsonl, format: prompts}",
        );
    let general: String = MIXED
        .lines()
        .filter(|l| !l.contains("answer"))
        .map(|l| format!("{l}\n"))
        .collect();
    let test = project(&manifest).write("chat.jsonl", general);
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "tuned"])
        .run();
    outcome.assert_success();
    // Steps without reasoning prompts log no mean over them (NaN has no JSON spelling).
    for point in metric_series(&test, "tuned") {
        let values = &point["values"];
        assert_eq!(values["prompts/general"].as_f64(), Some(1.0), "{values}");
        assert!(values.get("reward/reasoning").is_none(), "{values}");
        assert!(
            values["reward/general/helpful"].as_f64().is_some(),
            "{values}"
        );
        assert!(
            values.get("reward/general/reward_model").is_none(),
            "the reward model scores once, with the weight `general_rewards` gives it: {values}"
        );
    }
}
