//! Execute: where a running stage's reads and writes go — `StageIo`. The coordinator's
//! stages use the store itself; a worker process (`r1flow exec-stage`, a Slurm job) uses
//! its job directory and the store's blob files, never the index, which one process owns.

use crate::plan::StageKey;
use crate::store::{ArtifactRecord, Blobs, CheckpointRecord, MetricPoint, Store, StoreError};

/// What a running stage reads and writes besides its own computation.
pub trait StageIo: Sync {
    /// The stored artifact `key` (an upstream stage's outputs).
    fn artifact(&self, key: &StageKey) -> Result<Option<ArtifactRecord>, StoreError>;
    /// The content-addressed blob files (read inputs, write outputs and checkpoints).
    fn blobs(&self) -> &Blobs;
    /// Records a checkpoint whose blobs are written.
    fn save_checkpoint(&self, record: &CheckpointRecord) -> Result<(), StoreError>;
    /// Records one step's metrics of stage `key`.
    fn log_metrics(&self, key: &StageKey, point: &MetricPoint) -> Result<(), StoreError>;
}

impl StageIo for Store {
    fn artifact(&self, key: &StageKey) -> Result<Option<ArtifactRecord>, StoreError> {
        Store::artifact(self, key)
    }

    fn blobs(&self) -> &Blobs {
        Store::blobs(self)
    }

    fn save_checkpoint(&self, record: &CheckpointRecord) -> Result<(), StoreError> {
        Store::save_checkpoint(self, record)
    }

    fn log_metrics(&self, key: &StageKey, point: &MetricPoint) -> Result<(), StoreError> {
        Store::log_metrics(self, key, point)
    }
}
