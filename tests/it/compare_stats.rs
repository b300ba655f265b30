//! `compare`'s paired statistics through the real binary: a micro model pretrained for a
//! few steps is evaluated by three arms × two eval seeds — `plain`, `reweighted` (only the
//! eval's reward weights change: the same samples, built not to differ) and `short` (4
//! tokens per completion instead of 16: built to differ in length) — and compared.

use serde_json::Value;

use crate::support::{compare_json, micro_pipeline, Test};

/// Three arms of one eval stage × two sampling seeds, on a micro model: seconds.
fn arms() -> String {
    micro_pipeline("compare-stats-test", 1)
        .lengths(32, 16)
        .arith(200, 40)
        .stages(
            r#"  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 4, per_device_train_batch_size: 4}
  eval: {kind: eval, from: base, prompts: tasks, num_samples: 4, k: [1, 4], rewards: {accuracy: 1.0, format: 1.0}}
ablations:
  arm:
    plain: {}
    reweighted: {stages.eval.rewards.format: 0.5}
    short: {stages.eval.max_completion_length: 4}
  seed:
    s1: {stages.eval.seed: 1}
    s2: {stages.eval.seed: 2}
"#,
        )
}

/// The comparison of `arm` with the baseline in a `"paired"` object.
fn comparison<'a>(paired: &'a Value, arm: &str) -> &'a Value {
    paired["comparisons"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["arm"] == arm))
        .unwrap_or_else(|| panic!("no comparison of {arm} in {paired}"))
}

fn metric<'a>(comparison: &'a Value, name: &str) -> &'a Value {
    comparison["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["metric"] == name))
        .unwrap_or_else(|| panic!("no {name} in {comparison}"))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn compare_prints_paired_intervals_and_verdicts() {
    let test = Test::new().write("m.yaml", arms());
    let ran = test.run_in_store().run();
    ran.assert_success();

    // --- JSON: every arm against the first row -----------------------------------------
    let json = compare_json(&test, &["m.yaml"]);
    let paired = &json["paired"];
    assert_eq!(paired["resamples"], 10_000);
    assert_eq!(paired["seed"], 0);
    assert_eq!(paired["confidence"], 0.95);
    assert_eq!(paired["notes"], serde_json::json!([]));

    // Built not to differ: the same samples, so every difference is exactly 0.
    let same = comparison(paired, "reweighted");
    assert_eq!(same["baseline"], "plain");
    assert_eq!(same["stage"], "eval");
    assert_eq!(same["seeds"], serde_json::json!({"arm": 2, "baseline": 2}));
    let names: Vec<&str> = same["metrics"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["metric"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "pass@1",
            "pass@4",
            "cons@1",
            "cons@4",
            "format_rate",
            "completion_len_mean"
        ]
    );
    for m in same["metrics"].as_array().into_iter().flatten() {
        assert_eq!(m["prompts"], 40, "{m}");
        assert_eq!(m["difference"], 0.0, "{m}");
        assert_eq!(m["verdict"], "within noise", "{m}");
        let (low, high) = (number(&m["interval"][0]), number(&m["interval"][1]));
        assert!(low <= 0.0 && high >= 0.0, "{m}");
    }

    // Built to differ: at most 4 tokens against up to 16.
    let short = comparison(paired, "short");
    let length = metric(short, "completion_len_mean");
    assert_eq!(length["verdict"], "different", "{length}");
    assert!(number(&length["arm"]) <= 4.0, "{length}");
    assert!(number(&length["interval"][1]) < 0.0, "{length}");
    assert!(
        number(&length["interval"][0]) <= number(&length["difference"])
            && number(&length["difference"]) <= number(&length["interval"][1]),
        "{length}"
    );
    assert!(length["seed_sd"]["pooled"].is_number(), "{length}");
    assert!(length["seeds_needed"].as_u64().is_some_and(|n| n >= 2));

    // Deterministic given the seed; another seed moves the interval, not the estimate.
    assert_eq!(compare_json(&test, &["m.yaml"]), json);
    let reseeded = compare_json(
        &test,
        &["m.yaml", "--bootstrap-seed", "5", "--resamples", "2000"],
    );
    let moved = metric(
        comparison(&reseeded["paired"], "short"),
        "completion_len_mean",
    );
    assert_eq!(moved["difference"], length["difference"]);
    assert_ne!(moved["interval"], length["interval"]);
    assert_eq!(reseeded["paired"]["resamples"], 2000);

    // --- another baseline ----------------------------------------------------------------
    let against_short = compare_json(&test, &["m.yaml", "--baseline", "short"]);
    let plain = comparison(&against_short["paired"], "plain");
    assert_eq!(plain["baseline"], "short");
    assert!(number(&metric(plain, "completion_len_mean")["difference"]) > 0.0);
    let unknown = test
        .clone_args([
            "compare",
            "m.yaml",
            "--baseline",
            "long",
            "--store",
            "store",
        ])
        .run();
    insta::assert_snapshot!(unknown.failure_stderr(), @"error: --baseline `long` is not a row of the comparison; its rows: plain, reweighted, short");

    // --- text, Markdown, CSV, HTML ---------------------------------------------------------
    let text = test
        .clone_args(["compare", "m.yaml", "--store", "store"])
        .run();
    // The table first.
    text.assert_success()
        .assert_stdout_starts_with("variant     seeds  stages.eval.");
    assert!(text.stdout.contains("\nIs the difference real?\n"));
    let verdict_of = |arm: &str, metric: &str| -> Option<String> {
        text.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() > 3 && w[0] == arm && w[1] == "plain" && w[2] == metric)
            // arm, baseline, metric, difference, "[low," "high]", verdict…, 4 numbers.
            .map(|w| w[6..w.len() - 4].join(" "))
    };
    assert_eq!(
        verdict_of("short", "completion_len_mean").as_deref(),
        Some("different"),
        "{}",
        text.stdout
    );
    assert_eq!(
        verdict_of("reweighted", "pass@1").as_deref(),
        Some("within noise"),
        "{}",
        text.stdout
    );

    let markdown = test
        .clone_args([
            "compare", "m.yaml", "--format", "markdown", "--store", "store",
        ])
        .run();
    markdown.assert_stdout_says("| arm | baseline | metric | arm − baseline | 95 % interval | verdict | prompts | seeds | seed sd | seeds needed |");
    assert!(markdown
        .stdout
        .contains("| short | plain | completion_len_mean | -"));

    let csv = test
        .clone_args(["compare", "m.yaml", "--format", "csv", "--store", "store"])
        .run();
    assert_eq!(csv.stdout.lines().count(), 4, "CSV is the table only");

    let html = test
        .clone_args([
            "compare", "m.yaml", "--html", "cmp.html", "--store", "store",
        ])
        .run();
    html.assert_success();
    let page = std::fs::read_to_string(test.path("cmp.html")).expect("cmp.html");
    assert!(page.contains("<h2>Is the difference real?</h2>"));
    assert!(page.contains("<td>short</td><td>plain</td><td>completion_len_mean</td>"));
    assert!(page.contains("<td>different</td>"));
    assert!(!page.contains("<script"), "still self-contained");

    // --- arms built not to differ, alone: the whole block is exact ------------------------
    let same_only = arms()
        .replace("    short: {stages.eval.max_completion_length: 4}\n", "")
        .replace(
            "  seed:\n    s1: {stages.eval.seed: 1}\n    s2: {stages.eval.seed: 2}\n",
            "",
        );
    let test = test.write("same.yaml", same_only);
    let ran = test
        .clone_args(["run", "same.yaml", "--store", "store"])
        .run();
    ran.assert_success();
    let text = test
        .clone_args(["compare", "same.yaml", "--store", "store"])
        .run();
    text.assert_success();
    let block = text
        .stdout
        .split_once("\nIs the difference real?\n")
        .map(|(_, block)| block.to_string())
        .unwrap_or_else(|| panic!("no statistics in {}", text.stdout));
    insta::assert_snapshot!("arms_built_not_to_differ", block);
}
