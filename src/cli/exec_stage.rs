//! CLI `exec-stage` (hidden): the worker — runs one stage instance from a job directory
//! the coordinator wrote (`r1flow run --executor slurm`, or local `--jobs N`). SIGINT,
//! SIGTERM or SIGHUP (what Slurm sends before a time limit or on preemption) make the stage
//! checkpoint at its next step and stop; a second signal stops at once.

use std::path::PathBuf;
use std::process::ExitCode;

use super::terminal::say;
use r1flow::exec::{run_job, Cancel, JobDir, JobStatus};
use r1flow::runners::Runners;

#[derive(Debug, clap::Args)]
pub(crate) struct ExecStageArgs {
    /// The job directory (`<store>/jobs/<key>`) holding `job.json`.
    #[arg(long, value_name = "DIR")]
    job: PathBuf,
}

pub(crate) fn run(args: &ExecStageArgs) -> anyhow::Result<ExitCode> {
    let cancel = Cancel::default();
    let handler_cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        handler_cancel.request();
        if handler_cancel.presses() >= 2 {
            say!("r1flow exec-stage: stopping now");
            // A verifier runs in its own process group: it would outlive this exit.
            r1flow::rewards::command::kill_running_verifiers();
            std::process::exit(130);
        }
        say!("r1flow exec-stage: signal received, checkpointing at the next step");
    });
    let log = |line: &str| {
        // The job's log is a file; a failed write must not stop the stage.
        let _ = super::terminal::print_text(&format!("{line}\n"));
    };
    let result = run_job(&JobDir::at(args.job.clone()), &Runners, &cancel, &log)?;
    match result.status {
        JobStatus::Succeeded => {
            super::terminal::print_text(&format!(
                "r1flow exec-stage: finished in {:.1}s\n",
                result.duration_s
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        JobStatus::Interrupted => {
            super::terminal::print_text(&format!(
                "r1flow exec-stage: interrupted, checkpoint at step {}\n",
                result.step.unwrap_or(0)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        JobStatus::Failed => {
            say!(
                "r1flow exec-stage: FAILED: {}",
                result.error.as_deref().unwrap_or("unknown error")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
