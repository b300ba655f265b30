//! The store under faults: a half-written file from an interrupted write, an index cut
//! short or with bytes altered, a seal altered, and a disk that fills up at any point of a
//! run — sled's own log appends included. Each ends in a working store with nothing lost, or in a "damaged" error whose
//! recovery command is run and checked — never in a store that silently reads older.

use std::path::Path;

use super::{trained_project, training_manifest};
use crate::support::{last_run_json, output_hashes, Outcome, Test};

/// What a store shows of its last run: status and every output's hash.
fn last_run_state(test: &Test) -> (String, Vec<String>) {
    let run = last_run_json(test);
    (
        run["status"].as_str().unwrap_or("").to_string(),
        output_hashes(&run),
    )
}

/// What a run that met no fault leaves: what every faulted run must end with once the
/// fault is gone.
fn trained_state() -> (String, Vec<String>) {
    last_run_state(&trained_project())
}

#[test]
fn a_half_written_sled_snapshot_is_cleaned_on_open() {
    // A full disk while sled writes its snapshot leaves a 0-byte `snap.*.generating`,
    // which sled would read as its newest snapshot and call corrupt.
    let test = trained_project();
    let before = last_run_state(&test);
    let stale = test.path("store/index/snap.00000000FFFFFFFF.generating");
    std::fs::write(&stale, "").expect("stale snapshot");
    std::fs::write(test.path("store/snapshot/.index.snap.999999"), "half").expect("stale");
    let runs = test.runs_in_store().run_within(30);
    runs.assert_success();
    assert!(!stale.exists(), "the half-written file is left");
    assert!(!test.path("store/snapshot/.index.snap.999999").exists());
    assert_eq!(last_run_state(&test), before);
}

/// Cuts `file` to `fraction` of its length.
fn cut(file: &Path, fraction: f64) {
    let len = std::fs::metadata(file).expect("size").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open");
    file.set_len((len as f64 * fraction) as u64).expect("cut");
}

/// Inverts 64 bytes of `file` from `fraction` of its length on.
fn alter(file: &Path, fraction: f64) {
    let mut bytes = std::fs::read(file).expect("read");
    let at = (bytes.len() as f64 * fraction) as usize;
    let end = (at + 64).min(bytes.len());
    for byte in &mut bytes[at..end] {
        *byte = !*byte;
    }
    std::fs::write(file, bytes).expect("write");
}

#[test]
fn a_cut_or_altered_index_is_damaged_and_recovered_never_read_as_older() {
    let expected = trained_state();
    assert_eq!(expected.0, "succeeded");
    let damages: [(&str, f64); 6] = [
        ("cut", 0.3),
        ("cut", 0.7),
        ("cut", 0.95),
        ("alter", 0.2),
        ("alter", 0.5),
        ("alter", 0.85),
    ];
    let mut damaged_seen = 0;
    for (damage, fraction) in damages {
        let test = trained_project();
        let db = test.path("store/index/db");
        if damage == "cut" {
            cut(&db, fraction);
        } else {
            alter(&db, fraction);
        }
        let what = format!("{damage} at {fraction}");
        let runs = test
            .clone_args(["runs", "show", "last", "--json", "--store", "store"])
            .run_within(30);
        if runs.success {
            // Damage sled never reads (a dead region of its log) may leave every record
            // intact; what may never happen is an older store read as if whole.
            assert_eq!(last_run_state(&test), expected, "{what}: read back older");
            continue;
        }
        damaged_seen += 1;
        assert!(
            runs.stderr.contains("damaged") && runs.stderr.contains("r1flow recover"),
            "{what}: {}",
            runs.stderr
        );
        assert!(!runs.stderr.contains("panicked"), "{what}: {}", runs.stderr);
        let recover = test
            .clone_args(["recover", "--store", "store"])
            .run_within(60);
        assert!(recover.success, "{what}: {}", recover.stderr);
        assert!(
            recover.stderr.contains("rebuilt the index") && recover.stderr.contains("kept as"),
            "{what}: {}",
            recover.stderr
        );
        // The damaged index is kept aside, the store works, and running the pipeline
        // again gives the uninterrupted run's bytes.
        let kept = std::fs::read_dir(test.path("store"))
            .expect("list")
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("index.damaged-")
            });
        assert!(kept, "{what}: the damaged index was not kept");
        let again = test.run_in_store().run_within(120);
        assert!(again.success, "{what}: {}", again.stderr);
        assert_eq!(last_run_state(&test), expected, "{what}");
    }
    assert!(
        damaged_seen >= 3,
        "only {damaged_seen} damages were noticed"
    );
}

#[test]
fn an_altered_seal_is_damage_and_recover_reseals() {
    let test = trained_project();
    let expected = last_run_state(&test);
    let seal = test.path("store/index.seal");
    let text = std::fs::read_to_string(&seal).expect("a store has a seal");
    std::fs::write(&seal, &text[..text.len() / 2]).expect("alter the seal");
    let runs = test.runs_in_store().run_within(30);
    runs.assert_failure_says("seal")
        .assert_stderr_says("r1flow recover");
    let recover = test
        .clone_args(["recover", "--store", "store"])
        .run_within(60);
    recover.assert_success();
    assert_eq!(last_run_state(&test), expected);
}

#[test]
fn an_index_that_lost_commits_is_rebuilt_from_the_last_runs_snapshot() {
    // The index is rolled back to an older copy (as sled's recovery does with a log cut
    // after a commit): the seal notices, and the snapshot the run left restores it all.
    let test = Test::new().write("m.yaml", training_manifest(2));
    let first = test
        .clone_args(["run", "m.yaml", "--store", "store", "--until", "tasks"])
        .run_within(120);
    first.assert_success();
    copy_dir(&test.path("store/index"), &test.path("older-index"));
    let second = test.run_in_store().run_within(120);
    second.assert_success();
    let expected = last_run_state(&test);
    std::fs::remove_dir_all(test.path("store/index")).expect("remove index");
    copy_dir(&test.path("older-index"), &test.path("store/index"));

    let runs = test.runs_in_store().run_within(30);
    runs.assert_failure_says("commits its seal records");
    let recover = test
        .clone_args(["recover", "--store", "store"])
        .run_within(60);
    recover
        .assert_success()
        .assert_stderr_says("the snapshot the last run left")
        .assert_stderr_says("nothing was lost");
    assert_eq!(last_run_state(&test), expected);
    let plan = test.plan_in_store().run_within(60);
    assert!(
        plan.success && plan.stdout.matches(" cached ").count() == 3,
        "every stage should be cached: {}",
        plan.stdout
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// A tmpfs of `bytes` mounted for the length of a test (unmounted when dropped).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where this process may not mount (not root, or no mount namespace rights).
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }

    /// A small disk of 48 MiB; `None`, with a SKIPPED line naming `what` did not run,
    /// where this process may not mount one (outside CI: CI runs as root and must).
    fn mount_or_skip(what: &str) -> Option<Self> {
        let disk = Self::mount(48 << 20);
        if disk.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs for this test"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root); {what} did not run");
        }
        disk
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk until `free` bytes are left (within a page).
    fn fill_leaving(&self, free: u64) {
        let filler = self.path().join("filler");
        let _ = std::fs::remove_file(&filler);
        let available = available_bytes(self.path());
        let size = available.saturating_sub(free);
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![1u8; 1 << 16];
        let mut written = 0;
        while written < size {
            let n = chunk.len().min((size - written) as usize);
            use std::io::Write as _;
            if file.write_all(&chunk[..n]).is_err() {
                break;
            }
            written += n as u64;
        }
    }

    fn free_space(&self) {
        let _ = std::fs::remove_file(self.path().join("filler"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

fn available_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the available bytes")
}

#[test]
fn a_full_disk_at_any_point_of_a_run_loses_nothing() {
    // A real full disk (a small tmpfs), filled so that space runs out at a different
    // point of the run each time: creating the store, its lock, the index and its seal,
    // blobs, checkpoints, the live snapshot. Each run must end (no hang, no panic); once
    // space is freed the store must open and a run must finish with the bytes of a run
    // that never met a full disk.
    let Some(disk) = SmallDisk::mount_or_skip("the full-disk test") else {
        return;
    };
    let reference = trained_project();
    let expected = last_run_state(&reference);
    let store_size = dir_size(&reference.path("store"));
    // From nothing to well past the store's size (sled's log takes more room while it
    // runs than the store keeps), in steps small enough to stop between any two writes
    // of different kinds.
    let mut levels: Vec<u64> = vec![0, 4 << 10, 16 << 10, 64 << 10];
    levels.extend((1..=12).map(|k| store_size * k / 6));
    let mut first_success: Option<u64> = None;
    let mut index = 0;
    while let Some(&free) = levels.get(index) {
        index += 1;
        let project = disk.path().join("project");
        let _ = std::fs::remove_dir_all(&project);
        disk.free_space();
        let test = Test::in_dir(&project).write("m.yaml", training_manifest(3));
        disk.fill_leaving(free);
        let full = test.run_in_store().run_within(120);
        let when = format!("{free} bytes free");
        assert_ended_without_hang_or_panic(&full, &when);
        // Where the disk ran out, for the log: the run's last line.
        eprintln!(
            "{free} bytes free: {}",
            full.stderr.lines().last().unwrap_or("")
        );
        disk.free_space();
        assert_a_new_run_finishes(&test, &expected, &when, &full);
        let _ = std::fs::remove_dir_all(&project);
        if full.success && first_success.is_none() {
            // The last writes of a run (the eval's blobs, the index's commits, its seal,
            // the final snapshot) lie just below the least room a run needs: try every
            // page below it too.
            first_success = Some(free);
            levels.extend((1..=16).map(|pages| free.saturating_sub(pages * 4096)));
        }
    }
    assert!(
        first_success.is_some(),
        "no run succeeded on the small disk"
    );
}

/// Asserts that a run on a full disk (`when` says how full) ended by itself.
fn assert_ended_without_hang_or_panic(full: &Outcome, when: &str) {
    assert!(
        !full.stderr.contains("TIMED OUT") && !full.stderr.contains("panicked"),
        "{when}: {}",
        full.stderr
    );
}

/// Asserts that, with space freed after the `full` run (`when` says how full the disk
/// was), a new run finishes with `expected`: the state of a run that met no full disk.
fn assert_a_new_run_finishes(
    test: &Test,
    expected: &(String, Vec<String>),
    when: &str,
    full: &Outcome,
) {
    let again = test.run_in_store().run_within(120);
    assert!(
        again.success,
        "{when}, then space freed: {}\n(the full run said: {})",
        again.stderr, full.stderr
    );
    assert_eq!(&last_run_state(test), expected, "{when}");
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// What a run printed when sled's own log append met the full disk: sled's I/O error,
/// passed up from the index's commit.
fn sled_log_append_failed(stderr: &str) -> bool {
    stderr.contains("store index error: IO error") && stderr.contains("No space left on device")
}

#[test]
fn a_full_disk_at_sleds_own_log_append_loses_nothing() {
    // The fill levels above stop a run at whichever write first needs a page: blobs, the
    // seal and the snapshot, which are written whole, always came before sled's log,
    // whose commits are small appends into pages it already holds. Here the disk is made
    // full just before each commit of a run in turn (R1FLOW_FAILPOINT=fill-disk-at-commit:
    // a filler file grown until the kernel refuses a byte), so that sled's own append of
    // that commit, or the seal after it, meets a real ENOSPC. Each run must end with an
    // error (no hang, no panic); with space freed the store must open — or be reported
    // damaged and recovered by `r1flow recover` — and a run must finish with the bytes of
    // one that never met a full disk.
    let Some(disk) = SmallDisk::mount_or_skip("the sled ENOSPC test") else {
        return;
    };
    let expected = trained_state();
    let filler = disk.path().join("filler");
    let mut sled_failures = Vec::new();
    let mut damaged = 0;
    let mut commit = 0;
    let finished = loop {
        commit += 1;
        assert!(commit <= 64, "the run never finished past its commits");
        let project = disk.path().join("project");
        let _ = std::fs::remove_dir_all(&project);
        let _ = std::fs::remove_file(&filler);
        let test = Test::in_dir(&project)
            .write("m.yaml", training_manifest(3))
            .args(["run", "m.yaml", "--store", "store"])
            .env("R1FLOW_FAILPOINT", "fill-disk-at-commit")
            .env("R1FLOW_FAILPOINT_COMMIT", &commit.to_string())
            .env("R1FLOW_FAILPOINT_FILLER", &filler.display().to_string());
        let full = test.run_within(120);
        let at = format!("disk full at commit {commit}");
        assert_ended_without_hang_or_panic(&full, &at);
        let _ = std::fs::remove_file(&filler);
        if full.success {
            // Past the run's last commit: the hook never fired.
            break commit;
        }
        if sled_log_append_failed(&full.stderr) {
            sled_failures.push(commit);
        } else {
            assert!(
                full.stderr.contains("No space left on device"),
                "{at}: another error than the full disk: {}",
                full.stderr
            );
        }
        let runs = test
            .clone_args(["runs", "show", "last", "--json", "--store", "store"])
            .run_within(30);
        if !runs.success {
            damaged += 1;
            assert!(
                runs.stderr.contains("damaged") && runs.stderr.contains("r1flow recover"),
                "{at}: {}",
                runs.stderr
            );
            let recover = test
                .clone_args(["recover", "--store", "store"])
                .run_within(60);
            assert!(recover.success, "{at}: {}", recover.stderr);
        }
        assert_a_new_run_finishes(&test, &expected, &at, &full);
        let _ = std::fs::remove_dir_all(&project);
    };
    eprintln!(
        "{} commits; sled's log append failed at commits {sled_failures:?}; {damaged} \
         stores reported damaged and recovered",
        finished - 1
    );
    // Not vacuous: sled's own append met the full disk, more than once.
    assert!(
        sled_failures.len() >= 2,
        "sled's log append failed at commits {sled_failures:?} only"
    );
}
