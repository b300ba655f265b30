//! Closed pipes and signals: a run whose stderr closes (`r1flow run … 2>&1 | head -c 1`,
//! a dropped ssh session, a killed `tee`) stops as on Ctrl-C once it next writes a line —
//! between stages, or at the next step with a checkpoint — exits with 141 and releases the
//! store — a log that cannot be written, on a full disk, too; SIGTERM still works; a read
//! command whose reader stops reading ends quietly.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::training_manifest;
use crate::support::{last_run_json, output_hashes, Test};

fn r1flow(test: &Test, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_r1flow"));
    command
        .args(args)
        .current_dir(test.path(""))
        .env_remove("R1FLOW_STORE")
        .env_remove("RUST_LOG");
    command
}

/// Starts `r1flow run m.yaml --store store` with its stderr a pipe this test reads (and
/// closes).
fn start_run_reading_its_stderr(test: &Test) -> std::process::Child {
    r1flow(test, &["run", "m.yaml", "--store", "store"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start r1flow")
}

/// Waits for `child` at most `seconds`; its exit code (`None`: killed by a signal).
fn wait_within(child: &mut std::process::Child, seconds: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("r1flow did not exit within {seconds}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_stderr_stops_a_run_and_releases_the_store() {
    let test = Test::new().write("m.yaml", training_manifest(30));
    let mut child = start_run_reading_its_stderr(&test);
    // Read until the training stage has started, then close the pipe, as `head` does.
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("base (pretrain)") {
        if stderr.read(&mut byte).expect("read") == 0 {
            break;
        }
        seen.push(byte[0]);
    }
    drop(stderr);
    let code = wait_within(&mut child, 120);
    assert_eq!(code, Some(141), "a closed stderr must end the run with 141");

    // The store is released and the run is resumable to the uninterrupted bytes.
    let run = last_run_json(&test);
    assert_eq!(run["status"], "interrupted", "{run}");
    let resumed = test.run_in_store().run_within(300);
    resumed.assert_success();
    let reference = Test::new().write("m.yaml", training_manifest(30));
    let whole = reference.run_in_store().run_within(300);
    whole.assert_success();
    assert_eq!(
        output_hashes(&last_run_json(&test)),
        output_hashes(&last_run_json(&reference))
    );
}

#[test]
fn sigterm_stops_a_run_whose_stderr_is_closed() {
    let test = Test::new().write("m.yaml", training_manifest(100_000));
    let mut child = start_run_reading_its_stderr(&test);
    let mut stderr = child.stderr.take().expect("stderr");
    let mut first = [0u8; 1];
    stderr.read_exact(&mut first).expect("a first byte");
    drop(stderr);
    std::thread::sleep(Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let code = wait_within(&mut child, 60);
    assert!(code.is_some(), "ended by a signal, not by its handler");
    let runs = test.runs_in_store().run_within(30);
    assert!(runs.success, "the store is still held: {}", runs.stderr);
}

#[test]
fn a_reader_that_stops_reading_ends_a_read_command_quietly() {
    let test = Test::new().write("m.yaml", training_manifest(1));
    let run = test.run_in_store().run_within(120);
    run.assert_success();
    for args in [
        vec!["schema"],
        vec!["plan", "m.yaml", "--store", "store"],
        vec!["runs", "show", "last", "--store", "store"],
    ] {
        let mut child = r1flow(&test, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start r1flow");
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        let code = wait_within(&mut child, 60);
        assert!(code.is_some(), "{args:?} was killed by a signal");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A log that cannot be written — stderr to a file on a full disk; `/dev/full` fails
/// every write with ENOSPC — is a closed stderr: the run stops with 141 and releases the
/// store. tracing-subscriber used to report the failed log line with `eprintln!`, which
/// panicked on the same stderr and took the run down with 101.
#[test]
fn a_log_on_a_full_disk_stops_a_run_as_a_closed_stderr_does() {
    let test = Test::new().write("m.yaml", training_manifest(1));
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = r1flow(&test, &["run", "m.yaml", "--store", "store"])
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .expect("start r1flow");
    let code = wait_within(&mut child, 120);
    assert_eq!(
        code,
        Some(141),
        "a log that cannot be written must end the run with 141"
    );
    let runs = test.runs_in_store().run_within(30);
    assert!(runs.success, "the store is still held: {}", runs.stderr);
}
