//! Execute: the scheduler — walks a plan's stage instances in order, reuses every artifact
//! already in the store (verified), and hands each stage that must run to the executor
//! once its inputs exist, up to the executor's capacity; resumes an interrupted stage from
//! its checkpoint; records the run, each stage's outcome and where it ran. A failed stage
//! skips what depends on it, not its independent branches. The scheduler alone writes the
//! store's index; executors only run stages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;

use super::context::{Cancel, Progress, StageContext, StageError, StageOutput};
use super::executor::{Event, Executor, Finished, Launch, Outcome, Placement};
use super::job::JobDir;
use super::live::Publisher;
use crate::check::suggest;
use crate::plan::{InputSpec, Plan, StageKey, StageSpec};
use crate::store::{
    ArtifactRecord, HistoryRecord, RunRecord, RunStatus, StageProgress, StageRun, StageStatus,
    Store, StoreError,
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
    /// Where the run's TensorBoard event files go (default `<store>/tensorboard`), one
    /// directory per run.
    pub tensorboard: Option<std::path::PathBuf>,
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
    /// A job directory could not be written or read, or a job could not be started.
    Job(String),
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
            Self::Job(message) => f.write_str(message),
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
    /// A launched stage was placed by its executor (a job id, a log file).
    fn stage_placed(&mut self, _stage: &StageRun, _placement: &Placement) {}
    /// A stage running elsewhere reached `step` of `total`.
    fn stage_progress(&mut self, _stage: &StageRun, _step: u64, _total: u64) {}
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
                    if let Some(j) = plan.stages.iter().position(|s| s.key.as_str() == input.key) {
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

/// Runs `plan` against `store` through `executor`; returns the run record (also saved in
/// the store).
pub fn execute(
    plan: &Plan,
    store: &Store,
    manifest: &Path,
    options: &RunOptions,
    executor: &mut dyn Executor,
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
        if !selected.contains(&i) || options.only.is_empty() {
            continue;
        }
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

    // A run still marked running was stopped by a crash or kill (we hold the lock now).
    for mut stale in store
        .runs()?
        .into_iter()
        .filter(|r| r.status == RunStatus::Running)
    {
        stale.status = RunStatus::Interrupted;
        for stage in &mut stale.stages {
            if stage.status == StageStatus::Running {
                stage.status = StageStatus::Interrupted;
                stage.progress = None;
            }
        }
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
        stages: specs.iter().map(pending_stage).collect(),
    };
    store.save_run(&run)?;
    for spec in &specs {
        store.save_spec(&spec.key, spec)?;
    }

    let mut schedule = Schedule {
        plan,
        store,
        specs: &specs,
        selected: &selected,
        options,
        total: selected.len(),
        launched: 0,
        state: vec![Slot::Waiting; specs.len()],
        unavailable: BTreeSet::new(),
    };
    // The live snapshot and TensorBoard files are published beside the run loop.
    let tensorboard = options
        .tensorboard
        .clone()
        .unwrap_or_else(|| store.dir().join("tensorboard"))
        .join(&run.id);
    let mut publisher = Publisher::new(store, &specs, tensorboard);
    let running = AtomicBool::new(true);
    let looped = std::thread::scope(|scope| {
        scope.spawn(|| publisher.run_while(&running));
        let looped = run_loop(&mut schedule, &mut run, executor, cancel, reporter);
        running.store(false, Ordering::SeqCst);
        looped
    });
    if let Err(error) = looped {
        // A store error part-way (a disk gone, an unreadable record) ends the run: it is
        // recorded as failed, with the error on the stages in flight, so that no run
        // stays `running` for ever.
        run.status = RunStatus::Failed;
        for (i, slot) in schedule.state.iter().enumerate() {
            if *slot == Slot::InFlight {
                run.stages[i].status = StageStatus::Failed;
                run.stages[i].error = Some(error.to_string());
            }
        }
        run.finished = Some(Utc::now());
        let _ = store.save_run(&run);
        return Err(error);
    }
    for (i, slot) in schedule.state.iter().enumerate() {
        if *slot == Slot::Waiting {
            run.stages[i].status = StageStatus::Skipped;
            if run.stages[i].error.is_none() && cancel.is_requested() {
                run.stages[i].error = Some("not started: the run was interrupted".into());
            }
        }
    }
    if run.status == RunStatus::Running {
        run.status = if run
            .stages
            .iter()
            .any(|s| s.status == StageStatus::Interrupted)
            || cancel.is_requested()
        {
            RunStatus::Interrupted
        } else if run.stages.iter().any(|s| s.status == StageStatus::Failed) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
    }
    run.finished = Some(Utc::now());
    store.save_run(&run)?;
    // The snapshot is also the copy `r1flow recover` rebuilds a damaged index from: it
    // ends the run holding the run's final record.
    if let Err(error) = store.publish_snapshot() {
        tracing::warn!(%error, "could not publish the store's snapshot");
    }
    Ok(run)
}

/// Launches and records stages until nothing runs and nothing more can start.
fn run_loop(
    schedule: &mut Schedule<'_>,
    run: &mut RunRecord,
    executor: &mut dyn Executor,
    cancel: &Cancel,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    loop {
        if !cancel.is_requested() {
            schedule.launch_ready(run, executor, cancel, reporter)?;
        }
        if executor.idle() && !schedule.in_flight() {
            return Ok(());
        }
        let events = executor.poll(schedule.store, Duration::from_millis(500))?;
        for event in events {
            schedule.apply(event, run, reporter)?;
        }
        if cancel.is_requested() {
            let hard = cancel.presses() >= 2;
            executor.stop(hard)?;
            if hard {
                run.status = RunStatus::Interrupted;
            }
        }
    }
}

/// Where a stage instance is in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not started: inputs missing, not selected yet, or capacity full.
    Waiting,
    /// Handed to the executor.
    InFlight,
    /// Cached, finished, failed, interrupted or skipped.
    Done,
}

/// The run's bookkeeping between executor events.
struct Schedule<'p> {
    plan: &'p Plan,
    store: &'p Store,
    specs: &'p [StageSpec],
    selected: &'p BTreeSet<usize>,
    options: &'p RunOptions,
    total: usize,
    launched: usize,
    state: Vec<Slot>,
    /// Keys whose artifacts will not exist in this run.
    unavailable: BTreeSet<StageKey>,
}

impl Schedule<'_> {
    fn in_flight(&self) -> bool {
        self.state.contains(&Slot::InFlight)
    }

    fn in_flight_count(&self) -> usize {
        self.state.iter().filter(|s| **s == Slot::InFlight).count()
    }

    /// Whether the artifact `key` is in the store now.
    fn available(&self, key: &StageKey) -> Result<bool, StoreError> {
        Ok(self.store.artifact(key)?.is_some())
    }

    /// Settles every waiting stage that can be settled (not selected, blocked, cached) and
    /// launches ready ones while the executor has room, in plan order.
    fn launch_ready(
        &mut self,
        run: &mut RunRecord,
        executor: &mut dyn Executor,
        cancel: &Cancel,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        for i in 0..self.specs.len() {
            if self.state[i] != Slot::Waiting {
                continue;
            }
            let spec = &self.specs[i];
            if !self.selected.contains(&i) {
                self.state[i] = Slot::Done;
                run.stages[i].status = StageStatus::Skipped;
                if !self.available(&spec.key)? {
                    self.unavailable.insert(spec.key.clone());
                }
                continue;
            }
            if let Some(blocked) = spec.upstream_keys().find(|k| self.unavailable.contains(*k)) {
                self.state[i] = Slot::Done;
                run.stages[i].status = StageStatus::Skipped;
                run.stages[i].error = Some(format!("input {} is not available", blocked.short()));
                self.unavailable.insert(spec.key.clone());
                reporter.stage_finished(&run.stages[i]);
                continue;
            }
            // Inputs still being computed: wait for them.
            let mut ready = true;
            for key in spec.upstream_keys() {
                if !self.available(key)? {
                    ready = false;
                }
            }
            if !ready {
                continue;
            }
            let force = self.options.force.contains(&spec.name);
            if !force && self.reuse(i, run, reporter)? {
                continue;
            }
            if self.in_flight_count() >= executor.capacity() || cancel.is_requested() {
                continue;
            }
            self.launch(i, run, executor, cancel, reporter)?;
            if self.in_flight_count() >= executor.capacity() {
                // Full: the rest waits, so that stages are reported in plan order.
                break;
            }
        }
        Ok(())
    }

    /// Reuses the stored artifact of stage `i` when it is there and intact.
    fn reuse(
        &mut self,
        i: usize,
        run: &mut RunRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<bool, ExecError> {
        let spec = &self.specs[i];
        let Some(artifact) = self.store.artifact(&spec.key)? else {
            return Ok(false);
        };
        match self.store.verify_artifact(&artifact) {
            Ok(()) => {
                tracing::info!(stage = %spec.name, key = %spec.key, "cached: reusing the stored artifact");
                self.launched += 1;
                self.state[i] = Slot::Done;
                let stage = &mut run.stages[i];
                stage.status = StageStatus::Cached;
                stage.outputs = artifact.outputs;
                stage.metrics = artifact.metrics;
                stage.produced = artifact.produced;
                record_history(self.store, self.plan, i, spec)?;
                reporter.stage_finished(&run.stages[i]);
                Ok(true)
            }
            Err(error) if error.is_corruption() => {
                reporter.warn(&format!(
                    "stage `{}`: stored artifact is damaged ({error}); recomputing it",
                    spec.name
                ));
                for blob in artifact.outputs.values() {
                    if self.store.blobs().verify(blob).is_err() {
                        self.store.blobs().remove(&blob.hash)?;
                    }
                }
                self.store.remove_artifact(&spec.key)?;
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Hands stage `i` to the executor, resuming from its checkpoint if it has one.
    fn launch(
        &mut self,
        i: usize,
        run: &mut RunRecord,
        executor: &mut dyn Executor,
        cancel: &Cancel,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        let spec = &self.specs[i];
        let resume = self.store.checkpoint(&spec.key)?;
        if let Some(checkpoint) = &resume {
            self.store.truncate_metrics(&spec.key, checkpoint.step)?;
        }
        let mut inputs = BTreeMap::new();
        for key in spec.upstream_keys() {
            if let Some(artifact) = self.store.artifact(key)? {
                inputs.insert(key.clone(), artifact);
            }
        }
        let resume_step = resume.as_ref().map(|c| c.step);
        tracing::info!(stage = %spec.name, kind = spec.config.kind(), key = %spec.key, resume_step, "running");
        self.launched += 1;
        self.state[i] = Slot::InFlight;
        run.stages[i].status = StageStatus::Running;
        run.stages[i].resumed_from_step = resume_step;
        if executor.in_process() {
            run.stages[i].job = Some(format!("coordinator pid {}", std::process::id()));
        }
        self.store.save_run(run)?;
        reporter.stage_started(self.launched, self.total, spec, resume_step);
        let launch = Launch {
            index: i,
            spec: spec.clone(),
            inputs,
            resume,
            run: run.id.clone(),
        };
        let mut progress = RecordedProgress {
            inner: reporter.progress(),
            store: self.store,
            key: &spec.key,
            last: None,
        };
        executor.launch(launch, self.store, cancel, &mut progress)
    }

    /// Records what an executor reported.
    fn apply(
        &mut self,
        event: Event,
        run: &mut RunRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        match event {
            Event::Placed { index, placement } => {
                run.stages[index].job = placement.job.clone();
                run.stages[index].log = placement.log.clone();
                self.store.save_run(run)?;
                reporter.stage_placed(&run.stages[index], &placement);
            }
            Event::Progress { index, step, total } => {
                run.stages[index].progress = Some((step, total));
                self.store.save_progress(
                    &self.specs[index].key,
                    &StageProgress {
                        step,
                        total,
                        message: String::new(),
                    },
                )?;
                reporter.stage_progress(&run.stages[index], step, total);
            }
            Event::Finished(finished) => self.finish(finished, run, reporter)?,
        }
        Ok(())
    }

    /// Stores a finished stage's artifact (when it succeeded) and its outcome.
    fn finish(
        &mut self,
        finished: Finished,
        run: &mut RunRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        let i = finished.index;
        let spec = &self.specs[i];
        self.state[i] = Slot::Done;
        let stage = &mut run.stages[i];
        stage.duration_s = finished.duration_s;
        stage.resumed_from_step = finished.resumed_from_step;
        stage.progress = None;
        self.store.clear_progress(&spec.key)?;
        tracing::info!(stage = %spec.name, duration_s = finished.duration_s, "finished");
        match finished.outcome {
            Outcome::Succeeded {
                outputs,
                metrics,
                produced,
            } => {
                let record = ArtifactRecord {
                    key: spec.key.clone(),
                    kind: spec.config.kind().to_string(),
                    stage: spec.name.clone(),
                    outputs: outputs.clone(),
                    metrics: metrics.clone(),
                    created: Utc::now(),
                    duration_s: finished.duration_s,
                    run: run.id.clone(),
                    produced: produced.clone(),
                };
                self.store.commit_artifact(&record)?;
                let job_dir = JobDir::of(self.store.dir(), &spec.key);
                if job_dir.path().is_dir() {
                    job_dir.retire()?;
                }
                stage.status = if finished.resumed_from_step.is_some() {
                    StageStatus::Resumed
                } else {
                    StageStatus::Ran
                };
                stage.outputs = outputs;
                stage.metrics = metrics;
                stage.produced = produced;
                record_history(self.store, self.plan, i, spec)?;
            }
            Outcome::Interrupted { step } => {
                stage.status = StageStatus::Interrupted;
                stage.error = Some(format!("interrupted; resumes from step {step}"));
                self.unavailable.insert(spec.key.clone());
            }
            Outcome::Failed { error } => {
                stage.status = StageStatus::Failed;
                stage.error = Some(error);
                self.unavailable.insert(spec.key.clone());
            }
        }
        reporter.stage_finished(&run.stages[i]);
        self.store.save_run(run)?;
        Ok(())
    }
}

/// Progress of a stage running in this process: shown by the reporter, and kept in the
/// store (at most once a second) for `runs show` in another terminal.
struct RecordedProgress<'a> {
    inner: &'a mut dyn Progress,
    store: &'a Store,
    key: &'a StageKey,
    last: Option<std::time::Instant>,
}

impl Progress for RecordedProgress<'_> {
    fn update(&mut self, step: u64, total: u64, message: &str) {
        self.inner.update(step, total, message);
        if self.last.is_none_or(|t| t.elapsed().as_secs_f64() >= 1.0) || step == total {
            let progress = StageProgress {
                step,
                total,
                message: message.to_string(),
            };
            if let Err(error) = self.store.save_progress(self.key, &progress) {
                tracing::warn!(%error, "could not record progress");
            }
            self.last = Some(std::time::Instant::now());
        }
    }
}

/// A stage's record before anything happened to it.
fn pending_stage(spec: &StageSpec) -> StageRun {
    StageRun::pending(
        spec.name.clone(),
        spec.config.kind().to_string(),
        spec.variants.clone(),
        spec.key.clone(),
    )
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
