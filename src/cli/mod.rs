//! The CLI edge: argument parsing (clap), logging setup, and one function per command.
//! The only module that names clap; errors become `anyhow` here and nowhere else.

mod compare;
mod exec_stage;
mod gc;
mod metrics;
mod pipelines;
mod plan;
mod recover;
mod report;
mod rescore;
mod run;
mod runs;
mod schema;
mod score;
mod store_dir;
mod stored_model;
mod terminal;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use terminal::say;

/// Run DeepSeek-R1-style training pipelines from declarative YAML manifests.
#[derive(Debug, Parser)]
#[command(name = "r1flow", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log line format (the level comes from RUST_LOG, default `warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests: YAML syntax, schema, references, types, cycles, value ranges and
    /// the files they name. Reports every error with path:line:col.
    Validate(validate::ValidateArgs),
    /// Print the DAG of a manifest in execution order, with each stage's cache key, the
    /// variants that share it, and what the store holds (cached / resume / run, and why).
    Plan(plan::PlanArgs),
    /// Execute a manifest: reuse cached stages, resume interrupted ones, run the rest.
    Run(run::RunArgs),
    /// List the runs in the store, or show one (`runs show ID|last [--json]`).
    Runs(runs::RunsArgs),
    /// Print a stage's metric series of a run (CSV or JSON).
    Metrics(metrics::MetricsArgs),
    /// Write a run's self-contained HTML report and its plots (SVG and PNG): training
    /// curves of every stage, final metrics of every eval stage.
    Report(report::ReportArgs),
    /// Compare runs and manifest variants: the parameters that differ, final eval metrics
    /// (seeds as mean ± std), curves; text, Markdown, CSV or JSON.
    Compare(compare::CompareArgs),
    /// Delete what no kept run reaches (`--keep-last N`, `--dry-run`).
    Gc(gc::GcArgs),
    /// Rebuild a damaged store index from its newest readable copy (the damaged one is
    /// kept aside) and say what was lost.
    Recover(recover::RecoverArgs),
    /// Apply rewards to a stage's stored completions without generating again.
    Rescore(rescore::RescoreArgs),
    /// Grade completions r1flow did not generate (`{"completion", "answer"}` JSONL) with
    /// a reward, built in or declared in a manifest: one JSON verdict per line.
    Score(score::ScoreArgs),
    /// Sample completions from a model (HF directory, r1flow model file, `RUN/STAGE` of
    /// the store such as `last/zero`, or a preset).
    Generate(ModelCommand<r1flow::model::cli::GenerateArgs>),
    /// Write a model (HF directory, r1flow model file or `RUN/STAGE`) as a HuggingFace
    /// directory that `transformers` loads.
    Export(ModelCommand<r1flow::model::cli::ExportArgs>),
    /// Print a JSON Schema (`pipeline` by default), or write all of them to a directory.
    Schema(schema::SchemaArgs),
    /// Run one stage from a job directory (what `run --executor slurm` submits).
    #[command(hide = true)]
    ExecStage(exec_stage::ExecStageArgs),
    /// Render a batch of chat-template conversations framed on stdin, under the OS
    /// limits given, replies framed on stdout: the child every other command renders
    /// checkpoints' chat templates in (`r1flow::chat_isolation`).
    #[command(hide = true, name = "render-chat-template")]
    RenderChatTemplate(RenderChatTemplateArgs),
}

/// The limits a chat-template renderer child sets on itself.
#[derive(Debug, clap::Args)]
struct RenderChatTemplateArgs {
    /// Its address space, in bytes (RLIMIT_AS).
    #[arg(long)]
    memory_bytes: u64,
    /// Its CPU time, in seconds (RLIMIT_CPU).
    #[arg(long)]
    cpu_seconds: u64,
}

/// `generate` and `export`: the model layer's flags, and the store a `RUN/STAGE` model is
/// read from.
#[derive(Debug, clap::Args)]
struct ModelCommand<A: clap::Args> {
    #[command(flatten)]
    args: A,
    #[command(flatten)]
    store: store_dir::StoreArgs,
}

/// Parses the command line, runs the command, and turns its outcome into an exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every chat template this process renders (check's probes, a dataset stage's
    // records) is rendered in a child under OS limits.
    r1flow::chat_isolation::install();
    init_logging(cli.log_format);
    // An instruction-set cap the kernels would not understand is refused, not ignored.
    if let Err(message) = r1flow::model::kernels::profile::simd_cap_from_env() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    if let Command::Rescore(_) = &cli.command {
        // Verifiers run in their own process group, out of the terminal's reach: an
        // interrupted rescore ends them (`run` has its own handler).
        let _ = ctrlc::set_handler(|| {
            r1flow::rewards::command::kill_running_verifiers();
            std::process::exit(130);
        });
    }
    let outcome = match &cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => run::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Metrics(args) => metrics::run(args),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Rescore(args) => rescore::run(args),
        Command::Recover(args) => recover::run(args),
        Command::Score(args) => score::run(args),
        Command::Generate(ModelCommand { args, store }) => {
            let mut args = args.clone();
            stored_model::substitute(&mut args.model, &mut args.tokenizer, store).and_then(
                |_stored| {
                    r1flow::model::cli::run_generate(&args)
                        .and_then(|text| terminal::print_text(&text))
                        .map(|()| ExitCode::SUCCESS)
                },
            )
        }
        Command::Export(ModelCommand { args, store }) => {
            let mut args = args.clone();
            stored_model::substitute(&mut args.model, &mut args.tokenizer, store).and_then(
                |_stored| {
                    r1flow::model::cli::run_export(&args).map(|line| {
                        say!("{line}");
                        ExitCode::SUCCESS
                    })
                },
            )
        }
        Command::Schema(args) => schema::run(args),
        Command::ExecStage(args) => exec_stage::run(args),
        Command::RenderChatTemplate(args) => render_chat_template(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            say!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The renderer child: its stdout is a stream of frames for its parent, not text, which
/// is why it is written here and not through `terminal`.
fn render_chat_template(args: &RenderChatTemplateArgs) -> anyhow::Result<ExitCode> {
    let limits = r1flow::chat_isolation::Limits {
        memory_bytes: args.memory_bytes,
        cpu_seconds: args.cpu_seconds,
        wall: std::time::Duration::MAX,
    };
    r1flow::chat_isolation::serve(&limits, std::io::stdin().lock(), std::io::stdout().lock())
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    // sled logs its own view of a damaged index; the store reports it as an error with
    // what to do, so sled's lines are left out unless RUST_LOG asks for them.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sled=off"));
    // A log line that cannot be written (stderr closed, or a file on a full disk) is
    // dropped: tracing-subscriber would otherwise report it with `eprintln!`, which
    // panics on the same stderr and took a run down with its store held.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
