//! Builds and runs a small pipeline through the library API, without the CLI: check a
//! manifest held in a string, plan it, open a store, execute, and read the results back.
//!
//! `cargo run --example library_pipeline` (the integration tests run it too).

use std::path::Path;

use r1flow::check::check_document;
use r1flow::diag::{render_all, SourceFile};
use r1flow::exec::{execute, Cancel, InProcess, Progress, Reporter, RunOptions};
use r1flow::plan::plan;
use r1flow::plan::StageSpec;
use r1flow::records::{from_jsonl, DatasetRecord};
use r1flow::runners::Runners;
use r1flow::store::{LockMode, StageRun, Store};
use r1flow::syntax::parse;

const MANIFEST: &str = r#"
name: library-example
seed: 7
datasets:
  countdown: {kind: countdown, num_samples: 200, min_numbers: 3, max_numbers: 3, max_value: 20}
stages:
  tasks: {kind: dataset, source: countdown, test_size: 20}
"#;

/// Prints each stage as it finishes.
struct Printer;

impl Progress for Printer {
    fn update(&mut self, _step: u64, _total: u64, _message: &str) {}
}

struct Lines(Printer);

impl Reporter for Lines {
    fn stage_started(
        &mut self,
        index: usize,
        total: usize,
        spec: &StageSpec,
        _resume: Option<u64>,
    ) {
        println!("[{index}/{total}] {} ({})", spec.name, spec.config.kind());
    }
    fn progress(&mut self) -> &mut dyn Progress {
        &mut self.0
    }
    fn stage_finished(&mut self, stage: &StageRun) {
        println!("  {}: {:?}", stage.name, stage.status);
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Runs the example pipeline with its store in `dir`; returns the first test prompt.
pub fn run(dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let manifest = dir.join("example.yaml");
    let doc = parse(SourceFile::new(&manifest, MANIFEST)).map_err(|d| render_all(&d))?;
    let checked = check_document(&doc, &r1flow::model::capabilities());
    if checked.has_errors() {
        return Err(render_all(&checked.diagnostics).into());
    }
    let plan = plan(checked.pipelines);
    let store = Store::open(&dir.join("runs"), LockMode::Fail)?;
    let record = execute(
        &plan,
        &store,
        &manifest,
        &RunOptions::default(),
        &mut InProcess::new(&Runners),
        &Cancel::default(),
        &mut Lines(Printer),
    )?;
    let tasks = record
        .stages
        .iter()
        .find(|s| s.name == "tasks")
        .ok_or("no tasks stage")?;
    let test_split = tasks.outputs.get("test.jsonl").ok_or("no test split")?;
    let records: Vec<DatasetRecord> = from_jsonl(&store.blobs().read(test_split)?)?;
    println!(
        "{} test prompts; the first: {}",
        records.len(),
        records[0].question
    );
    Ok(records[0].question.clone())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("r1flow-example-{}", std::process::id()));
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ())
}
