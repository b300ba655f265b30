//! Hostile inputs and faults (issue 12): nothing poisons the store, nothing runs away,
//! every error is located. One test per case, each through the real binary, each bounded
//! in time (`run_within`): a hostile input must fail fast with a clear message, never
//! block, exhaust memory or leave processes behind.

use std::time::{Duration, Instant};

use crate::support::{last_run_json, micro_manifest, Outcome, Test};

/// A micro model and a small generated dataset, then `rest` (the case's stages).
fn manifest(rest: &str) -> String {
    format!("{}{rest}", micro_manifest("hostile"))
}

/// Stages that evaluate a one-step model with the verifier `verifier` (a file in the
/// test directory) under `timeout_s`.
fn eval_with_verifier(verifier: &str, timeout_s: f64) -> String {
    manifest(&format!(
        r#"rewards:
  v: {{kind: command, command: [./{verifier}], timeout_s: {timeout_s}}}
stages:
  tasks: {{kind: dataset, source: arith, test_size: 4}}
  base: {{kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 1, per_device_train_batch_size: 4}}
  eval: {{kind: eval, from: base, prompts: tasks, num_samples: 1, limit: 2, max_completion_length: 4, rewards: {{v: 1.0}}}}
"#
    ))
}

/// A project whose eval stage scores with `script`, written as the verifier `verifier`
/// (see `eval_with_verifier`).
fn verifier_project(verifier: &str, timeout_s: f64, script: &str) -> Test {
    executable(
        Test::new().write("m.yaml", eval_with_verifier(verifier, timeout_s)),
        verifier,
        script,
    )
}

fn executable(test: Test, name: &str, script: &str) -> Test {
    let test = test.write(name, script);
    let status = std::process::Command::new("chmod")
        .args(["+x", &test.path(name).display().to_string()])
        .status()
        .expect("chmod");
    assert!(status.success());
    test
}

/// `validate` of `manifest(rest)` in a fresh project.
fn validate_manifest(rest: &str) -> crate::support::Outcome {
    validate(&Test::new().write("m.yaml", manifest(rest)))
}

fn validate(test: &Test) -> crate::support::Outcome {
    test.clone_args(["validate", "m.yaml"]).run_within(30)
}

/// A number no other test uses, for the `sleep` a verifier starts: its command line marks
/// the process (a verifier in its own PID namespace writes pids the host does not know).
fn mark() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("1000.{}{n:03}", std::process::id())
}

/// A verifier that starts two `sleep`s marked `mark`, notes each in `started`, and waits
/// for them: it hangs until killed.
fn two_sleepers_then_wait(mark: &str) -> String {
    format!(
        "#!/bin/sh\nsleep {mark} &\necho started >> started\nsleep {mark} &\necho started >> started\nwait\n"
    )
}

/// Host pids of live (not zombie) processes whose command line holds `mark`.
fn marked_processes(mark: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if !zombie && String::from_utf8_lossy(&cmdline).contains(mark) {
            found.push(pid);
        }
    }
    found
}

/// How many children the verifier reported starting (a line each in `started`), waiting
/// up to `within` for `count`.
fn children_started(test: &Test, count: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let started = std::fs::read_to_string(test.path("started"))
            .unwrap_or_default()
            .lines()
            .count();
        if started >= count || Instant::now() >= deadline {
            return started;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No process marked `mark` is alive (within 5 s); any that is gets killed, then the test
/// fails.
fn assert_all_dead(mark: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marked_processes(mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive = marked_processes(mark);
    // Leave nothing behind even when the assertion fails.
    for pid in &alive {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert!(
        alive.is_empty(),
        "verifier processes outlived r1flow: {alive:?}"
    );
}

// --- 1. a non-finite metric never poisons the store -----------------------------------

#[test]
fn a_diverging_loss_fails_its_stage_and_the_store_stays_usable() {
    let test = Test::new().write(
        "m.yaml",
        manifest(
            r#"stages:
  tasks: {kind: dataset, source: arith, test_size: 4}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1.0e30, logging_steps: 1}
  more: {kind: sft, from: base, data: tasks, max_steps: 1, per_device_train_batch_size: 4}
"#,
        ),
    );
    let run = test.run_in_store().run_within(120);
    assert!(!run.success, "{}", run.stderr);
    run.assert_stderr_says("loss became NaN at step 2")
        .assert_stderr_says("learning_rate");
    let shown = last_run_json(&test);
    assert_eq!(shown["status"], "failed", "{shown}");
    for args in [
        vec!["runs", "--store", "store"],
        vec!["run", "m.yaml", "--store", "store", "--force", "base"],
        vec!["plan", "m.yaml", "--store", "store"],
        vec!["metrics", "last", "base", "--store", "store"],
        vec!["report", "last", "--out", "rep", "--store", "store"],
        vec!["compare", "m.yaml", "--store", "store"],
        vec!["gc", "--store", "store"],
    ] {
        let outcome = test.clone_args(args.clone()).run_within(120);
        assert!(
            !outcome.stderr.contains("unreadable store record"),
            "{args:?}: {}",
            outcome.stderr
        );
    }
    let listed = test.runs_in_store().run_within(30);
    assert!(!listed.stdout.contains("running"), "{}", listed.stdout);
}

#[test]
fn an_overflowing_verifier_score_is_stored_and_read_back() {
    let test = verifier_project(
        "big.sh",
        30.0,
        "#!/bin/sh\nwhile read -r line; do echo 1e308; done\n",
    );
    let run = test.run_in_store().run_within(120);
    run.assert_success();
    for args in [
        vec!["runs", "show", "last", "--store", "store"],
        vec!["run", "m.yaml", "--store", "store"],
        vec!["plan", "m.yaml", "--store", "store"],
        vec!["report", "last", "--out", "rep", "--store", "store"],
        vec!["compare", "m.yaml", "--store", "store"],
        vec!["gc", "--store", "store"],
    ] {
        let outcome = test.clone_args(args.clone()).run_within(120);
        assert!(outcome.success, "{args:?}: {}", outcome.stderr);
    }
}

#[test]
fn overflowing_rewards_fail_a_grpo_stage_with_their_cause() {
    let test = executable(
        Test::new().write(
            "m.yaml",
            manifest(
                r#"rewards:
  v: {kind: command, command: [./big.sh], timeout_s: 30}
stages:
  tasks: {kind: dataset, source: arith, test_size: 4}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 1, per_device_train_batch_size: 4}
  zero: {kind: grpo, from: base, prompts: tasks, rewards: {v: 1.0}, num_generations: 2, per_device_train_batch_size: 4, max_steps: 2, max_completion_length: 4, beta: 0}
"#,
            ),
        ),
        "big.sh",
        "#!/bin/sh\nwhile read -r line; do echo 1e308; done\n",
    );
    let run = test.run_in_store().run_within(120);
    run.assert_failure_says("rewards of step 1 are too large");
    assert_eq!(last_run_json(&test)["status"], "failed");
}

// --- 2. non-finite numbers are rejected where they are written ------------------------

#[test]
fn non_finite_numbers_are_rejected_where_written() {
    let fields = [
        "learning_rate",
        "beta",
        "epsilon",
        "temperature",
        "top_p",
        "weight_decay",
        "max_grad_norm",
    ];
    for field in fields {
        for value in [".nan", ".inf", "-.inf", ".NaN", "-.Inf"] {
            let outcome = validate_manifest(&format!(
                r#"stages:
  tasks: {{kind: dataset, source: arith}}
  base: {{kind: pretrain, from: micro, data: tasks}}
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {{accuracy: 1.0}}
    {field}: {value}
"#
            ));
            assert!(!outcome.success, "{field}: {value} validated");
            assert!(
                outcome.stderr.contains("not a finite number")
                    && outcome.stderr.contains("m.yaml:16:"),
                "{field}: {value}: {}",
                outcome.stderr
            );
        }
    }
    // Every other float field too: one rule where values are decoded.
    for (section, line) in [
        ("defaults:\n  learning_rate: .inf\n", 9),
        (
            "rewards:\n  acc: {kind: accuracy, correct_score: .nan}\n",
            9,
        ),
        ("rewards:\n  long: {kind: length, penalty: -.inf}\n", 9),
    ] {
        let outcome = validate_manifest(&format!(
            "{section}stages:\n  tasks: {{kind: dataset, source: arith}}\n"
        ));
        assert!(
            !outcome.success && outcome.stderr.contains(&format!("m.yaml:{line}:")),
            "{section}: {}",
            outcome.stderr
        );
    }
}

// --- 3. verifier processes never outlive their call -----------------------------------

#[test]
fn a_verifier_timeout_kills_its_whole_process_group() {
    let mark = mark();
    let test = verifier_project("hang.sh", 1.0, &two_sleepers_then_wait(&mark));
    let run = test.run_in_store().run_within(120);
    run.assert_failure_says("timed out");
    assert_eq!(
        children_started(&test, 2, Duration::from_secs(1)),
        2,
        "the verifier ran"
    );
    assert_all_dead(&mark);
}

#[test]
fn a_verifier_that_exits_leaving_a_child_holding_stdout_is_cleaned_up() {
    let mark = mark();
    let test = verifier_project("bg.sh", 20.0, &format!("#!/bin/sh\nsleep {mark} &\necho started >> started\nwhile read -r line; do echo 1.0; done\n"));
    let started = Instant::now();
    let run = test.run_in_store().run_within(120);
    run.assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "waited for the grandchild"
    );
    assert_eq!(
        children_started(&test, 1, Duration::from_secs(1)),
        1,
        "the verifier ran"
    );
    assert_all_dead(&mark);
}

#[test]
fn a_verifier_child_in_a_new_session_dies_with_its_call() {
    // `setsid` takes a child out of the verifier's process group; where bubblewrap can
    // make a PID namespace, the child dies with the verifier all the same — whether the
    // call ends normally or on its timeout.
    if r1flow::rewards::command::pid_namespace().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs bubblewrap: verifiers must run in a PID namespace there"
        );
        eprintln!("SKIPPED: bubblewrap cannot make a PID namespace here");
        return;
    }
    for (timeout, body) in [
        (20.0, "while read -r line; do echo 1.0; done"),
        (1.0, "sleep 1000"),
    ] {
        let mark = mark();
        let test = verifier_project(
            "escape.sh",
            timeout,
            &format!("#!/bin/sh\nsetsid sleep {mark} &\necho started >> started\n{body}\n"),
        );
        let run = test.run_in_store().run_within(120);
        assert_eq!(run.success, timeout > 1.0, "{}", run.stderr);
        assert_eq!(
            children_started(&test, 1, Duration::from_secs(1)),
            1,
            "the verifier ran"
        );
        assert_all_dead(&mark);
    }
}

/// Runs an eval whose verifier starts two long children, interrupts r1flow twice (`args`
/// added to `run`), and checks that no child outlives it. `started_within`: how long the
/// verifier may take to start; `pause`: between the two Ctrl-Cs; `exit_within`: how long
/// r1flow may take to exit after them.
fn ctrl_c_twice_leaves_no_verifier_child(
    args: &[&str],
    started_within: Duration,
    pause: Duration,
    exit_within: Duration,
) {
    let mark = mark();
    let test = verifier_project("hang.sh", 60.0, &two_sleepers_then_wait(&mark));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_r1flow"))
        .args(["run", "m.yaml", "--store", "store"])
        .args(args)
        .current_dir(test.path(""))
        .env_remove("R1FLOW_STORE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start r1flow");
    assert_eq!(
        children_started(&test, 2, started_within),
        2,
        "the verifier ran"
    );
    for _ in 0..2 {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        std::thread::sleep(pause);
    }
    let deadline = Instant::now() + exit_within;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_all_dead(&mark);
}

#[test]
fn ctrl_c_twice_during_a_verifier_leaves_no_process_behind() {
    ctrl_c_twice_leaves_no_verifier_child(
        &[],
        Duration::from_secs(60),
        Duration::from_millis(200),
        Duration::from_secs(10),
    );
}

#[test]
fn ctrl_c_twice_with_worker_processes_leaves_no_verifier_behind() {
    ctrl_c_twice_leaves_no_verifier_child(
        &["--jobs", "2"],
        Duration::from_secs(90),
        Duration::from_millis(700),
        Duration::from_secs(15),
    );
}

// --- 4. verifier output is bounded ----------------------------------------------------

#[test]
fn endless_verifier_output_fails_the_call() {
    let test = verifier_project("yes.sh", 60.0, "#!/bin/sh\nexec yes 1.0\n");
    let run = test.run_in_store().run_within(120);
    run.assert_failure_says("verifier wrote more than 1 MiB");
}

// --- 5. JSONL records have a size limit; errors quote an excerpt ----------------------

fn jsonl_project(data: impl AsRef<[u8]>) -> Test {
    Test::new().write("data.jsonl", data).write(
        "m.yaml",
        manifest(
            "  mine: {kind: jsonl, path: data.jsonl, format: prompts}\nstages:\n  tasks: {kind: dataset, source: mine}\n",
        ),
    )
}

#[test]
fn a_huge_jsonl_record_is_refused_at_validate() {
    let line = format!("{{\"prompt\": \"{}\"}}\n", "x".repeat(2 << 20));
    let outcome = validate(&jsonl_project(line));
    assert!(!outcome.success, "a 2 MiB record validated");
    outcome
        .assert_stderr_says("data.jsonl:1:")
        .assert_stderr_says("1 MiB");
    assert!(outcome.stderr.len() < 2000, "{}", outcome.stderr.len());

    // An invalid long line is quoted as an excerpt around the error, not whole.
    let line = format!("{{\"prompt\": \"{}\", oops}}\n", "y".repeat(20_000));
    let outcome = validate(&jsonl_project(line));
    outcome.assert_failure_says("data.jsonl:1:");
    assert!(outcome.stderr.len() < 2000, "{}", outcome.stderr);
}

#[test]
fn an_empty_jsonl_file_is_a_located_error() {
    let outcome = validate(&jsonl_project("\n\n"));
    assert!(!outcome.success, "an empty dataset validated");
    outcome
        .assert_stderr_says("no records")
        .assert_stderr_says("m.yaml:8:");
}

#[test]
fn dataset_files_must_stay_inside_the_project() {
    let outcome = validate_manifest(
        "  leak: {kind: jsonl, path: /etc/passwd, format: prompts}\nstages:\n  tasks: {kind: dataset, source: leak}\n"
    );
    assert!(!outcome.success);
    assert!(
        outcome.stderr.contains("outside the project") && !outcome.stderr.contains("root:"),
        "{}",
        outcome.stderr
    );
    // A data folder the project links to elsewhere is the project's own choice.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::write(elsewhere.path().join("d.jsonl"), "{\"prompt\": \"1+1\"}\n").expect("write");
    let test = Test::new().write(
        "m.yaml",
        manifest(
            "  mine: {kind: jsonl, path: data/d.jsonl, format: prompts}\nstages:\n  tasks: {kind: dataset, source: mine}\n",
        ),
    );
    std::os::unix::fs::symlink(elsewhere.path(), test.path("data")).expect("symlink");
    let outcome = validate(&test);
    outcome.assert_success();
}

// --- 6. readers never trust metadata, never block ------------------------------------

fn mkfifo(test: &Test, name: &str) {
    let status = std::process::Command::new("mkfifo")
        .arg(test.path(name))
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

#[test]
fn device_and_fifo_manifests_fail_fast() {
    let outcome = Test::new().args(["validate", "/dev/zero"]).run_within(20);
    outcome.assert_failure_says("not a regular file");
    let test = Test::new();
    mkfifo(&test, "m.yaml");
    let outcome = validate(&test);
    outcome.assert_failure_says("named pipe");
}

#[test]
fn named_files_that_are_not_regular_files_are_located_errors() {
    let test = Test::new().write(
        "m.yaml",
        manifest(
            r#"  mine: {kind: jsonl, path: data.jsonl, format: prompts}
  dir: {kind: jsonl, path: folder, format: prompts}
rewards:
  lang: {kind: language, detection: word_list, word_list: words.txt}
stages:
  tasks: {kind: dataset, source: mine}
  other: {kind: dataset, source: dir}
"#,
        ),
    );
    mkfifo(&test, "data.jsonl");
    mkfifo(&test, "words.txt");
    std::fs::create_dir_all(test.path("folder")).expect("mkdir");
    let outcome = validate(&test);
    assert!(!outcome.success);
    let stderr = &outcome.stderr;
    assert!(!stderr.contains("does not exist"), "{stderr}");
    assert!(
        stderr.contains("m.yaml:8:") && stderr.contains("is a named pipe"),
        "{stderr}"
    );
    assert!(
        stderr.contains("m.yaml:9:") && stderr.contains("is a directory"),
        "{stderr}"
    );
    assert!(stderr.contains("m.yaml:11:"), "{stderr}");
}

// --- 7. generated datasets have a size bound ------------------------------------------

#[test]
fn absurd_dataset_sizes_are_refused_at_validate() {
    for kind in [
        "{kind: arithmetic, num_samples: 18446744073709551615}",
        "{kind: countdown, num_samples: 18446744073709551615}",
    ] {
        let outcome = validate_manifest(&format!(
            "  huge: {kind}\nstages:\n  tasks: {{kind: dataset, source: huge}}\n"
        ));
        outcome
            .assert_failure_says("m.yaml:8:")
            .assert_stderr_says("at most 1000000");
    }
    // Samples per prompt are allocated at once: bounded too.
    for (stage, field) in [
        ("{kind: eval, from: base, prompts: tasks, num_samples: 18446744073709551615}", "num_samples"),
        ("{kind: rejection_sampling, from: base, prompts: tasks, num_samples: 100000, thresholds: {accuracy: 1.0}}", "num_samples"),
        ("{kind: grpo, from: base, prompts: tasks, rewards: {accuracy: 1.0}, num_generations: 100000, per_device_train_batch_size: 100000}", "num_generations"),
    ] {
        let outcome = validate_manifest(
            &format!(
                "stages:\n  tasks: {{kind: dataset, source: arith}}\n  base: {{kind: pretrain, from: micro, data: tasks}}\n  big: {stage}\n"
            )
        );
        assert!(
            !outcome.success
                && outcome.stderr.contains("m.yaml:11:")
                && outcome.stderr.contains(&format!("`{field}` must be at most 4096")),
            "{stage}: {}",
            outcome.stderr
        );
    }
}

// --- 8. generate stops at the model's context ----------------------------------------

#[test]
fn generate_refuses_to_run_past_the_context() {
    let outcome = Test::new()
        .args([
            "generate",
            "--model",
            "preset:tiny",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "100000",
        ])
        .run_within(60);
    outcome.assert_failure_says("max_position_embeddings");
}

// --- 9. export never mixes old and new files -----------------------------------------

#[test]
fn export_refuses_a_non_empty_directory_unless_forced() {
    let test = Test::new().write("out/stale.txt", "keep me");
    let outcome = test
        .clone_args(["export", "--model", "preset:tiny", "--out", "out"])
        .run_within(60);
    assert!(!outcome.success, "export wrote into a non-empty directory");
    outcome.assert_stderr_says("--force");
    assert!(test.path("out/stale.txt").is_file());
    assert!(!test.path("out/config.json").exists());

    // --force replaces only an earlier output of r1flow: someone's file stays.
    let forced = |out: &str| {
        test.clone_args(["export", "--model", "preset:tiny", "--out", out, "--force"])
            .run_within(60)
    };
    let outcome = forced("out");
    assert!(
        !outcome.success,
        "--force replaced a folder of someone's files"
    );
    assert!(test.path("out/stale.txt").is_file());
    std::fs::remove_file(test.path("out/stale.txt")).expect("remove");
    let outcome = forced("out");
    outcome.assert_success();
    assert!(test.path("out/config.json").is_file());
    let outcome = forced("out");
    assert!(
        outcome.success,
        "an earlier export is replaced: {}",
        outcome.stderr
    );
    // Even with --force, the current directory is never replaced.
    let outcome = test
        .clone_args(["export", "--model", "preset:tiny", "--out", ".", "--force"])
        .run_within(60);
    assert!(!outcome.success, "replaced the current directory");
    assert!(test.path("out/config.json").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(test.path(""))
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_export_stage_never_writes_into_a_foreign_directory() {
    let stages = |path: &str| {
        manifest(&format!(
            "stages:\n  tasks: {{kind: dataset, source: arith, test_size: 4}}\n  base: {{kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 1, per_device_train_batch_size: 4}}\n  hf: {{kind: export, from: base, path: {path}}}\n"
        ))
    };
    let test = Test::new()
        .write("m.yaml", stages("notes"))
        .write("notes/todo.txt", "mine");
    let run = test.run_in_store().run_within(120);
    run.assert_failure_says("not empty");
    assert_eq!(
        std::fs::read_to_string(test.path("notes/todo.txt"))
            .ok()
            .as_deref(),
        Some("mine")
    );
    assert!(!test.path("notes/config.json").exists());
}

// --- weaker cases ----------------------------------------------------------------------

#[test]
fn manifest_encoding_problems_are_located_with_hints() {
    // A UTF-8 byte-order mark is not a second document.
    let with_bom = format!(
        "\u{feff}{}",
        manifest("stages:\n  tasks: {kind: dataset, source: arith}\n")
    );
    let outcome = validate(&Test::new().write("m.yaml", with_bom));
    outcome.assert_success();

    // Tabs get a hint.
    let tabbed = manifest("stages:\n\ttasks: {kind: dataset, source: arith}\n");
    let outcome = validate(&Test::new().write("m.yaml", tabbed));
    outcome.assert_failure_says("indent with spaces");

    // Non-UTF-8 bytes are located as file:line:col.
    let mut bytes = b"name: x\nseed: 1\ndescription: caf".to_vec();
    bytes.extend([0xE9, b'\n']);
    let outcome = validate(&Test::new().write("m.yaml", bytes));
    outcome.assert_failure_says("m.yaml:3:17");
}

fn stored_project() -> Test {
    stored_run(
        "stages:\n  tasks: {kind: dataset, source: arith, test_size: 4}\n",
        60,
    )
}

/// A project whose store holds one finished run of `manifest(stages)`, which took less
/// than `seconds`.
fn stored_run(stages: &str, seconds: u64) -> Test {
    let test = Test::new().write("m.yaml", manifest(stages));
    test.run_in_store().run_within(seconds).assert_success();
    test
}

#[test]
fn a_foreign_directory_is_not_taken_for_a_store() {
    let test = Test::new()
        .write(
            "m.yaml",
            manifest("stages:\n  tasks: {kind: dataset, source: arith}\n"),
        )
        .write("photos/cat.jpg", "not a store");
    let outcome = test
        .clone_args(["run", "m.yaml", "--store", "photos"])
        .run_within(60);
    outcome.assert_failure_says("not an r1flow store");
    assert!(!test.path("photos/index").exists());
}

#[test]
fn a_damaged_index_is_reported_with_what_to_do() {
    // A damaged index file: sled's own complaint, located, without terminal colour codes.
    let test = stored_project();
    std::fs::write(test.path("store/index/conf"), "segment_size: 5").expect("damage conf");
    let outcome = test.runs_in_store().run_within(30);
    assert!(!outcome.success, "{}", outcome.stdout);
    assert!(
        outcome.stderr.contains("damaged")
            && outcome.stderr.contains("r1flow recover")
            && !outcome.stderr.contains('\u{1b}'),
        "{}",
        outcome.stderr
    );

    // Cut to nothing, or emptied: not silently a new store while its blobs are there.
    for damage in ["truncate", "empty"] {
        let test = stored_project();
        if damage == "truncate" {
            std::fs::write(test.path("store/index/db"), "").expect("truncate db");
        } else {
            std::fs::remove_dir_all(test.path("store/index")).expect("rm index");
            std::fs::create_dir(test.path("store/index")).expect("mkdir index");
        }
        let outcome = test.runs_in_store().run_within(30);
        assert!(!outcome.success, "{damage}: {}", outcome.stdout);
        assert!(
            outcome.stderr.contains("damaged"),
            "{damage}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn a_finished_stage_leaves_no_checkpoint_blobs() {
    let test = stored_run(
        "stages:\n  tasks: {kind: dataset, source: arith, test_size: 4}\n  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 3, per_device_train_batch_size: 4, save_steps: 1}\n",
        120,
    );
    let gc = test
        .clone_args(["gc", "--dry-run", "--store", "store"])
        .run_within(30);
    gc.assert_success()
        .assert_stdout_says("0 blob(s): 0 B freed");
}

/// What a command that writes the folder `out` whole (run by `run` with extra arguments,
/// after a first run wrote `out`) does to what it finds there: `stale`, a file an earlier
/// run left inside `out`, is gone after the next run; someone else's file is kept, the
/// command refusing, until `--force`.
fn replaces_its_own_output_whole(
    test: &Test,
    out: &str,
    stale: &str,
    run: impl Fn(&[&str]) -> Outcome,
) {
    let stale = test.path(&format!("{out}/{stale}"));
    std::fs::write(&stale, "stale").expect("write");
    assert!(run(&[]).success);
    assert!(!stale.exists(), "{out}: mixed with an earlier output");
    let notes = test.path(&format!("{out}/notes.txt"));
    std::fs::write(&notes, "mine").expect("write");
    run(&[]).assert_failure_says("--force");
    assert!(notes.is_file());
    assert!(run(&["--force"]).success);
    assert!(!notes.exists());
}

#[test]
fn report_and_compare_replace_their_own_output_whole() {
    let test = stored_project();
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "last", "--out", "rep", "--store", "store"];
        args.extend(extra);
        test.clone_args(args).run_within(60)
    };
    assert!(report(&[]).success);
    // An earlier report's plot that this one does not draw is not left behind.
    replaces_its_own_output_whole(&test, "rep", "plots/stale.svg", report);

    let test = stored_run(
        "stages:\n  tasks: {kind: dataset, source: arith, test_size: 4}\n  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 1, per_device_train_batch_size: 4}\n  eval: {kind: eval, from: base, prompts: tasks, num_samples: 1, limit: 2, max_completion_length: 4}\n",
        120,
    );
    let compare = |extra: &[&str]| {
        let mut args = vec!["compare", "m.yaml", "--plots", "cmp", "--store", "store"];
        args.extend(extra);
        test.clone_args(args).run_within(60)
    };
    let first = compare(&[]);
    first.assert_success();
    std::fs::create_dir_all(test.path("cmp")).expect("mkdir");
    replaces_its_own_output_whole(&test, "cmp", "stale.png", compare);
    // A folder of pictures is not earlier plots: it was not written by r1flow.
    let test = test.write("pics/cat.png", "a cat");
    let outcome = test
        .clone_args(["compare", "m.yaml", "--plots", "pics", "--store", "store"])
        .run_within(60);
    outcome.assert_failure_says("not written by r1flow");
    assert!(test.path("pics/cat.png").is_file());
}
