//! CLI `plan`: print the DAG of a manifest with cache keys (text, JSON or DOT), and what
//! the store already holds: cached, resumable, or to run and why.

use std::path::PathBuf;
use std::process::ExitCode;

use r1flow::exec::stage_states;
use r1flow::plan::{render_dot, render_json, render_text};
use r1flow::store::Store;

use super::pipelines::{load_plan, ExecutorKind, PipelineArgs};
use super::store_dir::StoreArgs;
use super::terminal::say;

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON for machines.
    #[arg(long, conflicts_with = "dot")]
    json: bool,
    /// Print a Graphviz digraph (`r1flow plan FILE --dot | dot -Tsvg > plan.svg`).
    #[arg(long)]
    dot: bool,
}

pub(crate) fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let Some(plan) = load_plan(&args.pipeline, ExecutorKind::Local)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store_dir: PathBuf = args.store.resolve(Some(&args.pipeline.file));
    let states = if Store::exists(&store_dir) {
        match super::store_dir::open_for_reading(&store_dir) {
            Ok(store) => Some(stage_states(&plan, &store)?),
            Err(error) => {
                say!("warning: cannot read the store, so no cache status is shown: {error}");
                None
            }
        }
    } else {
        None
    };
    if args.json {
        super::terminal::print_text(
            &(serde_json::to_string_pretty(&render_json(&plan, states.as_ref()))? + "\n"),
        )?;
    } else if args.dot {
        super::terminal::print_text(&render_dot(&plan))?;
    } else {
        super::terminal::print_text(&render_text(&plan, states.as_ref()))?;
    }
    Ok(ExitCode::SUCCESS)
}
