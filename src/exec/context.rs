//! Execute: what a running stage sees — its spec, its inputs' artifacts, checkpoint save
//! and restore, metric logging, progress, and cancellation (Ctrl-C).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::io::StageIo;
use crate::plan::{InputSpec, StageSpec};
use crate::stages::InputField;
use crate::store::{ArtifactRecord, CheckpointRecord, MetricPoint, StoreError};

/// Set by the first Ctrl-C: stages checkpoint at their next step and stop.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    requested: Arc<AtomicBool>,
    presses: Arc<AtomicUsize>,
}

impl Cancel {
    pub fn request(&self) {
        self.presses.fetch_add(1, Ordering::SeqCst);
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Asks for a stop at the next step without counting as a press: the terminal went
    /// away (a closed stderr), so a person's first Ctrl-C or SIGTERM after it still
    /// means "checkpoint and stop", not "stop at once".
    pub fn request_without_press(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// How many times cancellation was asked for (a second Ctrl-C stops at once).
    pub fn presses(&self) -> usize {
        self.presses.load(Ordering::SeqCst)
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Where progress goes (a progress bar in a terminal, log lines otherwise).
pub trait Progress: Send {
    /// `step` of `total` done; `message` carries the stage's key metric.
    fn update(&mut self, step: u64, total: u64, message: &str);
}

/// Why a stage did not finish.
#[derive(Debug)]
pub enum StageError {
    /// Stopped on request after writing a checkpoint at `step`.
    Cancelled {
        step: u64,
    },
    /// The stage failed; the message says why.
    Failed(String),
    /// An input could not be used: the config field that names it, what it names (a stage,
    /// a model or a dataset), and why.
    Input {
        field: InputField,
        names: String,
        reason: String,
    },
    Store(StoreError),
}

impl StageError {
    /// Input `field` of `spec` (naming what the spec says it names) cannot be used.
    pub fn input(spec: &StageSpec, field: InputField, reason: impl std::fmt::Display) -> Self {
        let names = match spec.input(field) {
            Some(InputSpec::Artifact { stage, .. }) => format!("stage `{stage}`"),
            Some(InputSpec::Model { name, .. }) => format!("model `{name}`"),
            Some(InputSpec::Source { name, .. }) => format!("dataset `{name}`"),
            None => "nothing".to_string(),
        };
        Self::Input {
            field,
            names,
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancelled { step } => write!(f, "interrupted (checkpoint at step {step})"),
            Self::Failed(message) => f.write_str(message),
            Self::Input {
                field,
                names,
                reason,
            } => write!(f, "input `{field}` ({names}): {reason}"),
            Self::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for StageError {}

impl From<StoreError> for StageError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A stage's results: named output files (stored as blobs) and final metrics.
#[derive(Debug, Default)]
pub struct StageOutput {
    pub files: Vec<(String, Vec<u8>)>,
    pub metrics: BTreeMap<String, f64>,
}

/// The running stage's view of the world.
pub struct StageContext<'a> {
    io: &'a dyn StageIo,
    spec: &'a StageSpec,
    cancel: &'a Cancel,
    progress: &'a mut dyn Progress,
    resume: Option<CheckpointRecord>,
}

impl<'a> StageContext<'a> {
    pub(crate) fn new(
        io: &'a dyn StageIo,
        spec: &'a StageSpec,
        cancel: &'a Cancel,
        progress: &'a mut dyn Progress,
        resume: Option<CheckpointRecord>,
    ) -> Self {
        Self {
            io,
            spec,
            cancel,
            progress,
            resume,
        }
    }

    pub fn spec(&self) -> &StageSpec {
        self.spec
    }

    /// The artifact named by input `field`.
    pub fn input(&self, field: InputField) -> Result<ArtifactRecord, StageError> {
        match self.spec.input(field) {
            Some(InputSpec::Artifact { key, .. }) => self
                .io
                .artifact(key)?
                .ok_or_else(|| StageError::input(self.spec, field, "not in the store")),
            _ => Err(StageError::input(self.spec, field, "not a stage output")),
        }
    }

    /// The bytes of output `name` of the artifact named by input `field`.
    pub fn read_input(&self, field: InputField, name: &str) -> Result<Vec<u8>, StageError> {
        let artifact = self.input(field)?;
        let blob = artifact
            .outputs
            .get(name)
            .ok_or_else(|| StageError::input(self.spec, field, format!("no output `{name}`")))?;
        Ok(self.io.blobs().read(blob)?)
    }

    /// The bytes of output `name` of upstream stage `stage`, whichever field names it (a
    /// reward model, which a `model` reward names by its stage).
    pub fn read_stage_output(&self, stage: &str, name: &str) -> Result<Vec<u8>, StageError> {
        let key = self
            .spec
            .inputs
            .values()
            .find_map(|input| match input {
                InputSpec::Artifact { key, stage: s } if s == stage => Some(key),
                _ => None,
            })
            .ok_or_else(|| {
                StageError::Failed(format!("stage `{stage}` is not an input of this stage"))
            })?;
        let artifact = self.io.artifact(key)?.ok_or_else(|| {
            StageError::Failed(format!("the output of stage `{stage}` is not in the store"))
        })?;
        let blob = artifact.outputs.get(name).ok_or_else(|| {
            StageError::Failed(format!("the output of stage `{stage}` has no `{name}`"))
        })?;
        Ok(self.io.blobs().read(blob)?)
    }

    /// The records of JSONL output `name` of the artifact named by input `field`.
    pub fn read_records<T: serde::de::DeserializeOwned>(
        &self,
        field: InputField,
        name: &str,
    ) -> Result<Vec<T>, StageError> {
        let bytes = self.read_input(field, name)?;
        crate::records::from_jsonl(&bytes)
            .map_err(|e| StageError::input(self.spec, field, format!("{name}: {e}")))
    }

    /// The checkpoint this run resumes from, if any.
    pub fn resume_point(&self) -> Option<&CheckpointRecord> {
        self.resume.as_ref()
    }

    /// A file of the checkpoint this run resumes from.
    pub fn read_checkpoint(&self, name: &str) -> Result<Vec<u8>, StageError> {
        let checkpoint = self
            .resume
            .as_ref()
            .ok_or_else(|| StageError::Failed("no checkpoint to resume from".into()))?;
        let blob = checkpoint
            .files
            .get(name)
            .ok_or_else(|| StageError::Failed(format!("the checkpoint has no `{name}`")))?;
        Ok(self.io.blobs().read(blob)?)
    }

    /// Stores a resumable state after `step` steps (blobs first, then the record).
    pub fn save_checkpoint(
        &mut self,
        step: u64,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StageError> {
        let mut stored = BTreeMap::new();
        for (name, bytes) in files {
            stored.insert(name, self.io.blobs().put(&bytes)?);
        }
        let record = CheckpointRecord {
            key: self.spec.key.clone(),
            step,
            files: stored,
            written: chrono::Utc::now(),
        };
        self.io.save_checkpoint(&record)?;
        tracing::info!(stage = %self.spec.name, step, "checkpoint written");
        crate::store::failpoint("after-checkpoint");
        Ok(())
    }

    /// Records the metrics of `step`.
    pub fn log_metrics(&self, step: u64, values: BTreeMap<String, f64>) -> Result<(), StageError> {
        tracing::debug!(stage = %self.spec.name, step, ?values, "metrics");
        self.io
            .log_metrics(&self.spec.key, &MetricPoint { step, values })?;
        Ok(())
    }

    pub fn progress(&mut self, step: u64, total: u64, message: &str) {
        self.progress.update(step, total, message);
    }

    /// Whether the user asked to stop (check between steps; checkpoint, then return
    /// `StageError::Cancelled`).
    pub fn cancelled(&self) -> bool {
        self.cancel.is_requested()
    }
}
