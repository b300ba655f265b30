//! Benchmarks (shared by the benchmark programs, above exec and store): run a manifest's
//! text in process without terminal output, and read a stage's per-step metrics with the
//! warm-up step left out.

// Each benchmark program compiles this module and uses part of it.
#![allow(dead_code)]

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use r1flow::check::check_document;
use r1flow::diag::{render_all, SourceFile};
use r1flow::exec::{execute, Cancel, InProcess, Progress, Reporter, RunOptions};
use r1flow::plan::{plan, StageSpec};
use r1flow::runners::Runners;
use r1flow::store::{LockMode, MetricPoint, StageRun, Store};
use r1flow::syntax::parse;

/// A reporter that prints nothing but warnings.
pub(crate) struct Quiet;

impl Progress for Quiet {
    fn update(&mut self, _step: u64, _total: u64, _message: &str) {}
}

impl Reporter for Quiet {
    fn stage_started(&mut self, _: usize, _: usize, _: &StageSpec, _: Option<u64>) {}
    fn progress(&mut self) -> &mut dyn Progress {
        self
    }
    fn stage_finished(&mut self, _: &StageRun) {}
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// What a stage of a benchmark run logged.
pub(crate) struct StageMetrics {
    /// Per-step metrics, the first (warm-up) step left out.
    pub(crate) steady: Vec<MetricPoint>,
    /// Wall time of the whole run, in seconds.
    pub(crate) run_s: f64,
}

impl StageMetrics {
    /// Mean of `name` over the steady steps; `None` when no step logged it.
    pub(crate) fn mean(&self, name: &str) -> Option<f64> {
        let values: Vec<f64> = self
            .steady
            .iter()
            .filter_map(|p| p.values.get(name).copied())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Checks and runs `manifest` (written as `dir/bench.yaml`, its store in `dir/runs`) and
/// returns what stage `stage` logged; a stage that failed is an error.
pub(crate) fn run_stage(
    dir: &Path,
    manifest: String,
    stage: &str,
) -> Result<StageMetrics, Box<dyn Error>> {
    let path = dir.join("bench.yaml");
    let doc = parse(SourceFile::new(&path, manifest)).map_err(|d| render_all(&d))?;
    let checked = check_document(&doc, &r1flow::model::capabilities());
    if checked.has_errors() {
        return Err(render_all(&checked.diagnostics).into());
    }
    let store = Store::open(&dir.join("runs"), LockMode::Fail)?;
    let clock = Instant::now();
    let record = execute(
        &plan(checked.pipelines),
        &store,
        &path,
        &RunOptions::default(),
        &mut InProcess::new(&Runners),
        &Cancel::default(),
        &mut Quiet,
    )?;
    let run_s = clock.elapsed().as_secs_f64();
    let run = record
        .stages
        .iter()
        .find(|s| s.name == stage)
        .ok_or_else(|| format!("the run has no `{stage}` stage"))?;
    if let Some(error) = &run.error {
        return Err(error.clone().into());
    }
    let mut points = store.metrics(&run.key)?;
    let steady = points.split_off(1.min(points.len()));
    Ok(StageMetrics { steady, run_s })
}
