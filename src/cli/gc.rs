//! CLI `gc`: delete what no kept run reaches, and say how much it freed.

use std::process::ExitCode;

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

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
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
        human(report.bytes_freed),
        report.blobs_kept,
        human(report.bytes_kept)
    ))?;
    Ok(ExitCode::SUCCESS)
}
