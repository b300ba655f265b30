//! Execute: the local-processes executor — each stage runs as a worker process of this
//! r1flow binary (`r1flow exec-stage`) on this machine, up to `--jobs` at once, through
//! the same job directories a Slurm job uses. Independent stages (ablation arms, seeds,
//! students) then run side by side.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::context::{Cancel, Progress};
use super::executor::{Event, Executor, Launch, Placement};
use super::job::{job_spec, unadopted, JobDir, TrackedJob};
use super::ExecError;
use crate::store::Store;

/// A running worker process.
struct Worker {
    job: TrackedJob,
    child: Child,
    log: PathBuf,
}

/// Runs stages as worker processes of `exe`.
pub struct LocalProcesses {
    capacity: usize,
    /// The CPU threads each worker's kernels may use (`RAYON_NUM_THREADS`), unless the user
    /// set that variable: the cores divided among the workers that can run at once.
    threads_per_worker: Option<usize>,
    exe: PathBuf,
    store_dir: PathBuf,
    running: Vec<Worker>,
    events: Vec<Event>,
    /// How far stopping went: asked to checkpoint, then killed.
    stopped: Option<bool>,
}

impl LocalProcesses {
    /// Up to `jobs` workers at once of the r1flow binary `exe`, for the store `store_dir`.
    pub fn new(jobs: usize, exe: PathBuf, store_dir: PathBuf) -> Self {
        let capacity = jobs.max(1);
        Self {
            capacity,
            threads_per_worker: threads_per_worker(capacity),
            exe,
            store_dir,
            running: Vec::new(),
            events: Vec::new(),
            stopped: None,
        }
    }
}

/// The CPU threads each of `workers` side-by-side workers gets: the machine's cores
/// divided among them (at least one each), so that two workers on two cores do not each
/// start a pool of two threads that fight for them. `None` where the user chose the pool's
/// size (`RAYON_NUM_THREADS`) or the cores cannot be counted: the worker then sizes its
/// own pool. In the portable profile (the default) the count changes no bits.
fn threads_per_worker(workers: usize) -> Option<usize> {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().ok()?.get();
    Some((cores / workers).max(1))
}

/// Sends `signal` (`TERM`, `KILL`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Executor for LocalProcesses {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn launch(
        &mut self,
        launch: Launch,
        store: &Store,
        _cancel: &Cancel,
        _progress: &mut dyn Progress,
    ) -> Result<(), ExecError> {
        let dir = JobDir::of(&self.store_dir, &launch.spec.key);
        if let Some(finished) = unadopted(&launch, &dir, store, "an earlier worker")? {
            self.events.push(Event::Finished(finished));
            return Ok(());
        }
        dir.prepare(&job_spec(&launch, &self.store_dir))?;
        let log = dir.path().join("stage.log");
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| ExecError::Job(format!("{}: {e}", log.display())))
        };
        let mut command = Command::new(&self.exe);
        if let Some(threads) = self.threads_per_worker {
            command.env("RAYON_NUM_THREADS", threads.to_string());
        }
        let child = command
            .arg("exec-stage")
            .arg("--job")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?)
            .spawn()
            .map_err(|e| {
                ExecError::Job(format!(
                    "starting worker {} for stage `{}`: {e}",
                    self.exe.display(),
                    launch.spec.name
                ))
            })?;
        let job = format!("pid {}", child.id());
        dir.write_job_id(&job)?;
        self.events.push(Event::Placed {
            index: launch.index,
            placement: Placement {
                job: Some(job),
                log: Some(log.clone()),
            },
        });
        self.running.push(Worker {
            job: TrackedJob::new(launch.index, launch.spec.key.clone(), dir),
            child,
            log,
        });
        Ok(())
    }

    fn poll(&mut self, store: &Store, wait: Duration) -> Result<Vec<Event>, ExecError> {
        let deadline = Instant::now() + wait;
        loop {
            let mut events = std::mem::take(&mut self.events);
            let mut still = Vec::with_capacity(self.running.len());
            for mut worker in self.running.drain(..) {
                events.extend(worker.job.take_in(store)?);
                let exited = worker
                    .child
                    .try_wait()
                    .map_err(|e| ExecError::Job(format!("waiting for a worker: {e}")))?;
                let Some(status) = exited else {
                    still.push(worker);
                    continue;
                };
                // What the worker wrote after the last look, then its result.
                events.extend(worker.job.take_in(store)?);
                let name = format!("worker pid {}", worker.child.id());
                let finished = match worker.job.dir.result()? {
                    Some(result) => worker.job.finished(result, store, &name),
                    None => worker.job.failed_without_result(
                        format!("{name} exited ({status}) without a result"),
                        &worker.log,
                    ),
                };
                events.push(Event::Finished(finished));
            }
            self.running = still;
            if !events.is_empty() || self.running.is_empty() || Instant::now() >= deadline {
                return Ok(events);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self, hard: bool) -> Result<(), ExecError> {
        // Each step once: a second SIGTERM makes a worker stop without its checkpoint.
        if self.stopped == Some(true) || (self.stopped == Some(false) && !hard) {
            return Ok(());
        }
        // A hard stop that comes first is a worker's first signal and its second at once.
        let signals = if hard && self.stopped.is_none() { 2 } else { 1 };
        for round in 0..signals {
            if round > 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            for worker in &self.running {
                signal(worker.child.id(), "TERM");
            }
        }
        if hard {
            // The second signal makes a worker exit at once, ending the verifier programs
            // it runs (each in its own process group, which a SIGKILL of the worker would
            // leave behind); a worker that does not exit in a moment is killed.
            std::thread::sleep(Duration::from_millis(300));
            for worker in &mut self.running {
                let _ = worker.child.kill();
            }
        }
        self.stopped = Some(hard);
        Ok(())
    }

    fn idle(&self) -> bool {
        self.running.is_empty() && self.events.is_empty()
    }
}
