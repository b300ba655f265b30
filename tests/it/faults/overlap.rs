//! Outputs that would overlap what r1flow does not own: nothing is written inside a
//! store, with or without `--force`, and `--force` replaces only a directory r1flow wrote
//! (its `.r1flow-output` marker), never a folder of someone's files or a git work tree.

use super::trained_project;
use crate::support::Test;

/// Asserts that the commands that replace a folder (`export` and `report` with
/// `--force`) refuse to write `out`, saying `reason`.
fn assert_forced_writes_refused(test: &Test, out: &str, reason: &str) {
    for command in [
        vec!["export", "--model", "preset:tiny", "--out", out, "--force"],
        vec![
            "report", "last", "--store", "store", "--out", out, "--force",
        ],
    ] {
        let outcome = test.clone_args(command.clone()).run_within(60);
        assert!(!outcome.success, "{command:?} wrote {out}");
        assert!(
            outcome.stderr.contains(reason),
            "{command:?}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn no_output_is_written_inside_a_store_even_forced() {
    let test = trained_project();
    let runs_before = test.runs_in_store().run_within(30).stdout;
    for out in [
        "store/index",
        "store/blobs",
        "store/new",
        "store/blobs/../index/x",
    ] {
        assert_forced_writes_refused(&test, out, "inside the r1flow store");
    }
    let runs_after = test.runs_in_store().run_within(30);
    runs_after.assert_success();
    assert_eq!(runs_after.stdout, runs_before, "the store changed");
    assert!(!test.path("store/new").exists());
}

#[test]
fn force_replaces_only_what_r1flow_wrote() {
    let test = trained_project()
        .write("photos/cat.jpg", "mine")
        .write("repo/.git/HEAD", "ref: refs/heads/main\n")
        .write("repo/src/lib.rs", "// mine\n");
    // A folder of someone's files, and a folder inside a git work tree.
    for out in ["photos", "repo/src"] {
        assert_forced_writes_refused(&test, out, "was not written by r1flow");
    }
    assert!(test.path("photos/cat.jpg").is_file());
    assert!(test.path("repo/src/lib.rs").is_file());

    // An earlier output of r1flow is replaced whole with --force.
    let export = |force: bool| {
        let mut args = vec!["export", "--model", "preset:tiny", "--out", "model"];
        if force {
            args.push("--force");
        }
        test.clone_args(args).run_within(60)
    };
    assert!(export(false).success);
    std::fs::write(test.path("model/notes.txt"), "added later").expect("write");
    let again = export(false);
    again.assert_failure_says("--force");
    let forced = export(true);
    forced.assert_success();
    assert!(test.path("model/config.json").is_file());
    assert!(!test.path("model/notes.txt").exists(), "replaced whole");
}
