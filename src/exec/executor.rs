//! Execute: the seam between deciding what runs and running it. The scheduler
//! (`scheduler.rs`) hands each stage instance that must run to an `Executor` — in this
//! process (`InProcess`), as local worker processes (`LocalProcesses`), or as Slurm jobs
//! (`Slurm`) — and learns from it when each one ends. Every executor reports the same
//! `Outcome`, so the store and the run record are written the same way whatever ran it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::context::{Cancel, Progress};
use super::ExecError;
use crate::plan::{StageKey, StageSpec};
use crate::store::{ArtifactRecord, BlobRef, CheckpointRecord, Provenance, Store};

/// A stage instance to run.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Its index in the plan (how the scheduler knows it again).
    pub index: usize,
    pub spec: StageSpec,
    /// The artifacts of its upstream stages, by key.
    pub inputs: BTreeMap<StageKey, ArtifactRecord>,
    /// The checkpoint it resumes from.
    pub resume: Option<CheckpointRecord>,
    /// The run that launches it.
    pub run: String,
}

/// How a launched stage ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished: its outputs are stored blobs.
    Succeeded {
        outputs: BTreeMap<String, BlobRef>,
        metrics: BTreeMap<String, f64>,
        produced: Option<Provenance>,
    },
    /// Stopped on request after a checkpoint at `step` (it resumes from there).
    Interrupted { step: u64 },
    /// Failed; the message says why (and, for a job, its state and log tail).
    Failed { error: String },
}

/// A launched stage that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub index: usize,
    pub outcome: Outcome,
    pub duration_s: f64,
    /// The step it resumed from, if it did.
    pub resumed_from_step: Option<u64>,
}

/// Where a launched stage runs, for `runs show` while it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// The executor's name for it (`slurm 1234`, `pid 5678`).
    pub job: Option<String>,
    /// The log its process writes.
    pub log: Option<PathBuf>,
}

/// What an executor reports while stages run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A launched stage is placed (queued or started) — `Placement` says where.
    Placed {
        index: usize,
        placement: Placement,
    },
    /// A running stage reached `step` of `total`.
    Progress {
        index: usize,
        step: u64,
        total: u64,
    },
    Finished(Finished),
}

/// Runs stage instances for the scheduler.
pub trait Executor {
    /// How many stages may run at once.
    fn capacity(&self) -> usize;

    /// Starts `launch` (an in-process executor runs it to the end, reporting progress to
    /// `progress`).
    fn launch(
        &mut self,
        launch: Launch,
        store: &Store,
        cancel: &Cancel,
        progress: &mut dyn Progress,
    ) -> Result<(), ExecError>;

    /// What happened since the last call, waiting up to `wait` for something to happen.
    /// Metric points and checkpoints of running stages are recorded in `store` here.
    fn poll(&mut self, store: &Store, wait: Duration) -> Result<Vec<Event>, ExecError>;

    /// Asks every running stage to checkpoint and stop (`hard`: stop now, and cancel what
    /// has not started).
    fn stop(&mut self, hard: bool) -> Result<(), ExecError>;

    /// Whether nothing launched is still running.
    fn idle(&self) -> bool;

    /// Whether stages run inside this process (the run record says so while they run).
    fn in_process(&self) -> bool {
        false
    }
}
