//! CLI `gc`: delete what no kept run reaches, and say how much it freed.

use std::process::ExitCode;

use r1flow::user_file::binary_size;

use super::store_dir::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct GcArgs {
    /// Keep the newest N runs and what they reach (default: keep every run, remove only
    /// what no run reaches).
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Show what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) fn run(args: &GcArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let report = store.gc(args.keep_last, args.dry_run)?;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    super::terminal::print_text(&format!(
        "{verb} {} run(s), {} artifact(s), {} checkpoint(s), {} blob(s): {} freed; kept {} blob(s), {}\n",
        report.runs_removed.len(),
        report.artifacts_removed,
        report.checkpoints_removed,
        report.blobs_removed,
        binary_size(report.bytes_freed.into(), "B"),
        report.blobs_kept,
        binary_size(report.bytes_kept.into(), "B")
    ))?;
    Ok(ExitCode::SUCCESS)
}
