//! CLI `plan`: print the DAG of a manifest with cache keys (text, JSON or DOT).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use r1flow::check::check_file;
use r1flow::diag::render_all;
use r1flow::plan::{plan, render_dot, render_json, render_text};

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// The manifest.
    file: PathBuf,
    /// Print JSON for machines.
    #[arg(long, conflicts_with = "dot")]
    json: bool,
    /// Print a Graphviz digraph (`r1flow plan FILE --dot | dot -Tsvg > plan.svg`).
    #[arg(long)]
    dot: bool,
    /// Only this variant (arm names joined with `+`, as `plan` lists them).
    #[arg(long)]
    variant: Option<String>,
}

pub(crate) fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let checked = check_file(&args.file);
    if !checked.diagnostics.is_empty() {
        eprint!("{}", render_all(&checked.diagnostics));
    }
    if checked.has_errors() {
        return Ok(ExitCode::FAILURE);
    }
    let mut pipelines = checked.pipelines;
    if let Some(wanted) = &args.variant {
        let names: Vec<String> = pipelines.iter().map(|p| p.variant.name.clone()).collect();
        pipelines.retain(|p| &p.variant.name == wanted);
        if pipelines.is_empty() {
            bail!(
                "no variant `{wanted}`; the variants are: {}",
                names.join(", ")
            );
        }
    }
    let plan = plan(pipelines);
    if args.json {
        super::print_stdout(&(serde_json::to_string_pretty(&render_json(&plan))? + "\n"))?;
    } else if args.dot {
        super::print_stdout(&render_dot(&plan))?;
    } else {
        super::print_stdout(&render_text(&plan))?;
    }
    Ok(ExitCode::SUCCESS)
}
