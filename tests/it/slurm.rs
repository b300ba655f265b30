//! `run --executor slurm` against a real single-node Slurm cluster (scripts/slurm/start.sh;
//! `.ci/run` starts one and sets `R1FLOW_REQUIRE_SLURM=1`, so that there these tests
//! cannot be skipped): the same bits as a local run with one job per stage, faults named
//! with Slurm's state and the job's log, a cancelled job reported as cancelled, a job
//! killed mid-stage resumed from its checkpoint, a killed coordinator re-attaching to
//! its running job, and a job pending on a node drained for real shown with Slurm's reason.
//!
//! The tests share the cluster's one node: each holds a shared lock on a file beside the
//! cluster (across test processes too), and the test that drains the node holds it
//! exclusively, so that no other test's jobs wait on the drained node.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{last_run_json, output_hashes, Test};

/// A short pipeline: data, a pretraining long enough to be watched and interrupted
/// (`STEPS` steps, a checkpoint every 100), an eval.
fn manifest(steps: u32) -> String {
    format!(
        r#"
name: slurm-test
seed: 3
defaults:
  max_prompt_length: 32
  max_completion_length: 8
models:
  micro: {{preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}}
datasets:
  arith: {{kind: arithmetic, num_samples: 100, operations: [add], max_digits: 1}}
stages:
  tasks: {{kind: dataset, source: arith, template: {{user: "Q: {{question}}\nA: <think>"}}, test_size: 10}}
  base:
    kind: pretrain
    from: micro
    data: tasks
    max_seq_length: 48
    max_steps: {steps}
    per_device_train_batch_size: 4
    save_steps: 100
    logging_steps: 10
    resources: {{cpus: 1, mem: 1G, time: "10"}}
  eval: {{kind: eval, from: base, prompts: tasks, num_samples: 2, k: [1, 2], limit: 4}}
"#
    )
}

/// A hold on the cluster for one test: shared by the tests that only submit jobs,
/// exclusive for one that changes the node (released when dropped).
struct ClusterHold {
    _file: std::fs::File,
}

/// The lock file the cluster's tests hold.
fn hold(exclusive: bool) -> ClusterHold {
    let path = std::env::temp_dir().join("r1flow-slurm-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("the cluster's test lock file");
    if exclusive {
        file.lock().expect("lock the cluster");
    } else {
        file.lock_shared().expect("lock the cluster, shared");
    }
    ClusterHold { _file: file }
}

/// Whether this machine has a Slurm cluster to test against — then a shared hold on it;
/// with `R1FLOW_REQUIRE_SLURM=1` its absence is a failure.
fn cluster() -> Option<ClusterHold> {
    cluster_held(false)
}

fn cluster_held(exclusive: bool) -> Option<ClusterHold> {
    // Taken first: a node another test drained is resumed before its hold ends.
    let held = hold(exclusive);
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mixed", "allocated", "completing"].contains(&l.trim()))
        });
    if !up {
        assert!(
            std::env::var("R1FLOW_REQUIRE_SLURM").as_deref() != Ok("1"),
            "R1FLOW_REQUIRE_SLURM=1 but no Slurm node is up: run scripts/slurm/start.sh"
        );
        eprintln!("no Slurm cluster here (scripts/slurm/start.sh starts one): skipped");
    }
    up.then_some(held)
}

/// The Slurm job ids the run record names (`slurm job 12 …`).
fn job_ids(run: &serde_json::Value) -> Vec<String> {
    run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["job"].as_str())
        .filter_map(|j| j.strip_prefix("slurm job "))
        .map(|j| j.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn squeue_state(job: &str) -> Option<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", job, "-o", "%T"])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `r1flow run m.yaml --store store --executor slurm` in `test`'s directory.
fn on_slurm(test: &Test) -> Test {
    test.clone_args(["run", "m.yaml", "--store", "store", "--executor", "slurm"])
}

/// Starts the run on Slurm in the background (its output in `log`) and waits until
/// `base`'s job runs: the coordinator, and the job's id.
fn start_on_slurm(test: &Test, log: &str) -> (std::process::Child, String) {
    let coordinator = on_slurm(test).spawn(log);
    let job = running_job(test, "base", Duration::from_secs(120));
    (coordinator, job)
}

/// A run whose `base` trains for long enough (100 000 steps) to be acted on while it
/// runs, started on Slurm: its project, its coordinator and `base`'s job.
fn long_run_on_slurm() -> (Test, std::process::Child, String) {
    let test = Test::new().write("m.yaml", manifest(100_000));
    let (coordinator, job) = start_on_slurm(&test, "run.log");
    (test, coordinator, job)
}

/// The outputs of an uninterrupted local run of `manifest(steps)`: the bits a Slurm run
/// must have.
fn local_hashes(steps: u32) -> Vec<String> {
    let local = Test::new().write("m.yaml", manifest(steps));
    output_hashes(&local.run_recorded())
}

/// Waits until `test`'s store says stage `stage` runs as a Slurm job that Slurm lists as
/// RUNNING, and has logged a metric point; that job's id.
fn running_job(test: &Test, stage: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < limit, "stage {stage} never ran");
        let shown = test
            .clone_args(["runs", "show", "last", "--json", "--store", "store"])
            .run();
        if shown.success {
            if let Ok(run) = serde_json::from_str::<serde_json::Value>(&shown.stdout) {
                let found = run["stages"].as_array().and_then(|stages| {
                    stages.iter().find(|s| {
                        s["name"] == stage && s["status"] == "running" && s["latest"].is_object()
                    })
                });
                if let Some(job) = found.and_then(|s| s["job"].as_str()) {
                    if let Some(id) = job.strip_prefix("slurm job ") {
                        let id = id.split_whitespace().next().unwrap_or("").to_string();
                        if squeue_state(&id).as_deref() == Some("RUNNING") {
                            return id;
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_slurm_run_has_the_local_bits_and_one_job_per_stage() {
    let Some(_cluster) = cluster() else {
        return;
    };
    let expected = local_hashes(40);

    let test = Test::new().write("m.yaml", manifest(40));
    let outcome = on_slurm(&test).run();
    outcome.assert_success();
    let run = last_run_json(&test);
    assert_eq!(output_hashes(&run), expected);
    let jobs = job_ids(&run);
    assert_eq!(jobs.len(), 3, "one job per stage: {run}");
    for job in &jobs {
        assert_eq!(squeue_state(job).as_deref(), Some("COMPLETED"), "job {job}");
    }
    // Each stage records where it was produced.
    assert!(
        run["stages"][1]["produced"]["device"].as_str().is_some(),
        "{run}"
    );
    // A re-run submits nothing: every stage is cached.
    let again = on_slurm(&test).run();
    assert!(
        again.success && again.stderr.contains("0 ran, 3 cached"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_job_that_dies_fails_its_stage_with_slurm_state_and_log_and_then_resumes() {
    let Some(_cluster) = cluster() else {
        return;
    };
    let test = Test::new().write("m.yaml", manifest(300));
    // The worker aborts (as a kill -9 would stop it) right after its first checkpoint.
    let failed = on_slurm(&test)
        .env("R1FLOW_FAILPOINT", "after-checkpoint")
        .run();
    assert!(!failed.success);
    let run = last_run_json(&test);
    let base = &run["stages"][1];
    assert_eq!(base["status"], "failed", "{run}");
    let error = base["error"].as_str().unwrap_or("");
    assert!(
        error.contains("Slurm state FAILED") && error.contains("last lines of"),
        "{error}"
    );
    assert!(
        error.contains("r1flow exec-stage: stage `base`"),
        "the log tail: {error}"
    );
    assert_eq!(
        run["stages"][2]["status"], "skipped",
        "eval depends on base"
    );

    let plan = test.plan_in_store().run();
    // The checkpoint the job wrote is in the store.
    plan.assert_stdout_line_says(&["base", "resume@100"]);
    let resumed = on_slurm(&test).run();
    resumed
        .assert_success()
        .assert_stderr_says("resuming from step 100");

    assert_eq!(
        output_hashes(&last_run_json(&test)),
        local_hashes(300),
        "resumed from the job's checkpoint, the bits are an uninterrupted run's"
    );
}

#[test]
fn a_cancelled_job_is_reported_as_cancelled() {
    let Some(_cluster) = cluster() else {
        return;
    };
    let (test, mut coordinator, job) = long_run_on_slurm();
    let scancel = Command::new("scancel").arg(&job).status().expect("scancel");
    assert!(scancel.success());
    let status = coordinator.wait().expect("the coordinator ends");
    assert!(!status.success());
    let run = last_run_json(&test);
    let error = run["stages"][1]["error"].as_str().unwrap_or("");
    assert_eq!(run["stages"][1]["status"], "failed", "{run}");
    assert!(
        error.contains("cancelled") && error.contains("CANCELLED"),
        "{error}"
    );
}

#[test]
fn a_restarted_coordinator_reattaches_to_its_running_job() {
    let Some(_cluster) = cluster() else {
        return;
    };
    let steps = 2_500;
    let test = Test::new().write("m.yaml", manifest(steps));
    let (mut first, job) = start_on_slurm(&test, "first.log");
    // The live view from another terminal, while the job runs.
    let shown = test
        .clone_args(["runs", "show", "last", "--store", "store"])
        .run();
    shown
        .assert_success()
        .assert_stdout_says("(live:")
        .assert_stdout_says(format!("slurm job {job}"));
    // The coordinator dies; its job goes on.
    first.kill().expect("kill the coordinator");
    let _ = first.wait();
    assert_eq!(squeue_state(&job).as_deref(), Some("RUNNING"));

    let second = on_slurm(&test).run();
    second
        .assert_success()
        .assert_stderr_says(format!("slurm job {job} (re-attached)"));
    let run = last_run_json(&test);
    let jobs = job_ids(&run);
    assert_eq!(jobs.len(), 2, "base's re-attached job and eval's: {run}");
    assert_eq!(
        jobs[0], job,
        "base ran as the one job it was submitted as: {run}"
    );

    assert_eq!(output_hashes(&run), local_hashes(steps));
}

#[test]
fn ctrl_c_makes_running_jobs_checkpoint_and_the_run_resumable() {
    let Some(_cluster) = cluster() else {
        return;
    };
    let (test, mut coordinator, job) = long_run_on_slurm();
    let interrupted = Command::new("kill")
        .args(["-INT", &coordinator.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let status = coordinator.wait().expect("the coordinator ends");
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    let run = last_run_json(&test);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["stages"][1]["status"], "interrupted", "{run}");
    // The job was signalled, not cancelled: it checkpointed and ended.
    assert_eq!(squeue_state(&job).as_deref(), Some("COMPLETED"));
    let plan = test.plan_in_store().run();
    plan.assert_stdout_line_says(&["base", "resume@"]);
}

/// The cluster's node drained (`scontrol update … state=drain`) for as long as it lives:
/// resumed when dropped — when the test ends, and when it fails part-way, since a panic
/// unwinds through it (a test process killed outright leaves it drained, which
/// scripts/slurm/start.sh resumes).
struct DrainedNode {
    name: String,
}

impl DrainedNode {
    fn drain(name: &str, reason: &str) -> Self {
        let drained = Command::new("scontrol")
            .args(["update", &format!("nodename={name}"), "state=drain"])
            .arg(format!("reason={reason}"))
            .status()
            .expect("scontrol");
        assert!(drained.success(), "could not drain node {name}");
        Self {
            name: name.to_string(),
        }
    }

    fn state(&self) -> String {
        Command::new("sinfo")
            .args(["-h", "-N", "-n", &self.name, "-o", "%T"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for DrainedNode {
    fn drop(&mut self) {
        let _ = Command::new("scontrol")
            .args(["update", &format!("nodename={}", self.name), "state=resume"])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && self.state().starts_with("drain") {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A coordinator stopped when dropped (left running by a failing test): interrupted as
/// Ctrl-C would, so that it cancels its jobs, then killed if it lingers.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_job_pending_on_a_drained_node_shows_slurms_reason() {
    let Some(_cluster) = cluster_held(true) else {
        return;
    };
    let node = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .expect("sinfo");
    assert!(!node.is_empty(), "the cluster names no node");
    let drained = DrainedNode::drain(&node, "r1flow test: drained on purpose");
    assert!(drained.state().starts_with("drain"), "{}", drained.state());

    let test = Test::new().write("m.yaml", manifest(20));
    let mut coordinator = Killed(on_slurm(&test).spawn("run.log"));
    // What `runs show` says of the dataset stage's job while the node is drained.
    let started = Instant::now();
    let shown = loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the pending job was never shown with its reason: {}",
            std::fs::read_to_string(test.path("run.log")).unwrap_or_default()
        );
        let show = test
            .clone_args(["runs", "show", "last", "--json", "--store", "store"])
            .run();
        let job = serde_json::from_str::<serde_json::Value>(&show.stdout)
            .ok()
            .and_then(|run| run["stages"][0]["job"].as_str().map(str::to_string));
        if let Some(job) = job.filter(|j| j.contains("(pending: ")) {
            break job;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    // Slurm's reason, in its words or by its code (the same job shows both, as its
    // scheduler passes over it), then what r1flow makes of it.
    assert!(
        shown.starts_with("slurm job ")
            && (shown.contains("(pending: Nodes required for job are DOWN, DRAINED")
                || shown.contains("(pending: ReqNodeNotAvail"))
            && shown.ends_with("— a node it needs is drained or down; `sinfo -R` says why)"),
        "{shown}"
    );
    let log = std::fs::read_to_string(test.path("run.log")).unwrap_or_default();
    assert!(
        log.contains("(pending: ") && log.contains("`sinfo -R` says why"),
        "the run's own lines: {log}"
    );

    // Resumed, the node takes the job and the run finishes.
    drop(drained);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = coordinator.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish once the node resumed"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(test.path("run.log")).unwrap_or_default()
    );
    assert_eq!(last_run_json(&test)["status"], "succeeded");
}
