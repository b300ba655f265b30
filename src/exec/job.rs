//! Execute: the job directory — how the coordinator and a worker process (`r1flow
//! exec-stage`, run locally or as a Slurm job) talk, through files on a filesystem both
//! see. The coordinator writes `job.json` (the stage, its inputs' artifacts, the checkpoint
//! to resume from); the worker writes blobs into the store's blob directory, and into the
//! job directory its metric points (`metrics.jsonl`, appended), its latest checkpoint
//! (`checkpoint.json`), its progress and finally `result.json` — every whole file by
//! write-beside-and-rename, so a reader never sees half of one. The coordinator alone
//! writes the store's index: it ingests these files, verifying every blob it adopts.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ExecError;
use crate::plan::{StageKey, StageSpec};
use crate::store::{ArtifactRecord, BlobRef, CheckpointRecord, MetricPoint, Provenance, Store};

/// Bumped when the files' meaning changes; a worker refuses a job of another version.
pub const JOB_FORMAT: u32 = 1;

/// Where a store keeps its job directories.
pub const JOBS_DIR: &str = "jobs";

const SPEC_FILE: &str = "job.json";
const RESULT_FILE: &str = "result.json";
const CHECKPOINT_FILE: &str = "checkpoint.json";
const METRICS_FILE: &str = "metrics.jsonl";
const PROGRESS_FILE: &str = "progress.json";
const JOB_ID_FILE: &str = "job-id";

/// What a worker is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub format: u32,
    /// The run that launched it.
    pub run: String,
    /// The store whose blob directory the worker reads and writes.
    pub store: PathBuf,
    pub spec: StageSpec,
    /// The artifacts of its upstream stages, by key.
    pub inputs: BTreeMap<StageKey, ArtifactRecord>,
    /// The checkpoint to resume from (a newer one in the job directory wins).
    pub resume: Option<CheckpointRecord>,
}

/// How a worker's stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    /// Stopped on a signal after a checkpoint; a new job resumes it.
    Interrupted,
    Failed,
}

/// What a worker leaves when its stage ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub status: JobStatus,
    #[serde(default)]
    pub outputs: BTreeMap<String, BlobRef>,
    /// NaN and infinities are written as `null` and read back as NaN, as in the store.
    #[serde(default, deserialize_with = "crate::store::metric_values")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub error: Option<String>,
    /// The checkpoint step it stopped at (interrupted).
    #[serde(default)]
    pub step: Option<u64>,
    #[serde(deserialize_with = "crate::store::number_or_nan")]
    pub duration_s: f64,
    #[serde(default)]
    pub resumed_from_step: Option<u64>,
    #[serde(default)]
    pub produced: Option<Provenance>,
}

/// A running stage's last progress report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    pub step: u64,
    pub total: u64,
    pub message: String,
}

/// The job directory of one stage instance: `<store>/jobs/<key>/`.
#[derive(Debug, Clone)]
pub struct JobDir {
    path: PathBuf,
}

fn job_error(path: &Path, what: impl std::fmt::Display) -> ExecError {
    ExecError::Job(format!("{}: {what}", path.display()))
}

impl JobDir {
    /// The job directory of stage `key` in the store at `store_dir`.
    pub fn of(store_dir: &Path, key: &StageKey) -> Self {
        Self {
            path: store_dir.join(JOBS_DIR).join(key.as_str()),
        }
    }

    /// A job directory given by path (the worker's `--job`).
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Where the worker's temporary blob files go (on the store's filesystem, private to
    /// this job, so that concurrent writers never touch each other's files).
    pub fn blob_tmp(&self) -> PathBuf {
        self.file("tmp")
    }

    /// Writes `value` as `name`, atomically: beside it, fsynced, renamed.
    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ExecError> {
        let target = self.file(name);
        let temp = self.file(&format!(".{name}.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| job_error(&target, e))?;
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &target)
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            job_error(&target, e)
        })
    }

    fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ExecError> {
        let path = self.file(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| job_error(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(job_error(&path, e)),
        }
    }

    /// Creates the directory for a new attempt: the job description written, a previous
    /// attempt's result and progress removed (its checkpoint and metrics stay).
    pub fn prepare(&self, job: &JobSpec) -> Result<(), ExecError> {
        fs::create_dir_all(self.blob_tmp()).map_err(|e| job_error(&self.path, e))?;
        for stale in [RESULT_FILE, PROGRESS_FILE, JOB_ID_FILE] {
            match fs::remove_file(self.file(stale)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(job_error(&self.file(stale), e))
                }
                _ => {}
            }
        }
        self.write_json(SPEC_FILE, job)
    }

    pub fn spec(&self) -> Result<JobSpec, ExecError> {
        self.read_json(SPEC_FILE)?
            .ok_or_else(|| job_error(&self.file(SPEC_FILE), "no job description"))
    }

    pub fn result(&self) -> Result<Option<JobResult>, ExecError> {
        self.read_json(RESULT_FILE)
    }

    pub fn write_result(&self, result: &JobResult) -> Result<(), ExecError> {
        self.write_json(RESULT_FILE, result)
    }

    /// Removes the result of an attempt that a requeued job is about to replace.
    pub fn clear_result(&self) -> Result<(), ExecError> {
        match fs::remove_file(self.file(RESULT_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(job_error(&self.file(RESULT_FILE), e))
            }
            _ => Ok(()),
        }
    }

    pub fn checkpoint(&self) -> Result<Option<CheckpointRecord>, ExecError> {
        self.read_json(CHECKPOINT_FILE)
    }

    pub fn write_checkpoint(&self, record: &CheckpointRecord) -> Result<(), ExecError> {
        self.write_json(CHECKPOINT_FILE, record)
    }

    pub fn progress(&self) -> Result<Option<JobProgress>, ExecError> {
        self.read_json(PROGRESS_FILE)
    }

    pub fn write_progress(&self, progress: &JobProgress) -> Result<(), ExecError> {
        self.write_json(PROGRESS_FILE, progress)
    }

    /// Appends one metric point (a whole line, flushed).
    pub fn append_metrics(&self, point: &MetricPoint) -> Result<(), ExecError> {
        let path = self.file(METRICS_FILE);
        let mut line = serde_json::to_vec(point).map_err(|e| job_error(&path, e))?;
        line.push(b'\n');
        let appended = (|| {
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&line)?;
            file.flush()
        })();
        appended.map_err(|e| job_error(&path, e))
    }

    /// The whole metric lines written after byte `offset`, and the offset after them.
    pub fn metrics_since(&self, offset: u64) -> Result<(Vec<MetricPoint>, u64), ExecError> {
        let path = self.file(METRICS_FILE);
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
            Err(e) => return Err(job_error(&path, e)),
        };
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut text))
            .map_err(|e| job_error(&path, e))?;
        // Only whole lines: the last one may still be being written.
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut points = Vec::new();
        for line in text[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            points.push(serde_json::from_slice(line).map_err(|e| job_error(&path, e))?);
        }
        Ok((points, offset + complete as u64))
    }

    /// Records the executor's id of the job running this directory (`slurm 1234`).
    pub fn write_job_id(&self, id: &str) -> Result<(), ExecError> {
        fs::write(self.file(JOB_ID_FILE), id).map_err(|e| job_error(&self.file(JOB_ID_FILE), e))
    }

    pub fn job_id(&self) -> Option<String> {
        fs::read_to_string(self.file(JOB_ID_FILE))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// A finished result of this stage that a coordinator has not adopted yet (it was
    /// stopped while the job ran): the stage need not run again.
    pub fn unadopted_result(&self, key: &StageKey) -> Result<Option<JobResult>, ExecError> {
        let same_stage = self.spec().is_ok_and(|job| &job.spec.key == key);
        Ok(self
            .result()?
            .filter(|r| same_stage && r.status == JobStatus::Succeeded))
    }

    /// After the coordinator stored the stage's artifact: only the description and the
    /// logs stay, so that a forced re-run starts afresh.
    pub fn retire(&self) -> Result<(), ExecError> {
        for name in [RESULT_FILE, CHECKPOINT_FILE, METRICS_FILE, PROGRESS_FILE] {
            match fs::remove_file(self.file(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(job_error(&self.file(name), e))
                }
                _ => {}
            }
        }
        match fs::remove_dir_all(self.blob_tmp()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(job_error(&self.blob_tmp(), e))
            }
            _ => Ok(()),
        }
    }

    /// The last `lines` lines of the log at `path`, for an error message.
    pub fn log_tail(path: &Path, lines: usize) -> String {
        let Ok(bytes) = fs::read(path) else {
            return format!("(no log at {})", path.display());
        };
        let start = bytes.len().saturating_sub(64 * 1024);
        let text = String::from_utf8_lossy(&bytes[start..]);
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// What the coordinator has taken in of one running job.
#[derive(Debug, Clone, Default)]
pub struct JobIngest {
    metrics_offset: u64,
    checkpoint_step: Option<u64>,
}

impl JobIngest {
    /// Records in `store` the metric points and the checkpoint `dir`'s worker wrote since
    /// the last call; returns its progress, if it reported any.
    pub fn take_in(
        &mut self,
        dir: &JobDir,
        key: &StageKey,
        store: &Store,
    ) -> Result<Option<JobProgress>, ExecError> {
        let (points, offset) = dir.metrics_since(self.metrics_offset)?;
        for point in &points {
            store.log_metrics(key, point)?;
        }
        self.metrics_offset = offset;
        if let Some(checkpoint) = dir.checkpoint()? {
            if Some(checkpoint.step) != self.checkpoint_step && &checkpoint.key == key {
                for blob in checkpoint.files.values() {
                    store.blobs().verify(blob)?;
                }
                store.save_checkpoint(&checkpoint)?;
                self.checkpoint_step = Some(checkpoint.step);
            }
        }
        dir.progress()
    }
}

/// A job the coordinator is waiting for, and what it has taken in of it.
#[derive(Debug)]
pub(super) struct TrackedJob {
    /// The stage's index in the plan.
    pub index: usize,
    pub key: StageKey,
    pub dir: JobDir,
    pub ingest: JobIngest,
    pub started: std::time::Instant,
    pub last_progress: Option<(u64, u64)>,
}

impl TrackedJob {
    pub(super) fn new(index: usize, key: StageKey, dir: JobDir) -> Self {
        Self {
            index,
            key,
            dir,
            ingest: JobIngest::default(),
            started: std::time::Instant::now(),
            last_progress: None,
        }
    }

    /// Takes in what the worker wrote; a progress event when it moved on.
    pub(super) fn take_in(&mut self, store: &Store) -> Result<Option<super::Event>, ExecError> {
        let progress = self.ingest.take_in(&self.dir, &self.key, store)?;
        Ok(progress.and_then(|p| {
            let now = (p.step, p.total);
            (self.last_progress != Some(now)).then(|| {
                self.last_progress = Some(now);
                super::Event::Progress {
                    index: self.index,
                    step: p.step,
                    total: p.total,
                }
            })
        }))
    }

    /// The scheduler's view of the worker's `result`: outputs are adopted only when every
    /// blob verifies. `job` names the job in messages (`slurm job 12`).
    pub(super) fn finished(&self, result: JobResult, store: &Store, job: &str) -> super::Finished {
        let outcome = match result.status {
            JobStatus::Succeeded => {
                match result
                    .outputs
                    .values()
                    .try_for_each(|blob| store.blobs().verify(blob))
                {
                    Ok(()) => super::Outcome::Succeeded {
                        outputs: result.outputs,
                        metrics: result.metrics,
                        produced: result.produced,
                    },
                    Err(error) => super::Outcome::Failed {
                        error: format!(
                            "{job} finished, but an output it wrote is unusable: {error}"
                        ),
                    },
                }
            }
            JobStatus::Interrupted => super::Outcome::Interrupted {
                step: result.step.unwrap_or(0),
            },
            JobStatus::Failed => super::Outcome::Failed {
                error: result
                    .error
                    .unwrap_or_else(|| format!("{job} failed without a message")),
            },
        };
        super::Finished {
            index: self.index,
            outcome,
            duration_s: result.duration_s,
            resumed_from_step: result.resumed_from_step,
        }
    }

    /// A failure that left no result: what the executor knows, and the log's last lines.
    pub(super) fn failed_without_result(&self, why: String, log: &Path) -> super::Finished {
        super::Finished {
            index: self.index,
            outcome: super::Outcome::Failed {
                error: format!(
                    "{why}; last lines of {}:\n{}",
                    log.display(),
                    JobDir::log_tail(log, 12)
                ),
            },
            duration_s: self.started.elapsed().as_secs_f64(),
            resumed_from_step: None,
        }
    }
}

/// The outcome of `launch` when its job directory holds a finished result a coordinator
/// never adopted (it was stopped while the job ran): the stage need not run again.
pub(super) fn unadopted(
    launch: &super::Launch,
    dir: &JobDir,
    store: &Store,
    who: &str,
) -> Result<Option<super::Finished>, ExecError> {
    Ok(dir.unadopted_result(&launch.spec.key)?.map(|result| {
        TrackedJob::new(launch.index, launch.spec.key.clone(), dir.clone())
            .finished(result, store, who)
    }))
}

/// The job description of `launch` for the store at `store_dir`.
pub(super) fn job_spec(launch: &super::Launch, store_dir: &Path) -> JobSpec {
    JobSpec {
        format: JOB_FORMAT,
        run: launch.run.clone(),
        store: store_dir.to_path_buf(),
        spec: launch.spec.clone(),
        inputs: launch.inputs.clone(),
        resume: launch.resume.clone(),
    }
}
