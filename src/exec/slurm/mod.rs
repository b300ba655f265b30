//! Execute (Slurm): the Slurm executor — each stage that must run becomes one batch job
//! (`sbatch --parsable`) running `r1flow exec-stage` on its job directory, with the
//! stage's `resources:`. One `squeue` call per poll covers every job of the store (its
//! interval backs off while nothing changes). A job's result file is the truth; Slurm's
//! state explains a job that ended without one (failed, timed out, out of memory,
//! cancelled, lost with its node), with the last lines of its log. A job that stopped at a
//! checkpoint without being asked to (its time limit's signal, preemption without requeue)
//! is submitted again and resumes; a job Slurm requeues resumes by itself. A coordinator
//! started again finds its stages' jobs still queued or running and waits for them
//! instead of submitting them twice.

mod script;
mod squeue;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::context::{Cancel, Progress};
use super::executor::{Event, Executor, Finished, Launch, Outcome, Placement};
use super::job::{job_spec, unadopted, JobDir, JobStatus, TrackedJob};
use super::ExecError;
use crate::plan::canonical_hash;
use crate::store::Store;
use script::{job_script, ScriptSettings};
use squeue::JobState;

/// How jobs are submitted.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// More `sbatch` arguments, as given (`--qos=high`, `--constraint=a100`).
    pub extra_args: Vec<String>,
    /// Most jobs in flight at once; `None`: as many as are ready.
    pub jobs: Option<usize>,
    /// The r1flow binary the jobs run: a path the compute nodes see.
    pub exe: PathBuf,
    /// Seconds before a job's time limit at which Slurm asks it to checkpoint.
    pub signal_lead_s: u32,
    /// The Slurm commands (names on PATH, or paths).
    pub sbatch: String,
    pub squeue: String,
    pub scancel: String,
}

impl SlurmOptions {
    /// Submitting with `exe`, Slurm's defaults for everything else.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            partition: None,
            account: None,
            extra_args: Vec::new(),
            jobs: None,
            exe,
            signal_lead_s: 120,
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scancel: "scancel".into(),
        }
    }
}

/// Fastest and slowest interval between two `squeue` calls.
const POLL_MIN: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(15);
/// How long a job may be missing from `squeue` before the stage is failed (Slurm's lag
/// right after a submission, and its forgetting of old jobs).
const GRACE: Duration = Duration::from_secs(20);
/// How long a job Slurm lists as ended may go without a result file before the stage is
/// failed (a shared filesystem shows a file to other nodes with some delay).
const RESULT_GRACE: Duration = Duration::from_secs(5);
/// Times a stage is submitted again after stopping at a checkpoint on its own.
const MAX_RESUBMITS: u32 = 5;

/// One stage's job.
struct SlurmJob {
    job: TrackedJob,
    name: String,
    id: String,
    submitted: Instant,
    /// Since when Slurm has not listed it, or listed it ended without a result.
    unsettled_since: Option<Instant>,
    resubmits: u32,
    last_state: Option<JobState>,
}

impl SlurmJob {
    fn log(&self) -> PathBuf {
        self.job.dir.path().join(format!("slurm-{}.log", self.id))
    }

    fn label(&self) -> String {
        format!("slurm job {}", self.id)
    }
}

/// Runs stages as Slurm jobs.
pub struct Slurm {
    options: SlurmOptions,
    store_dir: PathBuf,
    /// The job name of every job of this store.
    job_name: String,
    jobs: Vec<SlurmJob>,
    events: Vec<Event>,
    states: BTreeMap<String, JobState>,
    next_poll: Instant,
    interval: Duration,
    stopping: bool,
}

impl Slurm {
    /// Submits stages of the store at `store_dir` (a directory every node sees).
    pub fn new(options: SlurmOptions, store_dir: PathBuf) -> Self {
        let id = canonical_hash(&serde_json::json!(store_dir.display().to_string()));
        Self {
            options,
            job_name: format!("r1flow-{}", id.get(..10).unwrap_or(&id)),
            store_dir,
            jobs: Vec::new(),
            events: Vec::new(),
            states: BTreeMap::new(),
            next_poll: Instant::now(),
            interval: POLL_MIN,
            stopping: false,
        }
    }

    /// The name every job of this store is submitted under.
    pub fn job_name(&self) -> &str {
        &self.job_name
    }

    fn refresh_states(&mut self) -> Result<(), ExecError> {
        let states = squeue::query(&self.options.squeue, &self.job_name).map_err(ExecError::Job)?;
        let changed = self
            .jobs
            .iter()
            .any(|j| states.get(&j.id) != j.last_state.as_ref());
        self.interval = if changed {
            POLL_MIN
        } else {
            (self.interval.mul_f64(1.5)).min(POLL_MAX)
        };
        self.states = states;
        self.next_poll = Instant::now() + self.interval;
        Ok(())
    }

    /// Submits the job script of `dir`; Slurm's job id.
    fn submit(&self, dir: &JobDir) -> Result<String, String> {
        let mut command = Command::new(&self.options.sbatch);
        command.arg("--parsable");
        if let Some(partition) = &self.options.partition {
            command.arg(format!("--partition={partition}"));
        }
        if let Some(account) = &self.options.account {
            command.arg(format!("--account={account}"));
        }
        command.args(&self.options.extra_args);
        command.arg(dir.path().join("job.sh"));
        let output = command
            .output()
            .map_err(|e| format!("running {}: {e}", self.options.sbatch))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "sbatch refused the job ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        // `--parsable` prints `id` or `id;cluster`.
        let id = stdout
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if id.is_empty() {
            return Err(format!("sbatch printed no job id: {stdout:?}"));
        }
        Ok(id)
    }

    fn scancel(&self, args: &[&str], ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let _ = Command::new(&self.options.scancel)
            .args(args)
            .args(ids)
            .output();
    }

    /// What to do with `job` now: `Some` when the stage ended.
    fn settle(&mut self, at: usize, store: &Store) -> Result<Option<Finished>, ExecError> {
        let state = self.states.get(&self.jobs[at].id).cloned();
        let job = &mut self.jobs[at];
        if let Some(event) = job.job.take_in(store)? {
            self.events.push(event);
        }
        if state != job.last_state {
            if let Some(state) = &state {
                let text = format!("{} ({})", job.label(), state.label());
                self.events.push(Event::Placed {
                    index: job.job.index,
                    placement: Placement {
                        job: Some(text),
                        log: Some(job.log()),
                    },
                });
            }
            job.last_state = state.clone();
        }
        let active = state.as_ref().is_some_and(JobState::active);
        let cancelled = state.as_ref().is_some_and(|s| s.state == "CANCELLED");
        match job.job.dir.result()? {
            Some(result) if result.status != JobStatus::Interrupted => {
                let label = job.label();
                self.events.push(Event::Placed {
                    index: job.job.index,
                    placement: Placement {
                        job: Some(label.clone()),
                        log: Some(job.log()),
                    },
                });
                let mut finished = job.job.finished(result, store, &label);
                if let Outcome::Failed { error } = &mut finished.outcome {
                    error.push_str(&format!(
                        " ({label}; last lines of {}:\n{})",
                        job.log().display(),
                        JobDir::log_tail(&job.log(), 12)
                    ));
                }
                Ok(Some(finished))
            }
            // A requeued job's previous attempt: it runs again and replaces this.
            Some(_) if active => Ok(None),
            Some(result) if cancelled && !self.stopping => {
                // Someone cancelled the job (scancel): it checkpointed, but is not resumed.
                let mut finished = job.job.finished(result, store, &job.label());
                finished.outcome = Outcome::Failed {
                    error: format!(
                        "{}: {}; it checkpointed at step {} (run again to resume)",
                        job.label(),
                        state.as_ref().map_or(String::new(), JobState::explain),
                        match finished.outcome {
                            Outcome::Interrupted { step } => step,
                            _ => 0,
                        }
                    ),
                };
                Ok(Some(finished))
            }
            Some(result) => {
                if self.stopping || job.resubmits >= MAX_RESUBMITS {
                    let label = job.label();
                    return Ok(Some(job.job.finished(result, store, &label)));
                }
                // Stopped at a checkpoint on its own (time limit, preemption): go on.
                job.resubmits += 1;
                job.job.dir.clear_result()?;
                let dir = job.job.dir.clone();
                let index = job.job.index;
                match self.submit(&dir) {
                    Ok(id) => {
                        dir.write_job_id(&id)?;
                        let job = &mut self.jobs[at];
                        job.id = id;
                        job.submitted = Instant::now();
                        job.unsettled_since = None;
                        job.last_state = None;
                        self.next_poll = Instant::now();
                        let label = job.label();
                        self.events.push(Event::Placed {
                            index,
                            placement: Placement {
                                job: Some(format!("{label} (resuming)")),
                                log: Some(job.log()),
                            },
                        });
                        Ok(None)
                    }
                    Err(error) => Ok(Some(Finished {
                        index,
                        outcome: Outcome::Failed { error },
                        duration_s: 0.0,
                        resumed_from_step: None,
                    })),
                }
            }
            None if active => {
                job.unsettled_since = None;
                Ok(None)
            }
            None if self.stopping && state.is_some() => {
                // Cancelled by this coordinator before it could write anything.
                Ok(Some(Finished {
                    index: job.job.index,
                    outcome: Outcome::Interrupted {
                        step: job.job.dir.checkpoint()?.map_or(0, |c| c.step),
                    },
                    duration_s: job.job.started.elapsed().as_secs_f64(),
                    resumed_from_step: None,
                }))
            }
            None => {
                // Ended without a result, or not (or no longer) listed: wait out the lag.
                let since = *job.unsettled_since.get_or_insert_with(Instant::now);
                let waited = match &state {
                    Some(_) => since.elapsed() >= RESULT_GRACE,
                    None => since.elapsed() >= GRACE && job.submitted.elapsed() >= GRACE,
                };
                if !waited {
                    return Ok(None);
                }
                let why = match &state {
                    Some(state) => format!("{}: {}", job.label(), state.explain()),
                    None => format!(
                        "{} is no longer known to Slurm and left no result (lost with its node, or purged)",
                        job.label()
                    ),
                };
                Ok(Some(job.job.failed_without_result(why, &job.log())))
            }
        }
    }
}

impl Executor for Slurm {
    fn capacity(&self) -> usize {
        self.options.jobs.unwrap_or(usize::MAX)
    }

    fn launch(
        &mut self,
        launch: Launch,
        store: &Store,
        _cancel: &Cancel,
        _progress: &mut dyn Progress,
    ) -> Result<(), ExecError> {
        let dir = JobDir::of(&self.store_dir, &launch.spec.key);
        let tracked = TrackedJob::new(launch.index, launch.spec.key.clone(), dir.clone());
        // A job of an earlier coordinator may have finished while nobody watched.
        if let Some(finished) = unadopted(&launch, &dir, store, "an earlier Slurm job")? {
            self.events.push(Event::Finished(finished));
            return Ok(());
        }
        // A job an earlier coordinator submitted for this stage may still be queued or
        // running: wait for it rather than submitting the stage twice.
        if let Some(id) = dir.job_id() {
            if self.states.is_empty() {
                self.refresh_states()?;
            }
            if self.states.get(&id).is_some_and(JobState::active) {
                let job = SlurmJob {
                    job: tracked,
                    name: launch.spec.name.clone(),
                    id: id.clone(),
                    submitted: Instant::now(),
                    unsettled_since: None,
                    resubmits: 0,
                    last_state: None,
                };
                self.events.push(Event::Placed {
                    index: launch.index,
                    placement: Placement {
                        job: Some(format!("{} (re-attached)", job.label())),
                        log: Some(job.log()),
                    },
                });
                self.jobs.push(job);
                return Ok(());
            }
        }
        dir.prepare(&job_spec(&launch, &self.store_dir))?;
        let script = job_script(&ScriptSettings {
            job_name: &self.job_name,
            exe: &self.options.exe,
            job_dir: dir.path(),
            resources: &launch.spec.resources,
            signal_lead_s: self.options.signal_lead_s,
            stage: &launch.spec.name,
        });
        let script_path = dir.path().join("job.sh");
        std::fs::write(&script_path, script)
            .map_err(|e| ExecError::Job(format!("{}: {e}", script_path.display())))?;
        match self.submit(&dir) {
            Ok(id) => {
                dir.write_job_id(&id)?;
                let job = SlurmJob {
                    job: tracked,
                    name: launch.spec.name.clone(),
                    id,
                    submitted: Instant::now(),
                    unsettled_since: None,
                    resubmits: 0,
                    last_state: None,
                };
                tracing::info!(stage = %job.name, job = %job.id, "submitted to Slurm");
                self.events.push(Event::Placed {
                    index: launch.index,
                    placement: Placement {
                        job: Some(job.label()),
                        log: Some(job.log()),
                    },
                });
                self.jobs.push(job);
                self.next_poll = Instant::now() + POLL_MIN;
                self.interval = POLL_MIN;
            }
            Err(error) => self.events.push(Event::Finished(Finished {
                index: launch.index,
                outcome: Outcome::Failed { error },
                duration_s: 0.0,
                resumed_from_step: None,
            })),
        }
        Ok(())
    }

    fn poll(&mut self, store: &Store, wait: Duration) -> Result<Vec<Event>, ExecError> {
        let deadline = Instant::now() + wait;
        loop {
            if !self.jobs.is_empty() && Instant::now() >= self.next_poll {
                self.refresh_states()?;
            }
            let mut at = 0;
            while at < self.jobs.len() {
                match self.settle(at, store)? {
                    Some(finished) => {
                        self.jobs.remove(at);
                        self.events.push(Event::Finished(finished));
                    }
                    None => at += 1,
                }
            }
            if !self.events.is_empty() || self.jobs.is_empty() || Instant::now() >= deadline {
                return Ok(std::mem::take(&mut self.events));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self, hard: bool) -> Result<(), ExecError> {
        let first = !self.stopping;
        self.stopping = true;
        let ids: Vec<String> = self.jobs.iter().map(|j| j.id.clone()).collect();
        if hard {
            self.scancel(&[], &ids);
        } else if first {
            // By Slurm's state now, not the last poll's: queued jobs have nothing to save
            // and are cancelled; running ones are signalled to checkpoint and stop.
            self.scancel(&["--state=PENDING"], &ids);
            self.scancel(&["--state=RUNNING", "--signal=USR2", "--batch"], &ids);
        }
        self.next_poll = Instant::now();
        Ok(())
    }

    fn idle(&self) -> bool {
        self.jobs.is_empty() && self.events.is_empty()
    }
}
