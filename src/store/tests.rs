//! Store: unit tests of blobs, locking, records and gc.

use std::collections::BTreeMap;

use chrono::Utc;

use super::*;

fn artifact(store: &Store, key: &str, content: &[u8]) -> ArtifactRecord {
    let blob = store.blobs().put(content).expect("put");
    ArtifactRecord {
        key: key.into(),
        kind: "dataset".into(),
        stage: "data".into(),
        outputs: BTreeMap::from([("train.jsonl".to_string(), blob)]),
        metrics: BTreeMap::new(),
        created: Utc::now(),
        duration_s: 0.0,
        run: "r1".into(),
        produced: None,
    }
}

fn run_record(id: &str, keys: &[&str], minutes: i64) -> RunRecord {
    RunRecord {
        id: id.into(),
        manifest: "m.yaml".into(),
        pipeline: "p".into(),
        started: Utc::now() + chrono::Duration::minutes(minutes),
        finished: None,
        status: RunStatus::Succeeded,
        pid: 1,
        stages: keys
            .iter()
            .map(|k| StageRun {
                status: StageStatus::Ran,
                ..StageRun::pending("s".into(), "dataset".into(), vec![], (*k).into())
            })
            .collect(),
    }
}

#[test]
fn blobs_are_content_addressed_and_verified_on_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), LockMode::Fail).expect("open");
    let blob = store.blobs().put(b"hello").expect("put");
    assert_eq!(blob.hash, blake3::hash(b"hello").to_hex().to_string());
    assert_eq!(store.blobs().put(b"hello").expect("put again"), blob);
    assert_eq!(store.blobs().read(&blob).expect("read"), b"hello");
    std::fs::write(store.blobs().path(&blob.hash), b"hellO").expect("corrupt it");
    let error = store
        .blobs()
        .read(&blob)
        .expect_err("corruption is detected");
    assert!(error.is_corruption(), "{error}");
    // Writing the same content again repairs the blob.
    store.blobs().put(b"hello").expect("repair");
    assert_eq!(store.blobs().read(&blob).expect("read"), b"hello");
}

#[test]
fn a_second_opener_is_refused_with_the_holder_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path(), LockMode::Fail).expect("open");
    let error = Store::open(dir.path(), LockMode::Fail).expect_err("locked");
    let message = error.to_string();
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
}

#[test]
fn records_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = {
        let store = Store::open(dir.path(), LockMode::Fail).expect("open");
        let record = artifact(&store, "k1", b"data");
        store.commit_artifact(&record).expect("commit");
        store
            .log_metrics(
                &"k1".into(),
                &MetricPoint {
                    step: 1,
                    values: BTreeMap::from([("loss".into(), 2.0)]),
                },
            )
            .expect("log");
        store
            .log_metrics(
                &"k1".into(),
                &MetricPoint {
                    step: 2,
                    values: BTreeMap::from([("loss".into(), 1.5)]),
                },
            )
            .expect("log");
        record
    };
    let store = Store::open(dir.path(), LockMode::Fail).expect("reopen");
    assert_eq!(
        store.took_over_from(),
        None,
        "a clean close leaves no stale holder"
    );
    assert_eq!(store.artifact(&"k1".into()).expect("read"), Some(record));
    assert_eq!(store.metrics(&"k1".into()).expect("metrics").len(), 2);
    store.truncate_metrics(&"k1".into(), 1).expect("truncate");
    assert_eq!(
        store
            .metrics(&"k1".into())
            .expect("metrics")
            .iter()
            .map(|p| p.step)
            .collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn a_metric_that_is_not_a_number_reads_back_as_nan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), LockMode::Fail).expect("open");
    let point = MetricPoint {
        step: 3,
        values: BTreeMap::from([("loss".into(), 0.5), ("reward/general".into(), f64::NAN)]),
    };
    store.log_metrics(&"k".into(), &point).expect("log");
    let read = store
        .metrics(&"k".into())
        .expect("a NaN does not make the series unreadable");
    assert_eq!(read[0].values["loss"], 0.5);
    assert!(read[0].values["reward/general"].is_nan());

    let mut run = run_record("r1", &["k"], 0);
    run.stages[0]
        .metrics
        .insert("eval_accuracy".into(), f64::NAN);
    store.save_run(&run).expect("save");
    let read = store
        .run("r1")
        .expect("a NaN does not make the run unreadable");
    assert!(read.stages[0].metrics["eval_accuracy"].is_nan());
}

#[test]
fn gc_keeps_what_kept_runs_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), LockMode::Fail).expect("open");
    let old = artifact(&store, "old", b"old bytes");
    let new = artifact(&store, "new", b"new bytes!");
    store.commit_artifact(&old).expect("commit");
    store.commit_artifact(&new).expect("commit");
    store.blobs().put(b"orphan").expect("orphan");
    store
        .save_run(&run_record("a", &["old"], 0))
        .expect("run a");
    store
        .save_run(&run_record("b", &["new"], 1))
        .expect("run b");

    let dry = store.gc(Some(1), true).expect("dry run");
    assert_eq!(
        (
            dry.runs_removed.len(),
            dry.artifacts_removed,
            dry.blobs_removed
        ),
        (1, 1, 2)
    );
    assert_eq!(dry.bytes_freed, 9 + 6);
    assert!(
        store.artifact(&"old".into()).expect("read").is_some(),
        "a dry run removes nothing"
    );

    let report = store.gc(Some(1), false).expect("gc");
    assert_eq!(report.bytes_freed, 15);
    assert!(store.artifact(&"old".into()).expect("read").is_none());
    assert_eq!(store.runs().expect("runs").len(), 1);
    store
        .verify_artifact(&new)
        .expect("what the kept run reaches is intact");
}

#[test]
fn non_finite_numbers_in_records_read_back_as_nan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), LockMode::Fail).expect("open");
    let mut record = artifact(&store, "k", b"data");
    record.metrics = BTreeMap::from([
        ("loss".to_string(), f64::NAN),
        ("reward/v".to_string(), f64::INFINITY),
        ("steps".to_string(), 3.0),
    ]);
    record.duration_s = f64::NEG_INFINITY;
    store.commit_artifact(&record).expect("commit");
    let mut run = run_record("r1", &["k"], 0);
    run.stages[0].metrics = record.metrics.clone();
    run.stages[0].duration_s = f64::NAN;
    store.save_run(&run).expect("save run");

    let read = store
        .artifact(&"k".into())
        .expect("readable")
        .expect("stored");
    assert!(read.metrics["loss"].is_nan() && read.metrics["reward/v"].is_nan());
    assert_eq!(read.metrics["steps"], 3.0);
    assert!(read.duration_s.is_nan());
    let runs = store.runs().expect("readable");
    assert!(runs[0].stages[0].metrics["loss"].is_nan());
    assert!(store.artifacts().is_ok() && store.gc(None, true).is_ok());
}

#[test]
fn a_replaced_or_finished_checkpoint_leaves_no_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), LockMode::Fail).expect("open");
    let checkpoint = |step: u64, content: &[u8]| CheckpointRecord {
        key: "k".into(),
        step,
        files: BTreeMap::from([(
            "weights".to_string(),
            store.blobs().put(content).expect("put"),
        )]),
        written: Utc::now(),
    };
    let first = checkpoint(1, b"step one");
    store.save_checkpoint(&first).expect("save");
    store
        .save_checkpoint(&checkpoint(2, b"step two"))
        .expect("save");
    assert!(
        store.blobs().read(&first.files["weights"]).is_err(),
        "replaced"
    );
    // A checkpoint blob that the finished artifact also names stays.
    let record = artifact(&store, "k", b"step two");
    store.commit_artifact(&record).expect("commit");
    assert!(store.checkpoint(&"k".into()).expect("read").is_none());
    assert_eq!(store.blobs().list().expect("list").len(), 1);
}
