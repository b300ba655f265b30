//! Store: garbage collection — delete what no kept run reaches (runs beyond `--keep-last`,
//! their artifacts, checkpoints and metric series, and unreferenced blobs), with a dry run
//! that reports the same figures without deleting.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Store, StoreError};

/// What gc removed (or would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub runs_removed: Vec<String>,
    pub artifacts_removed: usize,
    pub checkpoints_removed: usize,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub blobs_kept: usize,
    pub bytes_kept: u64,
}

impl Store {
    /// Keeps the newest `keep_last` runs (all runs when `None`) and everything they reach.
    pub fn gc(&self, keep_last: Option<usize>, dry_run: bool) -> Result<GcReport, StoreError> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let runs = self.runs()?;
        let cut = keep_last.map_or(0, |n| runs.len().saturating_sub(n));
        let (removed, kept) = runs.split_at(cut);
        let kept_keys: BTreeSet<&str> = kept
            .iter()
            .flat_map(|r| r.stages.iter().map(|s| s.key.as_str()))
            .collect();

        let mut live_blobs: BTreeSet<String> = BTreeSet::new();
        for artifact in self.artifacts()? {
            if kept_keys.contains(artifact.key.as_str()) {
                live_blobs.extend(artifact.outputs.values().map(|b| b.hash.clone()));
            } else {
                report.artifacts_removed += 1;
                if !dry_run {
                    self.artifacts.remove(artifact.key.as_bytes())?;
                    self.remove_metrics(&artifact.key)?;
                }
            }
        }
        for checkpoint in self.checkpoints()? {
            if kept_keys.contains(checkpoint.key.as_str()) {
                live_blobs.extend(checkpoint.files.values().map(|b| b.hash.clone()));
            } else {
                report.checkpoints_removed += 1;
                if !dry_run {
                    self.checkpoints.remove(checkpoint.key.as_bytes())?;
                }
            }
        }
        for run in removed {
            report.runs_removed.push(run.id.clone());
            if !dry_run {
                self.runs.remove(run.id.as_bytes())?;
            }
        }
        if !dry_run {
            // The index forgets first; a crash before the blobs go leaves only garbage.
            self.flush()?;
        }
        for (hash, bytes) in self.blobs.list()? {
            if live_blobs.contains(&hash) {
                report.blobs_kept += 1;
                report.bytes_kept += bytes;
            } else {
                report.blobs_removed += 1;
                report.bytes_freed += bytes;
                if !dry_run {
                    self.blobs.remove(&hash)?;
                }
            }
        }
        Ok(report)
    }
}
