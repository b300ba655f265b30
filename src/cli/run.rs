//! CLI `run`: execute a manifest — reuse what the store holds, resume what was interrupted,
//! run the rest — with a line per stage, a progress bar while one runs, and Ctrl-C handling
//! (first: checkpoint and stop; second: stop now).

use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use r1flow::exec::{execute, Cancel, Progress, Reporter, RunOptions};
use r1flow::plan::StageSpec;
use r1flow::runners::Runners;
use r1flow::store::{LockMode, RunStatus, StageRun, StageStatus, Store};

use super::pipelines::{load_plan, PipelineArgs};
use super::store_dir::StoreArgs;

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
}

/// Prints one line per stage and drives a progress bar on a terminal.
struct TerminalReporter {
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

fn short(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
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
        eprintln!(
            "[{index}/{total}] {} ({}) {}: running{resume}",
            spec.name,
            spec.config.kind(),
            short(&spec.key)
        );
        if std::io::stderr().is_terminal() {
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
        };
        eprintln!(
            "      {} ({}) {}: {what}",
            stage.name,
            stage.kind,
            short(&stage.key)
        );
    }

    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let Some(plan) = load_plan(&args.pipeline)? else {
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
        eprintln!(
            "note: took over the store lock left by process {pid}, which is no longer running"
        );
    }
    let cancel = Cancel::default();
    let handler_cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        handler_cancel.request();
        if handler_cancel.presses() >= 2 {
            eprintln!("\nstopping now");
            // A verifier runs in its own process group, out of the terminal's reach.
            r1flow::rewards::command::kill_running_verifiers();
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current step (a checkpoint is written); Ctrl-C again to stop at once");
    });
    let options = RunOptions {
        only: args.only.clone(),
        until: args.until.clone(),
        force: args.force.clone(),
    };
    let mut reporter = TerminalReporter {
        bar: None,
        sink: BarProgress { bar: None },
    };
    let record = execute(
        &plan,
        &store,
        &args.pipeline.file,
        &options,
        &Runners,
        &cancel,
        &mut reporter,
    )?;
    let ran = record.count(StageStatus::Ran) + record.count(StageStatus::Resumed);
    let cached = record.count(StageStatus::Cached);
    eprintln!(
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
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Interrupted => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    })
}
