//! Errors that named the wrong cause, now named: a `--store` that is a file, a `rescore`
//! of a stage the run does not have, and `generate`/`export` reading `RUN/STAGE` from the
//! store `--store` names.

use super::trained_project;
use crate::support::Test;

#[test]
fn a_store_path_that_is_a_file_says_so() {
    let test = Test::new()
        .write("m.yaml", super::training_manifest(1))
        .write("runs.txt", "notes");
    for args in [
        vec!["run", "m.yaml", "--store", "runs.txt"],
        vec!["runs", "--store", "runs.txt"],
    ] {
        let outcome = test.clone_args(args.clone()).run_within(60);
        assert!(!outcome.success, "{args:?}");
        assert!(
            outcome
                .stderr
                .contains("runs.txt is a file, not a store directory"),
            "{args:?}: {}",
            outcome.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(test.path("runs.txt")).expect("read"),
        "notes"
    );
}

#[test]
fn rescore_names_the_stages_a_run_has() {
    let test = trained_project();
    let outcome = test
        .clone_args([
            "rescore", "last", "evl", "--reward", "accuracy", "--store", "store",
        ])
        .run_within(60);
    outcome
        .assert_failure_says("has no stage `evl`")
        .assert_stderr_says("did you mean `eval`?");
}

#[test]
fn generate_and_export_read_a_stored_model_from_the_store_given() {
    let test = trained_project();
    let generate = test
        .clone_args([
            "generate",
            "--model",
            "last/base",
            "--prompt",
            "1 + 1 =",
            "--max-new-tokens",
            "3",
            "--store",
            "store",
        ])
        .run_within(60);
    generate
        .assert_success()
        .assert_stdout_says("--- prompt 0, sample 0");
    let export = test
        .clone_args([
            "export",
            "--model",
            "last/base",
            "--out",
            "hf",
            "--store",
            "store",
        ])
        .run_within(60);
    export.assert_success();
    assert!(test.path("hf/config.json").is_file());
    let missing = test
        .clone_args([
            "export",
            "--model",
            "last/nope",
            "--out",
            "hf2",
            "--store",
            "store",
        ])
        .run_within(60);
    missing.assert_failure_says("its stages: tasks, base, eval");
}
