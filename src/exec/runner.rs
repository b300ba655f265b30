//! Execute: the local executor — runs a plan's stage instances in order, reusing every
//! artifact already in the store, resuming an interrupted stage from its checkpoint, and
//! recording the run. Stages run one at a time: on the CPU a training stage already uses
//! every core, and the order keeps output readable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use chrono::Utc;

use super::context::{Cancel, Progress, StageContext, StageError, StageOutput};
use crate::check::suggest;
use crate::plan::{InputSpec, Plan, StageSpec};
use crate::store::{
    ArtifactRecord, HistoryRecord, RunRecord, RunStatus, StageRun, StageStatus, Store, StoreError,
};

/// Which stage instances to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only these stages (their inputs must be in the store).
    pub only: Vec<String>,
    /// Run these stages and everything they depend on, nothing after.
    pub until: Vec<String>,
    /// Run these stages even when their artifact is in the store.
    pub force: Vec<String>,
}

/// Why a run could not start or went wrong outside any stage.
#[derive(Debug)]
pub enum ExecError {
    /// A stage name given on the command line is not in the plan.
    UnknownStage {
        option: &'static str,
        name: String,
        help: String,
    },
    /// `--only` a stage whose inputs are not in the store.
    MissingInput {
        stage: String,
        input: String,
    },
    Store(StoreError),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownStage { option, name, help } => write!(f, "{option} {name}: no such stage ({help})"),
            Self::MissingInput { stage, input } => write!(
                f,
                "--only {stage}: its input `{input}` is not in the store; run without --only (or with --until {stage}) first"
            ),
            Self::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ExecError {}

impl From<StoreError> for ExecError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Runs one stage instance: the implementation of each stage kind, registered by kind
/// (`crate::runners::Runners`). The executor decides what runs; the runner does the work.
pub trait StageRunner {
    fn run(&self, context: &mut StageContext<'_>) -> Result<StageOutput, StageError>;
}

/// Hears about a run as it goes (the CLI prints; tests collect).
pub trait Reporter {
    fn stage_started(
        &mut self,
        index: usize,
        total: usize,
        spec: &StageSpec,
        resume_step: Option<u64>,
    );
    /// The progress sink for the stage that just started.
    fn progress(&mut self) -> &mut dyn Progress;
    fn stage_finished(&mut self, stage: &StageRun);
    fn warn(&mut self, message: &str);
}

/// A run identifier: start time and pid, sortable.
fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id() & 0xffff
    )
}

/// Names of the plan's stage instances selected by the options, as plan indices.
fn select(plan: &Plan, options: &RunOptions) -> Result<BTreeSet<usize>, ExecError> {
    let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
    let check = |option: &'static str, wanted: &[String]| -> Result<(), ExecError> {
        for name in wanted {
            if !names.contains(&name.as_str()) {
                return Err(ExecError::UnknownStage {
                    option,
                    name: name.clone(),
                    help: suggest::help_for(name, &names, "stage"),
                });
            }
        }
        Ok(())
    };
    check("--only", &options.only)?;
    check("--until", &options.until)?;
    check("--force", &options.force)?;
    let mut selected: BTreeSet<usize> = (0..plan.stages.len()).collect();
    if !options.until.is_empty() {
        let mut wanted: BTreeSet<usize> = BTreeSet::new();
        let mut frontier: Vec<usize> = (0..plan.stages.len())
            .filter(|i| options.until.contains(&plan.stages[*i].name))
            .collect();
        while let Some(i) = frontier.pop() {
            if wanted.insert(i) {
                for input in &plan.stages[i].inputs {
                    if let Some(j) = plan.stages.iter().position(|s| s.key == input.key) {
                        frontier.push(j);
                    }
                }
            }
        }
        selected = wanted;
    }
    if !options.only.is_empty() {
        selected.retain(|i| options.only.contains(&plan.stages[*i].name));
    }
    Ok(selected)
}

/// Runs `plan` against `store`; returns the run record (also saved in the store).
pub fn execute(
    plan: &Plan,
    store: &Store,
    manifest: &Path,
    options: &RunOptions,
    runner: &dyn StageRunner,
    cancel: &Cancel,
    reporter: &mut dyn Reporter,
) -> Result<RunRecord, ExecError> {
    let selected = select(plan, options)?;
    let pipeline_of = |variants: &[String]| {
        plan.pipelines
            .iter()
            .find(|p| variants.contains(&p.variant.name))
            .or(plan.pipelines.first())
    };
    let specs: Vec<StageSpec> = plan
        .stages
        .iter()
        .filter_map(|s| Some(StageSpec::from_plan(s, pipeline_of(&s.variants)?)))
        .collect();

    // Pre-flight: with --only, every input must be in the store or selected too.
    for (i, spec) in specs.iter().enumerate() {
        if !selected.contains(&i) {
            continue;
        }
        if !options.only.is_empty() {
            for (field, input) in &spec.inputs {
                if let InputSpec::Artifact { key, .. } = input {
                    let upstream_selected = specs
                        .iter()
                        .position(|s| &s.key == key)
                        .is_some_and(|j| selected.contains(&j));
                    if !upstream_selected && store.artifact(key)?.is_none() {
                        return Err(ExecError::MissingInput {
                            stage: spec.name.clone(),
                            input: field.clone(),
                        });
                    }
                }
            }
        }
    }

    // A run still marked running was stopped by a crash or kill (we hold the lock now).
    for mut stale in store
        .runs()?
        .into_iter()
        .filter(|r| r.status == RunStatus::Running)
    {
        stale.status = RunStatus::Interrupted;
        store.save_run(&stale)?;
    }

    let mut run = RunRecord {
        id: new_run_id(),
        manifest: manifest.to_path_buf(),
        pipeline: plan.name.clone(),
        started: Utc::now(),
        finished: None,
        status: RunStatus::Running,
        pid: std::process::id(),
        stages: specs
            .iter()
            .map(|s| StageRun {
                name: s.name.clone(),
                kind: s.config.kind().to_string(),
                variants: s.variants.clone(),
                key: s.key.clone(),
                status: StageStatus::Pending,
                duration_s: 0.0,
                outputs: BTreeMap::new(),
                metrics: BTreeMap::new(),
                resumed_from_step: None,
                error: None,
            })
            .collect(),
    };
    store.save_run(&run)?;

    for spec in &specs {
        store.save_spec(&spec.key, spec)?;
    }
    // A store error part-way (a disk gone, an unreadable record) ends the run: it is
    // recorded as failed, with the error on the stage it stopped, so that no run stays
    // `running` for ever.
    let mut current: Option<usize> = None;
    let outcome = (|| -> Result<(), ExecError> {
        let total = selected.len();
        let mut position = 0;
        let mut unavailable: BTreeSet<String> = BTreeSet::new();
        for (i, spec) in specs.iter().enumerate() {
            if !selected.contains(&i) || run.status != RunStatus::Running {
                run.stages[i].status = StageStatus::Skipped;
                if store.artifact(&spec.key)?.is_none() {
                    unavailable.insert(spec.key.clone());
                }
                continue;
            }
            position += 1;
            current = Some(i);
            if let Some(blocked) = spec.upstream_keys().find(|k| unavailable.contains(*k)) {
                run.stages[i].status = StageStatus::Skipped;
                run.stages[i].error = Some(format!(
                    "input {} is not available",
                    &blocked[..12.min(blocked.len())]
                ));
                unavailable.insert(spec.key.clone());
                reporter.stage_finished(&run.stages[i]);
                continue;
            }
            let outcome = run_one(
                store,
                spec,
                runner,
                options.force.contains(&spec.name),
                cancel,
                reporter,
                position,
                total,
                &run.id,
            )?;
            run.stages[i] = StageRun {
                name: spec.name.clone(),
                kind: spec.config.kind().to_string(),
                variants: spec.variants.clone(),
                key: spec.key.clone(),
                ..outcome
            };
            match run.stages[i].status {
                StageStatus::Cached | StageStatus::Ran | StageStatus::Resumed => {
                    record_history(store, plan, i, spec)?;
                }
                StageStatus::Interrupted => {
                    run.status = RunStatus::Interrupted;
                    unavailable.insert(spec.key.clone());
                }
                _ => {
                    run.status = RunStatus::Failed;
                    unavailable.insert(spec.key.clone());
                }
            }
            reporter.stage_finished(&run.stages[i]);
            // A cached stage changes nothing worth a flush; the record is saved at the end.
            if run.stages[i].status != StageStatus::Cached {
                store.save_run(&run)?;
            }
        }
        Ok(())
    })();
    if let Err(error) = outcome {
        run.status = RunStatus::Failed;
        if let Some(stage) = current.and_then(|i| run.stages.get_mut(i)) {
            stage.status = StageStatus::Failed;
            stage.error = Some(error.to_string());
        }
        run.finished = Some(Utc::now());
        let _ = store.save_run(&run);
        return Err(error);
    }
    if run.status == RunStatus::Running {
        run.status = RunStatus::Succeeded;
    }
    run.finished = Some(Utc::now());
    store.save_run(&run)?;
    Ok(run)
}

/// Remembers which key each variant's stage name last had, to explain future misses.
fn record_history(
    store: &Store,
    plan: &Plan,
    index: usize,
    spec: &StageSpec,
) -> Result<(), StoreError> {
    let planned = &plan.stages[index];
    let record = HistoryRecord {
        key: spec.key.clone(),
        material: planned.key_material.material(),
        at: Utc::now(),
    };
    for variant in &spec.variants {
        store.record_history(&spec.pipeline, variant, &spec.name, &record)?;
    }
    Ok(())
}

/// Reuses or runs one stage instance.
#[allow(clippy::too_many_arguments)]
fn run_one(
    store: &Store,
    spec: &StageSpec,
    runner: &dyn StageRunner,
    force: bool,
    cancel: &Cancel,
    reporter: &mut dyn Reporter,
    position: usize,
    total: usize,
    run_id: &str,
) -> Result<StageRun, ExecError> {
    let blank = StageRun {
        name: String::new(),
        kind: String::new(),
        variants: Vec::new(),
        key: String::new(),
        status: StageStatus::Pending,
        duration_s: 0.0,
        outputs: BTreeMap::new(),
        metrics: BTreeMap::new(),
        resumed_from_step: None,
        error: None,
    };
    if let Some(artifact) = store.artifact(&spec.key)? {
        if !force {
            match store.verify_artifact(&artifact) {
                Ok(()) => {
                    tracing::info!(stage = %spec.name, key = %spec.key, "cached: reusing the stored artifact");
                    return Ok(StageRun {
                        status: StageStatus::Cached,
                        outputs: artifact.outputs,
                        metrics: artifact.metrics,
                        ..blank
                    });
                }
                Err(error) if error.is_corruption() => {
                    reporter.warn(&format!(
                        "stage `{}`: stored artifact is damaged ({error}); recomputing it",
                        spec.name
                    ));
                    for blob in artifact.outputs.values() {
                        if store.blobs().verify(blob).is_err() {
                            store.blobs().remove(&blob.hash)?;
                        }
                    }
                    store.remove_artifact(&spec.key)?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    let resume = store.checkpoint(&spec.key)?;
    if let Some(checkpoint) = &resume {
        store.truncate_metrics(&spec.key, checkpoint.step)?;
    }
    let resume_step = resume.as_ref().map(|c| c.step);
    tracing::info!(stage = %spec.name, kind = spec.config.kind(), key = %spec.key, resume_step, "running");
    reporter.stage_started(position, total, spec, resume_step);
    let started = Instant::now();
    let result = {
        let progress = reporter.progress();
        let mut context = StageContext::new(store, spec, cancel, progress, resume);
        runner.run(&mut context)
    };
    let duration_s = started.elapsed().as_secs_f64();
    tracing::info!(stage = %spec.name, duration_s, ok = result.is_ok(), "finished");
    match result {
        Ok(output) => {
            let mut outputs = BTreeMap::new();
            for (name, bytes) in &output.files {
                outputs.insert(name.clone(), store.blobs().put(bytes)?);
            }
            let record = ArtifactRecord {
                key: spec.key.clone(),
                kind: spec.config.kind().to_string(),
                stage: spec.name.clone(),
                outputs: outputs.clone(),
                metrics: output.metrics.clone(),
                created: Utc::now(),
                duration_s,
                run: run_id.to_string(),
            };
            store.commit_artifact(&record)?;
            let status = if resume_step.is_some() {
                StageStatus::Resumed
            } else {
                StageStatus::Ran
            };
            Ok(StageRun {
                status,
                duration_s,
                outputs,
                metrics: output.metrics,
                resumed_from_step: resume_step,
                ..blank
            })
        }
        Err(StageError::Cancelled { step }) => Ok(StageRun {
            status: StageStatus::Interrupted,
            duration_s,
            error: Some(format!("interrupted; resumes from step {step}")),
            resumed_from_step: resume_step,
            ..blank
        }),
        Err(StageError::Store(error)) => Err(error.into()),
        Err(error) => Ok(StageRun {
            status: StageStatus::Failed,
            duration_s,
            error: Some(error.to_string()),
            resumed_from_step: resume_step,
            ..blank
        }),
    }
}
