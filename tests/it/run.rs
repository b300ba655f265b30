//! `r1flow run` through the real binary: caching, corruption, locking, crashes, selection,
//! and the run records (`runs`, `runs show --json`).

use std::process::Command;

use crate::support::{blob_path, last_run_json, output_hashes, output_names, Test};

const MANIFEST: &str = r#"
name: store-test
seed: 3
datasets:
  arith: {kind: arithmetic, num_samples: 300, max_digits: 3}
  mine: {kind: jsonl, path: data.jsonl, format: prompts}
stages:
  tasks: {kind: dataset, source: arith, test_size: 20}
  user: {kind: dataset, source: mine, test_size: 1, template: plain}
"#;

const DATA: &str = "{\"prompt\": \"2+2\", \"answer\": 4}\n{\"prompt\": \"3+3\", \"answer\": \"6\"}\n{\"prompt\": \"capital of France?\", \"answer\": \"Paris\"}\n";

fn project() -> Test {
    Test::new()
        .write("m.yaml", MANIFEST)
        .write("data.jsonl", DATA)
}

/// The project after one successful run.
fn project_run_once() -> Test {
    let test = project();
    test.run_in_store().run().assert_success();
    test
}

fn statuses(run: &serde_json::Value) -> Vec<(String, String)> {
    run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_second_run_reuses_everything() {
    let test = project();
    let run = test.run_recorded();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        statuses(&run),
        [
            ("tasks".into(), "ran".into()),
            ("user".into(), "ran".into())
        ]
    );
    let stage = &run["stages"][0];
    assert_eq!(stage["key"].as_str().map(str::len), Some(64));
    assert_eq!(stage["metrics"]["records_test"], 20.0);
    assert_eq!(output_names(stage), ["test.jsonl", "train.jsonl"]);

    let second = test.run_in_store().run();
    second
        .assert_success()
        .assert_stderr_says("0 ran, 2 cached");
    assert!(
        !second.stderr.contains("running"),
        "a no-op re-run does no stage work:\n{}",
        second.stderr
    );
    assert_eq!(output_hashes(&last_run_json(&test)), output_hashes(&run));

    let listing = test.runs_in_store().run();
    listing.assert_success();
    assert_eq!(
        listing.stdout.lines().count(),
        3,
        "a header and two runs:\n{}",
        listing.stdout
    );
}

#[test]
fn a_corrupt_blob_is_detected_and_recomputed() {
    let test = project_run_once();
    let run = last_run_json(&test);
    let hash = run["stages"][0]["outputs"][0]["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let blob = blob_path(&test, &hash);
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[0] ^= 0xff;
    std::fs::write(&blob, bytes).expect("flip bytes");

    let again = test.run_in_store().run();
    again
        .assert_success()
        .assert_stderr_says("stored artifact is damaged")
        .assert_stderr_says("1 ran, 1 cached");
    assert_eq!(
        output_hashes(&last_run_json(&test)),
        output_hashes(&run),
        "recomputed bit for bit"
    );
}

#[test]
fn crashes_at_every_write_point_leave_a_store_that_resumes() {
    let reference = project();
    assert!(reference.run_in_store().run().success);
    let expected = output_hashes(&last_run_json(&reference));
    for point in ["blob-write", "before-index-commit"] {
        let test = project();
        let crashed = test.run_in_store().env("R1FLOW_FAILPOINT", point).run();
        assert!(!crashed.success, "{point}: the process should have died");
        let resumed = test.run_in_store().run();
        assert!(resumed.success, "{point}: {}", resumed.stderr);
        assert_eq!(
            output_hashes(&last_run_json(&test)),
            expected,
            "{point}: artifacts differ from an uninterrupted run"
        );
        let runs = test.runs_in_store().run();
        assert!(
            runs.stdout.contains("interrupted"),
            "{point}: the crashed run is marked interrupted:\n{}",
            runs.stdout
        );
    }
}

#[test]
fn a_second_writer_is_refused_and_a_dead_holder_is_taken_over() {
    let test = project_run_once();
    // Hold the store from this process, as a running r1flow would.
    let store = r1flow::store::Store::open(&test.path("store"), r1flow::store::LockMode::Fail)
        .expect("open");
    let refused = test.run_in_store().run();
    refused.assert_failure_says(format!("in use by process {}", std::process::id()));

    // `--wait` waits for the holder to finish.
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_r1flow"))
        .args(["run", "m.yaml", "--store", "store", "--wait"])
        .current_dir(test.path(""))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(
        waiting.try_wait().expect("poll").is_none(),
        "--wait returned while the store was held"
    );
    drop(store);
    assert!(waiting.wait().expect("wait").success());

    // A lock file left by a dead process (no OS lock held) is taken over.
    std::fs::write(
        test.path("store/LOCK"),
        "999999\nr1flow run m.yaml\n2026-01-01 00:00:00 UTC\n",
    )
    .expect("stale lock");
    let taken = test.run_in_store().run();
    taken
        .assert_success()
        .assert_stderr_says("took over the store lock left by process 999999");
}

#[test]
fn an_unusable_store_path_is_a_clear_error() {
    let test = project().write("not-a-dir", "x");
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "not-a-dir/store"])
        .run();
    outcome.assert_failure_says("not-a-dir/store");
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
}

#[test]
fn selection_options_pick_stages() {
    let test = project();
    // A run with each option, in turn, and what became of each stage.
    for (option, tasks, user) in [("--only", "skipped", "ran"), ("--force", "ran", "ran")] {
        let selected = test
            .clone_args(["run", "m.yaml", "--store", "store", option, "user"])
            .run();
        selected.assert_success();
        assert_eq!(
            statuses(&last_run_json(&test)),
            [("tasks".into(), tasks.into()), ("user".into(), user.into())],
            "{option} user"
        );
    }

    let unknown = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "taks"])
        .run();
    unknown.assert_failure_says("did you mean `tasks`?");
}

#[test]
fn plan_says_why_a_stage_runs_again() {
    let test = project_run_once();
    let edited = project().write("m.yaml", MANIFEST.replace("test_size: 20", "test_size: 25"));
    std::fs::write(
        test.path("m.yaml"),
        std::fs::read(edited.path("m.yaml")).expect("read"),
    )
    .expect("write");
    let plan = test.plan_in_store().run();
    plan.assert_success()
        .assert_stdout_says("params.test_size: 20.0 → 25.0");
    plan.assert_stdout_line_says(&["user", "cached"]);
}

#[test]
fn metrics_and_gc_report_from_the_store() {
    let test = project_run_once();
    assert!(
        test.clone_args(["run", "m.yaml", "--store", "store", "--force", "tasks"])
            .run()
            .success
    );
    let dry = test
        .clone_args(["gc", "--keep-last", "1", "--dry-run", "--store", "store"])
        .run();
    dry.assert_success()
        .assert_stdout_starts_with("would remove 1 run(s), 0 artifact(s)");
    let csv = test
        .clone_args(["metrics", "last", "tasks", "--store", "store"])
        .run();
    csv.assert_success().assert_stdout_starts_with("step");
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_the_store_consistent() {
    let test = project();
    let full = test
        .run_in_store()
        .env("R1FLOW_FAILPOINT", "disk-full")
        .run();
    full.assert_failure_says("No space left on device");
    assert!(
        full.stderr.contains("store/blobs/"),
        "the error names the file: {}",
        full.stderr
    );
    assert!(!full.stderr.contains("panicked"), "{}", full.stderr);
    // Nothing half-written was adopted: the next run computes everything and succeeds.
    let retry = test.run_in_store().run();
    retry.assert_success().assert_stderr_says("2 ran, 0 cached");
    assert!(
        std::fs::read_dir(test.path("store/tmp"))
            .expect("tmp")
            .next()
            .is_none(),
        "no temporary file is left"
    );
}

/// `bad` fails at run time (its test split is larger than its data); `after_bad` depends on
/// it; `tasks` and `base` do not.
const BRANCHES: &str = r#"
name: branches
seed: 3
datasets:
  arith: {kind: arithmetic, num_samples: 300, max_digits: 3}
  mine: {kind: jsonl, path: data.jsonl, format: prompts}
models:
  tiny: {preset: tiny, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}
stages:
  bad: {kind: dataset, source: mine, test_size: 10, template: plain}
  after_bad: {kind: eval, from: base, prompts: bad, num_samples: 1, max_prompt_length: 16, max_completion_length: 4}
  tasks: {kind: dataset, source: arith, test_size: 20}
  base: {kind: pretrain, from: tiny, data: tasks, max_steps: 2, max_seq_length: 32}
"#;

#[test]
fn a_failed_stage_skips_what_depends_on_it_and_independent_branches_go_on() {
    for jobs in ["1", "2"] {
        let test = Test::new()
            .write("m.yaml", BRANCHES)
            .write("data.jsonl", DATA);
        let outcome = test
            .clone_args(["run", "m.yaml", "--store", "store", "--jobs", jobs])
            .run();
        assert!(!outcome.success, "a failed stage fails the run");
        let run = last_run_json(&test);
        assert_eq!(run["status"], "failed");
        let mut seen = statuses(&run);
        seen.sort();
        assert_eq!(
            seen,
            [
                ("after_bad".to_string(), "skipped".to_string()),
                ("bad".into(), "failed".into()),
                ("base".into(), "ran".into()),
                ("tasks".into(), "ran".into()),
            ],
            "--jobs {jobs}"
        );
        assert!(
            run["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .any(|s| s["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("cannot be split into a test set of 10"))),
            "{run}"
        );
    }
}

#[test]
fn a_running_run_is_watched_from_another_process() {
    let manifest = BRANCHES
        .replace("max_steps: 2,", "max_steps: 100000, save_steps: 100000,")
        .replace("  bad: {kind: dataset, source: mine, test_size: 10, template: plain}\n", "")
        .replace(
            "  after_bad: {kind: eval, from: base, prompts: bad, num_samples: 1, max_prompt_length: 16, max_completion_length: 4}\n",
            "",
        );
    let test = Test::new()
        .write("m.yaml", manifest)
        .write("data.jsonl", DATA);
    let mut run = test.run_in_store().spawn("run.log");
    let started = std::time::Instant::now();
    let shown = loop {
        assert!(
            started.elapsed().as_secs() < 120,
            "the run never showed progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let shown = test
            .clone_args(["runs", "show", "last", "--store", "store"])
            .run();
        // The header says "running" as soon as the coordinator publishes;
        // wait for a stage row whose status column says it.
        let a_stage_runs = shown
            .stdout
            .lines()
            .any(|line| line.split_whitespace().nth(4) == Some("running"));
        if shown.success && a_stage_runs {
            break shown;
        }
    };
    shown
        .assert_stdout_says("(live:")
        .assert_stdout_says("coordinator pid");
    let listed = test.runs_in_store().run();
    assert!(
        listed.success && listed.stdout.contains("running"),
        "{}",
        listed.stderr
    );
    let metrics = test
        .clone_args(["metrics", "last", "base", "--store", "store"])
        .run();
    metrics.assert_success();
    run.kill().expect("stop the run");
    let _ = run.wait();
}
