//! CLI `validate`: check manifests and print every diagnostic.

use std::path::PathBuf;
use std::process::ExitCode;

use r1flow::check::check_file;
use r1flow::diag::render_all;

use super::pipelines::ExecutorKind;

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Manifest files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Check as `run --executor` will: `local` (this machine runs the stages: their
    /// models must fit its memory) or `slurm` (compute nodes do: each stage's job memory
    /// is its `resources.mem`, and this machine's memory is not a bound).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
}

pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in &args.files {
        let checked = check_file(file, &args.executor.capabilities());
        if !checked.diagnostics.is_empty() {
            super::terminal::eprint_text(&render_all(&checked.diagnostics));
        }
        if checked.has_errors() {
            failed = true;
            continue;
        }
        let stages: usize = checked
            .pipelines
            .first()
            .map(|p| p.stages.len())
            .unwrap_or(0);
        let variants = checked.pipelines.len();
        super::terminal::print_text(&format!(
            "ok: {} ({stages} stage{}, {variants} variant{})\n",
            file.display(),
            if stages == 1 { "" } else { "s" },
            if variants == 1 { "" } else { "s" }
        ))?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
