//! Store: the artifact store under `runs/` — a sled index (artifacts by stage key, runs,
//! checkpoints, metric series, stage history) and content-addressed blobs. Blobs are
//! written and fsynced before the index records that name them, so a crash never leaves a
//! record pointing at a partial blob. The only module that names sled.

mod blobs;
mod error;
mod gc;
mod lock;
mod records;
mod recover;
mod seal;
mod snapshot;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::plan::StageKey;

pub use blobs::{BlobRef, Blobs};
pub use error::{StoreError, StoreErrorKind};
pub use gc::GcReport;
pub use lock::{LockMode, StoreLock};
pub(crate) use records::{metric_values, number_or_nan};
pub use records::{
    ArtifactRecord, CheckpointRecord, HistoryRecord, MetricPoint, Provenance, RunRecord, RunStatus,
    StageRun, StageStatus,
};
pub use recover::{Recovery, RecoverySource};

/// `path` opened for reading; `None` where there is no such file, as for the files a store
/// may not have yet (its seal, its live snapshot).
fn open_if_exists(path: &Path) -> Result<Option<std::fs::File>, StoreError> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(e, path)),
    }
}

/// Bump when the index layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

fn failpoint_armed(name: &str) -> bool {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    POINT
        .get_or_init(|| std::env::var("R1FLOW_FAILPOINT").ok())
        .as_deref()
        == Some(name)
}

/// Test hook: when `R1FLOW_FAILPOINT` names this point, the process aborts here, as a
/// `kill -9` would stop it. Crash tests use it to stop a run at exact places.
pub(crate) fn failpoint(name: &str) {
    if failpoint_armed(name) {
        std::process::abort();
    }
}

/// Test hook: with `R1FLOW_FAILPOINT=disk-full`, blob writes fail as on a full disk.
pub(crate) fn disk_full() -> std::io::Result<()> {
    if failpoint_armed("disk-full") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (os error 28)",
        ));
    }
    Ok(())
}

/// Test hook: with `R1FLOW_FAILPOINT=fill-disk-at-commit`, the commit numbered
/// `R1FLOW_FAILPOINT_COMMIT` (the index's generation it raises to) first fills the
/// filesystem through the file `R1FLOW_FAILPOINT_FILLER` until the kernel says it is
/// full, so that sled's own log append of that commit meets a real ENOSPC. The file is
/// left for the test to delete (freeing the space).
fn fill_disk_at_commit(generation: u64) {
    if !failpoint_armed("fill-disk-at-commit") {
        return;
    }
    let wanted = std::env::var("R1FLOW_FAILPOINT_COMMIT")
        .ok()
        .and_then(|n| n.parse::<u64>().ok());
    let Some(filler) = std::env::var_os("R1FLOW_FAILPOINT_FILLER") else {
        return;
    };
    if wanted != Some(generation) {
        return;
    }
    use std::io::Write as _;
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
    else {
        return;
    };
    // Pages, then single bytes: the last partial page is taken too.
    for chunk in [vec![0u8; 1 << 16], vec![0u8; 512], vec![0u8; 1]] {
        while file.write_all(&chunk).is_ok() {}
    }
    let _ = file.sync_all();
}

/// An open store, held exclusively by this process.
pub struct Store {
    dir: PathBuf,
    blobs: Blobs,
    db: sled::Db,
    artifacts: sled::Tree,
    runs: sled::Tree,
    checkpoints: sled::Tree,
    metrics: sled::Tree,
    history: sled::Tree,
    specs: sled::Tree,
    progress: sled::Tree,
    /// The lock of a store this process writes; none for a live snapshot.
    lock: Option<StoreLock>,
    /// For a live snapshot: when the running coordinator wrote it.
    snapshot_of: Option<std::time::SystemTime>,
    /// How many times the index has been committed (see `seal`).
    generation: std::sync::atomic::AtomicU64,
}

/// The trees of the index (all of them go into a live snapshot).
const TREES: &[&str] = &[
    "meta",
    "artifacts",
    "runs",
    "checkpoints",
    "metrics",
    "history",
    "specs",
    "progress",
];

/// A running stage's last progress report, as `runs show` shows it live.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageProgress {
    pub step: u64,
    pub total: u64,
    pub message: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::new(StoreErrorKind::Record(e.to_string())))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::new(StoreErrorKind::Record(e.to_string())))
}

/// Whether the store in `dir` holds any blob.
fn has_blobs(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("blobs")).is_ok_and(|prefixes| {
        prefixes
            .filter_map(Result::ok)
            .any(|p| std::fs::read_dir(p.path()).is_ok_and(|mut b| b.next().is_some()))
    })
}

/// The index's commit count (`seal`); 0 for an index made before it was counted.
fn generation_of(db: &sled::Db) -> Result<u64, StoreError> {
    db.open_tree("meta")?
        .get("generation")?
        .map_or(Ok(0), |bytes| decode(&bytes))
}

/// Removes what an interrupted write left in the store `dir` (its lock held, so no other
/// process is writing): sled's half-written `index/snap.*.generating` (which sled would
/// read as its newest snapshot and call corrupt), the live snapshot's and the seal's
/// temporary files. Blobs' temporaries are `Blobs::open`'s.
fn remove_stale_temporaries(dir: &Path) {
    remove_files_matching(&dir.join("index"), |name| {
        name.starts_with("snap.") && name.ends_with(".generating")
    });
    if let Some(snapshots) = snapshot::path(dir).parent() {
        remove_files_matching(snapshots, |name| name.starts_with(snapshot::TEMP_PREFIX));
    }
    remove_files_matching(dir, |name| name.starts_with(seal::TEMP_PREFIX));
}

/// Removes the files of `dir` whose names `matches` (nothing when `dir` cannot be read).
fn remove_files_matching(dir: &Path, matches: impl Fn(&str) -> bool) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if matches(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking its lock.
    ///
    /// What a store is: a directory holding `index/` (the sled database, whose `meta` tree
    /// records the format version) and `blobs/`, with what runs leave beside them (`LOCK`,
    /// `tmp/`, `jobs/`, `snapshot/`, `tensorboard/`). A directory that does not
    /// exist, is empty, or holds only what a project keeps in its `runs/` folder
    /// (`README.md`, `.gitignore`, `.gitkeep`) becomes a new store. Any other directory
    /// without `index/` is refused (`NotAStore`): a mistyped `--store` must not fill
    /// someone's folder. An index that sled cannot open, or that lost its format record
    /// (cut short, emptied), is `Damaged`, never silently a new store.
    pub fn open(dir: &Path, mode: LockMode) -> Result<Self, StoreError> {
        // A store in use: one that was ever sealed, or that holds blobs. An index without
        // its format record is then damage; without either, it is a store whose creation
        // never finished (a full disk at its first open), which is made again.
        let existed = seal::path(dir).exists() || has_blobs(dir);
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::new(StoreErrorKind::NotADirectory).with_path(dir));
        }
        if !Self::exists(dir) && !Self::may_become_store(dir) {
            return Err(StoreError::new(StoreErrorKind::NotAStore).with_path(dir));
        }
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(e, dir))?;
        let lock = StoreLock::acquire(dir, mode)?;
        remove_stale_temporaries(dir);
        let blobs = Blobs::open(dir)?;
        let index = dir.join("index");
        let damaged = |message: String| {
            StoreError::new(StoreErrorKind::Damaged(message)).with_path(index.clone())
        };
        let open_index = || sled::Config::new().path(&index).open();
        let db = match open_index() {
            Ok(db) => db,
            // A first open that stopped half-way (a full disk) leaves files sled cannot
            // read; nothing was ever stored, so the index is made again.
            Err(sled::Error::Io(e)) if !existed => {
                let _ = std::fs::remove_dir_all(&index);
                return Err(StoreError::io(e, &index));
            }
            Err(_) if !existed => {
                let _ = std::fs::remove_dir_all(&index);
                open_index().map_err(|e| damaged(e.to_string()))?
            }
            // Not damage: a full disk, permissions — the system's error, with the path.
            Err(sled::Error::Io(e)) => return Err(StoreError::io(e, &index)),
            Err(e) => return Err(damaged(e.to_string())),
        };
        let meta = db.open_tree("meta").map_err(|e| damaged(e.to_string()))?;
        match meta.get("format").map_err(|e| damaged(e.to_string()))? {
            Some(bytes) => {
                let found: u32 = decode(&bytes).map_err(|e| damaged(e.to_string()))?;
                if found != FORMAT_VERSION {
                    return Err(StoreError::new(StoreErrorKind::Format {
                        found,
                        expected: FORMAT_VERSION,
                    }));
                }
            }
            None if existed => {
                return Err(damaged(
                    "the index holds no records (it was cut short or emptied)".into(),
                ))
            }
            None => {
                meta.insert("format", encode(&FORMAT_VERSION)?)?;
                db.flush()?;
            }
        }
        let generation = generation_of(&db).map_err(|e| damaged(e.to_string()))?;
        match seal::read(dir).map_err(|e| e.with_path(index.clone()))? {
            Some(sealed) if sealed > generation => {
                return Err(damaged(format!(
                    "it holds {generation} of the {sealed} commits its seal records: the \
                     records of the last {} were lost, as when the index file is cut short or \
                     its bytes are altered",
                    sealed - generation
                )))
            }
            Some(sealed) if sealed == generation => {}
            // No seal yet (a new store, or one made before seals), or the index is ahead
            // of its seal (stopped between the two writes): seal what the index holds.
            _ => seal::write(dir, generation)?,
        }
        let mut store = Self::from_db(dir, blobs, db, Some(lock), None)?;
        *store.generation.get_mut() = generation;
        Ok(store)
    }

    fn from_db(
        dir: &Path,
        blobs: Blobs,
        db: sled::Db,
        lock: Option<StoreLock>,
        snapshot_of: Option<std::time::SystemTime>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            blobs,
            artifacts: db.open_tree("artifacts")?,
            runs: db.open_tree("runs")?,
            checkpoints: db.open_tree("checkpoints")?,
            metrics: db.open_tree("metrics")?,
            history: db.open_tree("history")?,
            specs: db.open_tree("specs")?,
            progress: db.open_tree("progress")?,
            db,
            lock,
            snapshot_of,
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The live snapshot a running coordinator publishes of the store in `dir`, opened
    /// for reading (`None` when there is none). Nothing written to it is kept.
    pub fn open_snapshot(dir: &Path) -> Result<Option<Self>, StoreError> {
        let Some((db, written)) = snapshot::load(dir)? else {
            return Ok(None);
        };
        let blobs = Blobs::for_worker(dir, std::env::temp_dir())?;
        Self::from_db(dir, blobs, db, None, Some(written)).map(Some)
    }

    /// Publishes the live snapshot other processes read while this one holds the store.
    pub fn publish_snapshot(&self) -> Result<(), StoreError> {
        snapshot::publish(&self.db, TREES, &self.dir)
    }

    /// For a store opened from a live snapshot: when it was written.
    pub fn snapshot_time(&self) -> Option<std::time::SystemTime> {
        self.snapshot_of
    }

    /// Whether `dir` holds a store (without creating or locking it).
    pub fn exists(dir: &Path) -> bool {
        dir.join("index").is_dir()
    }

    /// Whether `dir` may be made a new store: absent, or holding nothing but what a
    /// project's `runs/` folder keeps (see `open`) and what a first open that stopped
    /// half-way leaves (its lock, empty `blobs/`, `tmp/` and `snapshot/`).
    fn may_become_store(dir: &Path) -> bool {
        const KEPT: [&str; 3] = ["README.md", ".gitignore", ".gitkeep"];
        const FIRST_OPEN_FILES: [&str; 1] = ["LOCK"];
        const FIRST_OPEN_DIRS: [&str; 3] = ["blobs", "tmp", "snapshot"];
        let empty_dir =
            |path: &Path| std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none());
        match std::fs::read_dir(dir) {
            Err(_) => true, // absent (or unreadable: creating it reports why)
            Ok(entries) => entries.filter_map(Result::ok).all(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                KEPT.contains(&name.as_str())
                    || (FIRST_OPEN_FILES.contains(&name.as_str()) && entry.path().is_file())
                    || (FIRST_OPEN_DIRS.contains(&name.as_str()) && empty_dir(&entry.path()))
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of a dead process whose lock this store took over, if any.
    pub fn took_over_from(&self) -> Option<u32> {
        self.lock.as_ref().and_then(|l| l.took_over_from)
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Commits the index: raises its generation, makes it durable, then seals it.
    fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.lock.is_none() {
            // A live snapshot: nothing written to it is kept.
            self.db.flush()?;
            return Ok(());
        }
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        self.db
            .open_tree("meta")?
            .insert("generation", encode(&generation)?)?;
        fill_disk_at_commit(generation);
        self.db.flush()?;
        seal::write(&self.dir, generation)?;
        self.generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    // --- artifacts -------------------------------------------------------------------

    pub fn artifact(&self, key: &StageKey) -> Result<Option<ArtifactRecord>, StoreError> {
        self.artifacts.get(key)?.map(|b| decode(&b)).transpose()
    }

    /// Records a finished stage. Its blobs must already be stored. The stage's checkpoint
    /// is forgotten, and its blobs deleted unless something else names them (the index
    /// forgets first: a crash in between leaves only garbage for `gc`).
    pub fn commit_artifact(&self, record: &ArtifactRecord) -> Result<(), StoreError> {
        failpoint("before-index-commit");
        let finished = self.checkpoint(&record.key)?;
        self.artifacts
            .insert(record.key.as_bytes(), encode(record)?)?;
        self.checkpoints.remove(record.key.as_bytes())?;
        self.flush()?;
        if let Some(checkpoint) = finished {
            if let Err(error) = self.remove_unnamed_blobs(checkpoint.files.values()) {
                // The stage is committed; what is left is `gc`'s to remove.
                tracing::warn!(%error, "could not delete a finished stage's checkpoint");
            }
        }
        Ok(())
    }

    /// Deletes the blobs among `candidates` that no artifact or checkpoint names.
    fn remove_unnamed_blobs<'b>(
        &self,
        candidates: impl Iterator<Item = &'b BlobRef>,
    ) -> Result<(), StoreError> {
        let mut named = std::collections::BTreeSet::new();
        for artifact in self.artifacts()? {
            named.extend(artifact.outputs.into_values().map(|b| b.hash));
        }
        for checkpoint in self.checkpoints()? {
            named.extend(checkpoint.files.into_values().map(|b| b.hash));
        }
        for blob in candidates {
            if !named.contains(&blob.hash) {
                self.blobs.remove(&blob.hash)?;
            }
        }
        Ok(())
    }

    /// Forgets an artifact (its blobs stay until gc).
    pub fn remove_artifact(&self, key: &StageKey) -> Result<(), StoreError> {
        self.artifacts.remove(key)?;
        self.flush()
    }

    /// Checks every blob of `record`; the first problem found.
    pub fn verify_artifact(&self, record: &ArtifactRecord) -> Result<(), StoreError> {
        record
            .outputs
            .values()
            .try_for_each(|blob| self.blobs.verify(blob))
    }

    pub fn artifacts(&self) -> Result<Vec<ArtifactRecord>, StoreError> {
        self.artifacts
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    // --- runs ------------------------------------------------------------------------

    pub fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.runs.insert(run.id.as_bytes(), encode(run)?)?;
        self.flush()
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs: Vec<RunRecord> = self
            .runs
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_, _>>()?;
        runs.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        Ok(runs)
    }

    /// The run `id`; `last` means the newest.
    pub fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        if id == "last" {
            return self
                .runs()?
                .pop()
                .ok_or_else(|| StoreError::new(StoreErrorKind::UnknownRun(id.to_string())));
        }
        match self.runs.get(id)? {
            Some(bytes) => decode(&bytes),
            None => Err(StoreError::new(StoreErrorKind::UnknownRun(id.to_string()))),
        }
    }

    pub fn remove_run(&self, id: &str) -> Result<(), StoreError> {
        self.runs.remove(id)?;
        self.flush()
    }

    // --- checkpoints -----------------------------------------------------------------

    /// Records a checkpoint of the stage `key`. Its blobs must already be stored. The
    /// checkpoint it replaces is deleted once the new one is durable (its blobs, unless
    /// something else names them).
    pub fn save_checkpoint(&self, checkpoint: &CheckpointRecord) -> Result<(), StoreError> {
        let replaced = self.checkpoint(&checkpoint.key)?;
        self.checkpoints
            .insert(checkpoint.key.as_bytes(), encode(checkpoint)?)?;
        self.flush()?;
        if let Some(replaced) = replaced {
            if let Err(error) = self.remove_unnamed_blobs(replaced.files.values()) {
                tracing::warn!(%error, "could not delete a replaced checkpoint");
            }
        }
        Ok(())
    }

    pub fn checkpoint(&self, key: &StageKey) -> Result<Option<CheckpointRecord>, StoreError> {
        self.checkpoints.get(key)?.map(|b| decode(&b)).transpose()
    }

    pub fn remove_checkpoint(&self, key: &StageKey) -> Result<(), StoreError> {
        self.checkpoints.remove(key)?;
        self.flush()
    }

    pub fn checkpoints(&self) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.checkpoints
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    // --- metric series ---------------------------------------------------------------

    fn metric_key(key: &StageKey, step: u64) -> Vec<u8> {
        format!("{key}/{step:020}").into_bytes()
    }

    /// Records the metrics of one step of the stage `key` (replacing a previous value of
    /// that step, as a resumed stage re-logs the steps after its checkpoint).
    pub fn log_metrics(&self, key: &StageKey, point: &MetricPoint) -> Result<(), StoreError> {
        self.metrics
            .insert(Self::metric_key(key, point.step), encode(point)?)?;
        Ok(())
    }

    /// Drops the points of stage `key` after `step` (a resume restarts there).
    pub fn truncate_metrics(&self, key: &StageKey, after_step: u64) -> Result<(), StoreError> {
        let start = Self::metric_key(key, after_step.saturating_add(1));
        let end = format!("{key}0").into_bytes(); // '0' sorts right after '/'
        for entry in self.metrics.range(start..end) {
            let (k, _) = entry?;
            self.metrics.remove(k)?;
        }
        Ok(())
    }

    /// The metric series of the stage `key`, by step.
    pub fn metrics(&self, key: &StageKey) -> Result<Vec<MetricPoint>, StoreError> {
        self.metrics
            .scan_prefix(format!("{key}/").as_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    fn remove_metrics(&self, key: &StageKey) -> Result<(), StoreError> {
        for entry in self.metrics.scan_prefix(format!("{key}/").as_bytes()) {
            let (k, _) = entry?;
            self.metrics.remove(k)?;
        }
        Ok(())
    }

    // --- stage specs -----------------------------------------------------------------

    /// Records what the stage `key` is (its resolved config and inputs), so that it can be
    /// run, or its outputs re-read, from the store alone.
    pub fn save_spec<T: Serialize>(&self, key: &StageKey, spec: &T) -> Result<(), StoreError> {
        self.specs.insert(key.as_bytes(), encode(spec)?)?;
        Ok(())
    }

    pub fn spec<T: DeserializeOwned>(&self, key: &StageKey) -> Result<Option<T>, StoreError> {
        self.specs.get(key)?.map(|b| decode(&b)).transpose()
    }

    // --- progress of running stages ---------------------------------------------------

    pub fn save_progress(
        &self,
        key: &StageKey,
        progress: &StageProgress,
    ) -> Result<(), StoreError> {
        self.progress.insert(key.as_bytes(), encode(progress)?)?;
        Ok(())
    }

    pub fn progress(&self, key: &StageKey) -> Result<Option<StageProgress>, StoreError> {
        self.progress.get(key)?.map(|b| decode(&b)).transpose()
    }

    pub fn clear_progress(&self, key: &StageKey) -> Result<(), StoreError> {
        self.progress.remove(key)?;
        Ok(())
    }

    // --- stage history ---------------------------------------------------------------

    fn history_key(pipeline: &str, variant: &str, stage: &str) -> Vec<u8> {
        format!("{pipeline}\u{0}{variant}\u{0}{stage}").into_bytes()
    }

    pub fn record_history(
        &self,
        pipeline: &str,
        variant: &str,
        stage: &str,
        record: &HistoryRecord,
    ) -> Result<(), StoreError> {
        self.history
            .insert(Self::history_key(pipeline, variant, stage), encode(record)?)?;
        Ok(())
    }

    pub fn history(
        &self,
        pipeline: &str,
        variant: &str,
        stage: &str,
    ) -> Result<Option<HistoryRecord>, StoreError> {
        self.history
            .get(Self::history_key(pipeline, variant, stage))?
            .map(|b| decode(&b))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
