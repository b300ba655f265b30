//! Execute: running a plan — the context a running stage sees, the runner each stage kind
//! registers (`StageRunner`, implemented above this module by `crate::runners`), and the
//! local executor that reuses, resumes, runs and records.

mod context;
mod executor;
mod in_process;
mod io;
mod job;
mod live;
mod local_processes;
mod provenance;
mod scheduler;
mod slurm;
mod status;
mod tensorboard;
mod worker;

pub use context::{Cancel, Progress, StageContext, StageError, StageOutput};
pub use executor::{Event, Executor, Finished, Launch, Outcome, Placement};
pub use in_process::InProcess;
pub use io::StageIo;
pub use job::{
    JobDir, JobIngest, JobProgress, JobResult, JobSpec, JobStatus, JOBS_DIR, JOB_FORMAT,
};
pub use local_processes::LocalProcesses;
pub use provenance::here;
pub use scheduler::{execute, ExecError, Reporter, RunOptions, StageRunner};
pub use slurm::{Slurm, SlurmOptions};
pub use status::stage_states;
pub use worker::run_job;
