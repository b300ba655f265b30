//! Benchmark: wall time of a no-op re-run of a fully cached 10-stage manifest (check, plan,
//! open the store, verify every artifact, record the run), side by side with the floor it
//! cannot go below — checking and planning the same manifest without touching the store —
//! as a ratio. Run with `cargo bench --bench noop_rerun`.

use std::time::{Duration, Instant};

use r1flow::check::check_file;
use r1flow::exec::{execute, Cancel, InProcess, RunOptions};
use r1flow::plan::plan;
use r1flow::runners::Runners;
use r1flow::store::{LockMode, StageStatus, Store};

mod support;

use support::Quiet;

fn manifest() -> String {
    let mut text = String::from("name: bench\ndatasets:\n");
    for i in 0..10 {
        text.push_str(&format!(
            "  d{i}: {{kind: arithmetic, num_samples: 2000, max_digits: 3}}\n"
        ));
    }
    text.push_str("stages:\n");
    for i in 0..10 {
        text.push_str(&format!(
            "  s{i}: {{kind: dataset, source: d{i}, seed: {i}, test_size: 100}}\n"
        ));
    }
    text
}

fn mean(samples: &[Duration]) -> f64 {
    samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.yaml");
    std::fs::write(&path, manifest()).expect("write manifest");
    let store_dir = dir.path().join("runs");
    let cancel = Cancel::default();
    let options = RunOptions::default();

    let full_run = |expect: StageStatus| {
        let checked = check_file(&path, &r1flow::model::capabilities());
        assert!(!checked.has_errors());
        let plan = plan(checked.pipelines);
        let store = Store::open(&store_dir, LockMode::Fail).expect("store");
        let record = execute(
            &plan,
            &store,
            &path,
            &options,
            &mut InProcess::new(&Runners),
            &cancel,
            &mut Quiet,
        )
        .expect("run");
        assert!(
            record.stages.iter().all(|s| s.status == expect),
            "{:?}",
            record.stages.iter().map(|s| s.status).collect::<Vec<_>>()
        );
    };
    let started = Instant::now();
    full_run(StageStatus::Ran);
    println!(
        "first run (10 dataset stages, 2000 items each): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    const ROUNDS: usize = 20;
    let mut noop = Vec::with_capacity(ROUNDS);
    let mut floor = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        full_run(StageStatus::Cached);
        noop.push(t.elapsed());
        let t = Instant::now();
        let checked = check_file(&path, &r1flow::model::capabilities());
        let _ = plan(checked.pipelines);
        floor.push(t.elapsed());
    }
    let mut open = Vec::with_capacity(ROUNDS);
    let mut verify = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let store = Store::open(&store_dir, LockMode::Fail).expect("store");
        open.push(t.elapsed());
        let t = Instant::now();
        for artifact in store.artifacts().expect("artifacts") {
            store.verify_artifact(&artifact).expect("intact");
        }
        verify.push(t.elapsed());
    }
    println!(
        "  of which opening the store: {:.2} ms; verifying every blob: {:.2} ms",
        mean(&open),
        mean(&verify)
    );
    let (noop_ms, floor_ms) = (mean(&noop), mean(&floor));
    println!(
        "no-op re-run (check + plan + store + verify + record): {noop_ms:.2} ms mean over {ROUNDS}"
    );
    println!(
        "floor (check + plan only):                            {floor_ms:.2} ms mean over {ROUNDS}"
    );
    println!("ratio no-op / floor: {:.1}x", noop_ms / floor_ms);
}
