//! CLI `run`: execute a manifest — reuse what the store holds, resume what was interrupted,
//! run the rest — with a line per stage, a progress bar while one runs, and Ctrl-C handling
//! (first: checkpoint and stop; second: stop now).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use r1flow::exec::{
    execute, Cancel, Executor, InProcess, LocalProcesses, Placement, Progress, Reporter,
    RunOptions, Slurm, SlurmOptions,
};
use r1flow::plan::StageSpec;
use r1flow::runners::Runners;
use r1flow::store::{LockMode, RunStatus, StageRun, StageStatus, Store};

use super::pipelines::{load_plan, ExecutorKind, PipelineArgs};
use super::store_dir::StoreArgs;
use super::terminal::say;

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Run only this stage (repeatable); its inputs must be in the store.
    #[arg(long, value_name = "STAGE")]
    only: Vec<String>,
    /// Run this stage and what it depends on, nothing after (repeatable).
    #[arg(long, value_name = "STAGE")]
    until: Vec<String>,
    /// Run this stage even if its result is in the store (repeatable).
    #[arg(long, value_name = "STAGE")]
    force: Vec<String>,
    /// Wait for another r1flow process using the store instead of failing.
    #[arg(long)]
    wait: bool,
    /// Where stages run: `local` (this machine) or `slurm` (one batch job per stage; the
    /// store must be on a filesystem the compute nodes share).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Most stages in flight at once: default 1 locally, unlimited on Slurm. Locally, more
    /// than 1 runs each stage as a worker process, so independent stages run side by side,
    /// and the cores are divided among the workers (unless `RAYON_NUM_THREADS` is set).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Slurm partition of every job (`sbatch --partition`).
    #[arg(long, value_name = "NAME", env = "R1FLOW_SLURM_PARTITION")]
    slurm_partition: Option<String>,
    /// Slurm account of every job (`sbatch --account`).
    #[arg(long, value_name = "NAME", env = "R1FLOW_SLURM_ACCOUNT")]
    slurm_account: Option<String>,
    /// Another `sbatch` argument for every job (repeatable), e.g. `--slurm-arg=--qos=high`.
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    slurm_args: Vec<String>,
    /// Write the stages' TensorBoard event files under DIR/RUN_ID (default:
    /// `<store>/tensorboard`); `tensorboard --logdir DIR` shows them live.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// The r1flow binary the workers run (default: this one); on a cluster, a path every
    /// node sees.
    #[arg(long, value_name = "PATH", env = "R1FLOW_WORKER_BIN")]
    worker_bin: Option<PathBuf>,
}

/// Prints one line per stage and drives a progress bar on a terminal.
struct TerminalReporter {
    /// Whether stages run in this process (one at a time: a progress bar each).
    bars: bool,
    bar: Option<ProgressBar>,
    sink: BarProgress,
}

struct BarProgress {
    bar: Option<ProgressBar>,
}

impl Progress for BarProgress {
    fn update(&mut self, step: u64, total: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(step);
            bar.set_message(message.to_string());
        }
    }
}

impl Reporter for TerminalReporter {
    fn stage_started(
        &mut self,
        index: usize,
        total: usize,
        spec: &StageSpec,
        resume_step: Option<u64>,
    ) {
        let resume = resume_step
            .map(|s| format!(", resuming from step {s}"))
            .unwrap_or_default();
        say!(
            "[{index}/{total}] {} ({}) {}: running{resume}",
            spec.name,
            spec.config.kind(),
            spec.key.short()
        );
        if self.bars && super::terminal::stderr_is_terminal() {
            let bar = ProgressBar::new(0);
            if let Ok(style) =
                ProgressStyle::with_template("      {bar:30} {pos}/{len} steps  eta {eta}  {msg}")
            {
                bar.set_style(style);
            }
            self.bar = Some(bar.clone());
            self.sink.bar = Some(bar);
        }
    }

    fn progress(&mut self) -> &mut dyn Progress {
        &mut self.sink
    }

    fn stage_finished(&mut self, stage: &StageRun) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.sink.bar = None;
        let what = match stage.status {
            StageStatus::Cached => "cached".to_string(),
            StageStatus::Ran => format!("ran in {:.1}s", stage.duration_s),
            StageStatus::Resumed => format!("resumed and finished in {:.1}s", stage.duration_s),
            StageStatus::Interrupted => stage.error.clone().unwrap_or_else(|| "interrupted".into()),
            StageStatus::Failed => format!(
                "FAILED: {}",
                stage.error.as_deref().unwrap_or("unknown error")
            ),
            StageStatus::Skipped => format!(
                "skipped: {}",
                stage.error.as_deref().unwrap_or("not selected")
            ),
            StageStatus::Pending => "pending".into(),
            StageStatus::Running => "running".into(),
        };
        say!(
            "      {} ({}) {}: {what}",
            stage.name,
            stage.kind,
            stage.key.short()
        );
    }

    fn warn(&mut self, message: &str) {
        say!("warning: {message}");
    }

    fn stage_placed(&mut self, stage: &StageRun, placement: &Placement) {
        if let Some(job) = &placement.job {
            let log = placement
                .log
                .as_ref()
                .map(|l| format!(", log {}", l.display()))
                .unwrap_or_default();
            say!(
                "      {} ({}) {}: {job}{log}",
                stage.name,
                stage.kind,
                stage.key.short()
            );
        }
    }

    fn stage_progress(&mut self, stage: &StageRun, step: u64, total: u64) {
        if !super::terminal::stderr_is_terminal() {
            return;
        }
        say!(
            "      {} ({}) {}: step {step}/{total}",
            stage.name,
            stage.kind,
            stage.key.short()
        );
    }
}

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let Some(plan) = load_plan(&args.pipeline, args.executor)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store_dir = args.store.resolve(Some(&args.pipeline.file));
    let mode = if args.wait {
        LockMode::Wait
    } else {
        LockMode::Fail
    };
    let store = Store::open(&store_dir, mode)?;
    if let Some(pid) = store.took_over_from() {
        say!("note: took over the store lock left by process {pid}, which is no longer running");
    }
    // Absolute, so that workers (elsewhere, in other directories) find it.
    let store_dir =
        std::fs::canonicalize(store.dir()).unwrap_or_else(|_| store.dir().to_path_buf());
    let worker_bin = match &args.worker_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("finding this r1flow binary for the workers")?,
    };
    let in_process = args.executor == ExecutorKind::Local && args.jobs.unwrap_or(1) <= 1;
    let cancel = Cancel::default();
    let handler_cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        handler_cancel.request();
        let presses = handler_cancel.presses();
        // A stage in this process stops only between steps: a second Ctrl-C exits. Jobs
        // elsewhere are cancelled by the run loop, so only a third exits at once.
        if presses >= 3 || (in_process && presses >= 2) {
            say!("\nstopping now");
            // A verifier runs in its own process group, out of the terminal's reach.
            r1flow::rewards::command::kill_running_verifiers();
            std::process::exit(130);
        }
        if presses == 2 {
            say!("\ncancelling every job now; Ctrl-C again to exit without waiting");
        } else {
            say!("\nstopping after the current step (a checkpoint is written); Ctrl-C again to stop at once");
        }
    });
    // A closed stderr or stdout stops the run as a first Ctrl-C does: at the next step,
    // with a checkpoint, and the store released; the exit code says why.
    let closed_cancel = cancel.clone();
    super::terminal::on_output_closed(move || closed_cancel.request_without_press());
    let options = RunOptions {
        only: args.only.clone(),
        until: args.until.clone(),
        force: args.force.clone(),
        tensorboard: args.tensorboard.clone(),
    };
    let mut reporter = TerminalReporter {
        bars: in_process,
        bar: None,
        sink: BarProgress { bar: None },
    };
    let mut executor: Box<dyn Executor> = match args.executor {
        ExecutorKind::Local if in_process => Box::new(InProcess::new(&Runners)),
        ExecutorKind::Local => Box::new(LocalProcesses::new(
            args.jobs.unwrap_or(1),
            worker_bin,
            store_dir,
        )),
        ExecutorKind::Slurm => {
            let mut options = SlurmOptions::new(worker_bin);
            options.partition = args.slurm_partition.clone();
            options.account = args.slurm_account.clone();
            options.extra_args = args.slurm_args.clone();
            options.jobs = args.jobs;
            Box::new(Slurm::new(options, store_dir))
        }
    };
    let record = execute(
        &plan,
        &store,
        &args.pipeline.file,
        &options,
        executor.as_mut(),
        &cancel,
        &mut reporter,
    )?;
    let ran = record.count(StageStatus::Ran) + record.count(StageStatus::Resumed);
    let cached = record.count(StageStatus::Cached);
    say!(
        "run {}: {} — {ran} ran, {cached} cached, store {}",
        record.id,
        match record.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted (run again to resume)",
            RunStatus::Running => "running",
        },
        store.dir().display()
    );
    Ok(match record.status {
        _ if super::terminal::output_closed() => ExitCode::from(super::terminal::CLOSED_EXIT_CODE),
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Interrupted => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    })
}
