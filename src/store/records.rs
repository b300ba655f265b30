//! Store: the records kept in the index — artifacts by stage key, runs, checkpoints, metric
//! points, and each stage name's last key (to explain cache misses).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::blobs::BlobRef;
use crate::plan::StageKey;

/// A finished stage's outputs, stored under its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub key: StageKey,
    pub kind: String,
    /// The stage name that produced it (informational: names are not in keys).
    pub stage: String,
    /// Output name → blob (`train.jsonl`, `model.safetensors`, …).
    pub outputs: BTreeMap<String, BlobRef>,
    /// Final metrics of the stage (NaN and infinities are stored as `null`, read as NaN).
    #[serde(deserialize_with = "metric_values")]
    pub metrics: BTreeMap<String, f64>,
    pub created: DateTime<Utc>,
    #[serde(deserialize_with = "number_or_nan")]
    pub duration_s: f64,
    /// The run that produced it.
    pub run: String,
    /// Where it was produced (absent in records written before r1flow recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced: Option<Provenance>,
}

/// Where an artifact was produced. Its bits are reproducible on the same backend and the
/// same kind of machine; CPUs with other vector instructions, or other GPUs, round
/// floating point differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub host: String,
    /// `cpu`, `wgpu` or `cuda`.
    pub backend: String,
    /// The CPU's architecture and vector extensions, or the GPU's model.
    pub device: String,
    /// The r1flow version that produced it.
    pub version: String,
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} ({}), r1flow {}",
            self.backend, self.host, self.device, self.version
        )
    }
}

impl ArtifactRecord {
    pub fn total_bytes(&self) -> u64 {
        self.outputs.values().map(|b| b.bytes).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Pending,
    /// Reused from the store.
    Cached,
    Ran,
    /// Ran, continuing from a checkpoint.
    Resumed,
    Failed,
    Interrupted,
    /// Not selected (`--only`, `--until`) or blocked by a failed input.
    Skipped,
    /// Launched and not finished (a live run's record).
    Running,
}

/// One stage instance within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    pub name: String,
    pub kind: String,
    pub variants: Vec<String>,
    pub key: StageKey,
    pub status: StageStatus,
    #[serde(deserialize_with = "number_or_nan")]
    pub duration_s: f64,
    pub outputs: BTreeMap<String, BlobRef>,
    #[serde(deserialize_with = "metric_values")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where its artifact was produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced: Option<Provenance>,
    /// While it runs or after: the executor's name for its job (`slurm 1234`, `pid 99`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The log its job wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// While it runs: steps done and in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<(u64, u64)>,
}

impl StageRun {
    /// A stage instance of a run before anything happened to it.
    pub fn pending(name: String, kind: String, variants: Vec<String>, key: StageKey) -> Self {
        Self {
            name,
            kind,
            variants,
            key,
            status: StageStatus::Pending,
            duration_s: 0.0,
            outputs: BTreeMap::new(),
            metrics: BTreeMap::new(),
            resumed_from_step: None,
            error: None,
            produced: None,
            job: None,
            log: None,
            progress: None,
        }
    }
}

/// One invocation of `r1flow run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub manifest: PathBuf,
    pub pipeline: String,
    pub started: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub pid: u32,
    pub stages: Vec<StageRun>,
}

impl RunRecord {
    pub fn duration_s(&self) -> Option<f64> {
        self.finished
            .map(|f| (f - self.started).num_milliseconds() as f64 / 1000.0)
    }

    pub fn count(&self, status: StageStatus) -> usize {
        self.stages.iter().filter(|s| s.status == status).count()
    }
}

/// The latest resumable state of an unfinished stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub key: StageKey,
    /// Steps completed when the checkpoint was written.
    pub step: u64,
    /// State name → blob (weights, optimizer, RNG, cursor …).
    pub files: BTreeMap<String, BlobRef>,
    pub written: DateTime<Utc>,
}

/// Metric values of one logged step of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub step: u64,
    /// A value that is not a number (a mean over nothing) is stored as JSON `null` and
    /// read back as NaN.
    #[serde(deserialize_with = "metric_values")]
    pub values: BTreeMap<String, f64>,
}

/// Reads a metric map in which JSON writes NaN and infinities as `null`: they come back as
/// NaN instead of making the whole record unreadable. Every number a record holds is read
/// this way (`metric_values`, `number_or_nan`), so no value a stage computes can make the
/// store unreadable.
pub(crate) fn metric_values<'de, D>(deserializer: D) -> Result<BTreeMap<String, f64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let values: BTreeMap<String, Option<f64>> = Deserialize::deserialize(deserializer)?;
    Ok(values
        .into_iter()
        .map(|(name, value)| (name, value.unwrap_or(f64::NAN)))
        .collect())
}

/// A number that JSON may have written as `null` (NaN, an infinity), read back as NaN.
pub(crate) fn number_or_nan<'de, D>(deserializer: D) -> Result<f64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// What a stage name last ran as, to say why it would run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub key: StageKey,
    /// The canonical JSON its key hashed.
    pub material: serde_json::Value,
    pub at: DateTime<Utc>,
}
