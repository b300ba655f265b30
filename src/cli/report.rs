//! CLI `report`: write one run's self-contained HTML report (`report.html`) and each of
//! its plots as SVG and PNG (`plots/`), read from the store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use r1flow::output_dir::{replace_dir, Existing};
use r1flow::report::{run_report, svg_to_png, NamedPlot};

use super::store_dir::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The run id (`last` for the newest).
    run: String,
    /// The directory to write `report.html` and `plots/` into (default: `report-RUN_ID`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace `--out` even if it holds files other than an earlier report.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Writes each plot as `DIR/SLUG.svg` and `DIR/SLUG.png` (a repeated slug gets `-2`,
/// `-3` …); returns how many plots were written.
pub(crate) fn write_plots(dir: &Path, plots: &[NamedPlot]) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut taken = BTreeSet::new();
    for plot in plots {
        let mut name = plot.slug.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{}-{n}", plot.slug);
            n += 1;
        }
        let svg = plot.plot.to_svg_document();
        let path = dir.join(format!("{name}.svg"));
        std::fs::write(&path, &svg).with_context(|| format!("cannot write {}", path.display()))?;
        let png = svg_to_png(&svg).with_context(|| format!("plot {name}"))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(plots.len())
}

/// Writes `html` to `path`, creating its directory.
pub(crate) fn write_html(path: &Path, html: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_for_reading()?;
    let run = store.run(&args.run)?;
    let report = run_report(&store, &run).with_context(|| format!("reading run {}", run.id))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("report-{}", run.id)));
    // The directory is written whole: an earlier report there is replaced, never mixed
    // with this one (its plots may have other names).
    let is_ours = |entry: &str| entry == "report.html" || entry == "plots";
    let help = "pass --force to replace it, or choose another --out";
    let existing = Existing::own_output(args.force, &is_ours, help);
    let mut count = 0;
    replace_dir(&out, existing, |dir| -> anyhow::Result<()> {
        write_html(&dir.join("report.html"), &report.html)?;
        count = write_plots(&dir.join("plots"), &report.plots)?;
        Ok(())
    })?;
    let html = out.join("report.html");
    super::terminal::print_text(&format!(
        "run {}: wrote {} and {count} plots (SVG and PNG) in {}\n",
        run.id,
        html.display(),
        out.join("plots").display()
    ))?;
    Ok(ExitCode::SUCCESS)
}
