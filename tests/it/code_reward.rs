//! The `code` reward through the real binary: `validate` refuses a sandboxed one where
//! `bwrap` is missing, and pipelines/code-grpo.yaml (shrunk to CI size) runs its
//! completions' programs in the sandbox and logs the reward. The hostile programs are
//! crates/core/src/rewards/code_tests.rs's.

use std::path::PathBuf;

use crate::support::{metric_series, repo_root, shipped_pipeline_with, Test, MICRO_MODEL};

const MANIFEST: &str = r#"
name: code
models:
  tiny: {preset: tiny}
datasets:
  arith: {kind: arithmetic}
  problems: {kind: jsonl, path: problems.jsonl, format: prompts}
rewards:
  code: {kind: code}
  trusted: {kind: code, sandbox: none}
stages:
  corpus: {kind: dataset, source: arith}
  tasks: {kind: dataset, source: problems, test_size: 1}
  base: {kind: pretrain, from: tiny, data: corpus, max_steps: 1}
  rl: {kind: grpo, from: base, prompts: tasks, rewards: {code: 1.0, trusted: 1.0}, max_steps: 1}
"#;

const PROBLEMS: &str = "{\"prompt\": \"Write double(x).\", \"tests\": [\"assert double(2) == 4\"], \"entry_point\": \"double\"}\n{\"prompt\": \"Write triple(x).\", \"tests\": \"def check(candidate):\\n    assert candidate(1) == 3\\n\", \"entry_point\": \"triple\"}\n";

/// `name` found on the test's own PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[test]
fn validate_refuses_a_sandboxed_code_reward_where_bwrap_is_missing() {
    let test = Test::new()
        .write("m.yaml", MANIFEST)
        .write("problems.jsonl", PROBLEMS);
    let empty = test.path("no-tools");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let empty = empty.display().to_string();
    let outcome = test
        .clone_args(["validate", "m.yaml"])
        .env("PATH", &empty)
        .run();
    assert!(!outcome.success, "{}", outcome.stderr);
    insta::assert_snapshot!(outcome.stderr, @r"
    error: reward `code`: the code sandbox does not work here: `bwrap` (bubblewrap) is not on PATH
     --> m.yaml:9:3
      |
    9 |   code: {kind: code}
      |   ^^^^
      = help: install bubblewrap (Debian and Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`), or, only for code you trust, run it unsandboxed with `sandbox: none`

    1 error
    ");
    // Only the sandboxed reward is refused: `sandbox: none` asks for nothing.
    let unsandboxed = MANIFEST
        .replace("  code: {kind: code}\n", "")
        .replace("code: 1.0, ", "");
    let outcome = Test::new()
        .write("m.yaml", unsandboxed)
        .write("problems.jsonl", PROBLEMS)
        .args(["validate", "m.yaml"])
        .env("PATH", &empty)
        .run();
    outcome.assert_success();
}

/// Whether the sandbox works on this machine (`validate` tries it); says so when not.
fn sandbox_works() -> bool {
    let outcome = Test::in_dir(&repo_root().join("pipelines"))
        .args(["validate", "code-grpo.yaml"])
        .run();
    if outcome.success {
        return true;
    }
    outcome.assert_stderr_says("the code sandbox does not work here");
    eprintln!(
        "SKIPPED (did not run): the bwrap sandbox does not work on this machine:\n{}",
        outcome.stderr
    );
    false
}

/// pipelines/code-grpo.yaml with a micro model and few steps: enough training that the
/// model opens a ```python block, so that its completions' programs run.
fn ci_sized() -> String {
    shipped_pipeline_with(
        "code-grpo.yaml",
        &[
            MICRO_MODEL,
            ("    max_seq_length: 256\n", "    max_seq_length: 128\n"),
            ("    learning_rate: 3.0e-3\n", "    learning_rate: 5.0e-3\n"),
            ("    max_steps: 300\n", "    max_steps: 150\n"),
            ("    max_steps: 20\n", "    max_steps: 2\n"),
            ("    beta: 0.0\n", "    beta: 0.0\n    temperature: 0.2\n"),
        ],
    )
}

#[test]
fn the_code_pipeline_runs_its_programs_in_the_sandbox() {
    if !sandbox_works() {
        return;
    }
    let data = std::fs::read(repo_root().join("pipelines/data/code-problems.jsonl")).expect("data");
    let bwrap = on_path("bwrap").expect("bwrap, which validate found");
    // A bwrap that notes each run of the reward's harness, then is bwrap.
    let shim = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *r1flow-harness*) echo run >> \"$(dirname \"$0\")/runs.log\";; esac; done\nexec {} \"$@\"\n",
        bwrap.display()
    );
    let test = Test::new()
        .write("m.yaml", ci_sized())
        .write("data/code-problems.jsonl", data)
        .write("shim/bwrap", shim);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            test.path("shim/bwrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    let path = format!(
        "{}:{}",
        test.path("shim").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let outcome = test.run_in_store().env("PATH", &path).run();
    outcome.assert_success();

    let series = metric_series(&test, "rl");
    assert_eq!(series.len(), 2, "one point per GRPO step");
    for point in &series {
        let values = &point["values"];
        let code = values["reward/code"]
            .as_f64()
            .expect("reward/code is logged");
        assert!((0.0..=1.0).contains(&code), "{values}");
        // Every problem has tests: no completion is skipped.
        assert_eq!(
            values["reward/code/skipped"].as_f64(),
            Some(0.0),
            "{values}"
        );
    }
    let runs = std::fs::read_to_string(test.path("shim/runs.log")).unwrap_or_default();
    assert!(
        runs.lines().count() > 0,
        "no completion's program ran in the sandbox"
    );
}
