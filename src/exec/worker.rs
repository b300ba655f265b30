//! Execute: the worker side of a job directory — `r1flow exec-stage --job DIR` runs one
//! stage instance from its `job.json`, reading input blobs and writing output and
//! checkpoint blobs in the store's blob directory, and everything else (metric points,
//! checkpoints, progress, the result) in the job directory. It never opens the store's
//! index, which the coordinator owns. A job requeued by Slurm resumes from the newest
//! checkpoint it finds.

use std::time::Instant;

use super::context::{Cancel, Progress, StageContext, StageError};
use super::io::StageIo;
use super::job::{JobDir, JobProgress, JobResult, JobSpec, JobStatus, JOB_FORMAT};
use super::provenance::here;
use super::{ExecError, StageRunner};
use crate::plan::StageKey;
use crate::store::{
    ArtifactRecord, Blobs, CheckpointRecord, MetricPoint, StoreError, StoreErrorKind,
};

/// A worker's reads and writes: inputs from the job description, the store's blob files,
/// everything else into the job directory.
struct JobDirIo<'j> {
    dir: &'j JobDir,
    job: &'j JobSpec,
    blobs: Blobs,
}

fn io_error(error: ExecError) -> StoreError {
    StoreError::new(StoreErrorKind::Record(error.to_string()))
}

impl StageIo for JobDirIo<'_> {
    fn artifact(&self, key: &StageKey) -> Result<Option<ArtifactRecord>, StoreError> {
        Ok(self.job.inputs.get(key).cloned())
    }

    fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    fn save_checkpoint(&self, record: &CheckpointRecord) -> Result<(), StoreError> {
        self.dir.write_checkpoint(record).map_err(io_error)
    }

    fn log_metrics(&self, _key: &StageKey, point: &MetricPoint) -> Result<(), StoreError> {
        self.dir.append_metrics(point).map_err(io_error)
    }
}

/// Progress as lines in the job's log and, at most once a second, `progress.json`.
struct JobProgressSink<'j> {
    dir: &'j JobDir,
    log: &'j (dyn Fn(&str) + Sync),
    last_written: Option<Instant>,
}

impl Progress for JobProgressSink<'_> {
    fn update(&mut self, step: u64, total: u64, message: &str) {
        let due = self
            .last_written
            .is_none_or(|t| t.elapsed().as_secs_f64() >= 1.0)
            || step == total;
        if due {
            (self.log)(&format!("step {step}/{total} {message}"));
            let progress = JobProgress {
                step,
                total,
                message: message.to_string(),
            };
            // Progress is informational: a failed write does not stop the stage.
            let _ = self.dir.write_progress(&progress);
            self.last_written = Some(Instant::now());
        }
    }
}

/// Runs the job in `dir` with `runner`; its result is also written to `dir`.
/// `log` takes the lines for the job's log (the CLI prints them to stdout, which the
/// executor sends to the log file).
pub fn run_job(
    dir: &JobDir,
    runner: &dyn StageRunner,
    cancel: &Cancel,
    log: &(dyn Fn(&str) + Sync),
) -> Result<JobResult, ExecError> {
    let job = dir.spec()?;
    if job.format != JOB_FORMAT {
        return Err(ExecError::Job(format!(
            "{}: job format {} (this r1flow reads {JOB_FORMAT}); use the same r1flow binary as the coordinator",
            dir.path().display(),
            job.format
        )));
    }
    // A requeued job finds its previous attempt's result: this attempt replaces it.
    dir.clear_result()?;
    let resume = match (dir.checkpoint()?, job.resume.clone()) {
        (Some(own), Some(given)) if own.step >= given.step && own.key == job.spec.key => Some(own),
        (Some(own), None) if own.key == job.spec.key => Some(own),
        (_, given) => given,
    };
    let resumed_from_step = resume.as_ref().map(|c| c.step);
    log(&format!(
        "r1flow exec-stage: stage `{}` ({}) key {}{}",
        job.spec.name,
        job.spec.config.kind(),
        job.spec.key.short(),
        resumed_from_step
            .map(|s| format!(", resuming from step {s}"))
            .unwrap_or_default()
    ));
    let io = JobDirIo {
        dir,
        job: &job,
        blobs: Blobs::for_worker(&job.store, dir.blob_tmp())?,
    };
    let mut progress = JobProgressSink {
        dir,
        log,
        last_written: None,
    };
    let started = Instant::now();
    let outcome = {
        let mut context = StageContext::new(&io, &job.spec, cancel, &mut progress, resume);
        runner.run(&mut context)
    };
    let duration_s = started.elapsed().as_secs_f64();
    let result = match outcome {
        Ok(output) => {
            let mut outputs = std::collections::BTreeMap::new();
            for (name, bytes) in &output.files {
                outputs.insert(name.clone(), io.blobs.put(bytes)?);
            }
            JobResult {
                status: JobStatus::Succeeded,
                outputs,
                metrics: output.metrics,
                error: None,
                step: None,
                duration_s,
                resumed_from_step,
                produced: Some(here(job.spec.backend)),
            }
        }
        Err(StageError::Cancelled { step }) => JobResult {
            status: JobStatus::Interrupted,
            outputs: Default::default(),
            metrics: Default::default(),
            error: None,
            step: Some(step),
            duration_s,
            resumed_from_step,
            produced: None,
        },
        Err(error) => JobResult {
            status: JobStatus::Failed,
            outputs: Default::default(),
            metrics: Default::default(),
            error: Some(error.to_string()),
            step: None,
            duration_s,
            resumed_from_step,
            produced: None,
        },
    };
    dir.write_result(&result)?;
    Ok(result)
}
