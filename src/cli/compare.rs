//! CLI `compare`: a table across runs and manifest variants — the parameters that differ,
//! then final eval metrics (seeds grouped into mean ± std) — and each row against a
//! baseline row, prompt by prompt (a paired bootstrap's interval and verdict, the seeds'
//! spread), as text, Markdown, CSV (the table only) or JSON; optionally the curves
//! (`--plots DIR`) and an HTML report (`--html FILE`).
//! A manifest is checked and planned, and its stages are looked up in the store by key:
//! nothing is run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use r1flow::check::{check_file, Capabilities};
use r1flow::diag::render_all;
use r1flow::output_dir::{replace_dir, Existing};
use r1flow::plan::plan;
use r1flow::report::compare::{missing_stages, StatsOptions, DEFAULT_RESAMPLES};
use r1flow::report::{compare, variants, VariantResult};
use r1flow::store::Store;

use super::report::{write_html, write_plots};
use super::store_dir::StoreArgs;
use super::terminal::say;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Markdown,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// Run ids (`last` for the newest) and/or manifest paths.
    #[arg(required = true, value_name = "RUN_OR_MANIFEST")]
    sources: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// One row per seed, instead of grouping variants that differ only in seeds into
    /// mean ± std.
    #[arg(long)]
    per_seed: bool,
    /// Only this eval stage's metrics (when variants have several eval stages).
    #[arg(long, value_name = "NAME")]
    stage: Option<String>,
    /// Write the curves (reward, accuracy, language consistency, completion length; one
    /// line per row) into DIR as SVG and PNG.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// Write a self-contained HTML report (table and curves) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Replace `--plots DIR` even if it holds files other than earlier plots.
    #[arg(long)]
    force: bool,
    /// The row every other row is compared with, prompt by prompt (by its name in the
    /// `variant` column); default: the first row.
    #[arg(long, value_name = "ROW")]
    baseline: Option<String>,
    /// Bootstrap resamples per metric for the paired intervals.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RESAMPLES as u32,
          value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    resamples: u32,
    /// The seed of the bootstrap: the same seed, the same intervals.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    bootstrap_seed: u64,
    #[command(flatten)]
    store: StoreArgs,
}

enum Source {
    Run(String),
    Manifest(PathBuf),
}

fn classify(text: &str) -> anyhow::Result<Source> {
    let path = Path::new(text);
    if path.is_file() {
        return Ok(Source::Manifest(path.to_path_buf()));
    }
    if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        bail!("manifest {text} does not exist");
    }
    Ok(Source::Run(text.to_string()))
}

pub(crate) fn run(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let sources: Vec<Source> = args
        .sources
        .iter()
        .map(|s| classify(s))
        .collect::<anyhow::Result<_>>()?;
    let first_manifest = sources.iter().find_map(|s| match s {
        Source::Manifest(path) => Some(path.as_path()),
        Source::Run(_) => None,
    });
    let store_dir = args.store.resolve(first_manifest);
    if !Store::exists(&store_dir) {
        bail!(
            "no store at {} (run a pipeline first, or pass --store)",
            store_dir.display()
        );
    }
    let store = super::store_dir::open_for_reading(&store_dir)?;
    let several = sources.len() > 1;

    let mut all: Vec<VariantResult> = Vec::new();
    let mut described: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for source in &sources {
        match source {
            Source::Run(id) => {
                let run = store.run(id)?;
                described.push(format!("run {}", run.id));
                all.extend(variants::of_run(&store, &run, several)?);
            }
            Source::Manifest(path) => {
                let checked = check_file(path, &Capabilities::any());
                if !checked.diagnostics.is_empty() {
                    super::terminal::eprint_text(&render_all(&checked.diagnostics));
                }
                if checked.has_errors() {
                    bail!(
                        "{} has errors (above): compare reads a manifest's results only once it is valid",
                        path.display()
                    );
                }
                let planned = plan(checked.pipelines);
                let mut found = variants::of_plan(&store, &planned)?;
                if several {
                    for variant in &mut found {
                        variant.label = format!("{}:{}", path.display(), variant.label);
                    }
                }
                described.push(path.display().to_string());
                hints.push(format!("r1flow run {}", path.display()));
                all.extend(found);
            }
        }
    }

    if all.iter().all(|v| v.evals.is_empty()) {
        let missing: Vec<String> = missing_stages(&all)
            .into_iter()
            .map(|m| format!("  {m}"))
            .collect();
        if !missing.is_empty() {
            bail!(
                "no results to compare: no eval stage of {} has results in the store at {}; missing:\n{}\n{}",
                described.join(", "),
                store_dir.display(),
                missing.join("\n"),
                if hints.is_empty() {
                    "the run did not finish them: run its manifest again to complete it".to_string()
                } else {
                    format!(
                        "run them first ({}); compare runs nothing",
                        hints.join("; ")
                    )
                }
            );
        }
        bail!(
            "no eval stage in {}: compare shows final eval metrics (add a stage of kind `eval`)",
            described.join(", ")
        );
    }

    if let Some(wanted) = &args.stage {
        let names: std::collections::BTreeSet<String> = all
            .iter()
            .flat_map(|v| v.evals.iter().map(|e| e.stage.clone()))
            .collect();
        if !names.contains(wanted) {
            bail!(
                "no eval stage `{wanted}` in {}; its eval stages: {}",
                described.join(", "),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.into_iter().collect::<Vec<_>>().join(", ")
                }
            );
        }
        for variant in &mut all {
            variant.evals.retain(|e| &e.stage == wanted);
        }
    }

    let table = compare(all, !args.per_seed);
    let options = StatsOptions {
        resamples: args.resamples as usize,
        seed: args.bootstrap_seed,
        baseline: args.baseline.clone(),
    };
    // The baseline is checked before the samples are read.
    table.baseline_row(&options)?;
    let scores = table.load_prompt_scores(&store)?;
    let statistics = table.paired_statistics(&scores, &options)?;
    let table = table.with_statistics(statistics);
    let text = match args.format {
        Format::Text => table.to_text(),
        Format::Markdown => table.to_markdown(),
        Format::Csv => table.to_csv(),
        Format::Json => serde_json::to_string_pretty(&table.to_json())? + "\n",
    };
    if matches!(args.format, Format::Csv | Format::Json) {
        for missing in table.missing() {
            say!("warning: not in the store: {missing}");
        }
    }
    super::terminal::print_text(&text)?;

    if args.plots.is_some() || args.html.is_some() {
        let title = format!("r1flow compare: {}", described.join(", "));
        let (html, plots) = table.to_html(&title, &described);
        if let Some(dir) = &args.plots {
            // Written whole: earlier plots (and a page written beside them), marked as
            // r1flow's (see `output_dir`), are replaced, never mixed with these.
            let is_ours =
                |entry: &str| [".svg", ".png", ".html"].iter().any(|e| entry.ends_with(e));
            let help = "pass --force to replace it, or choose another --plots directory";
            let existing = Existing::own_output(args.force, &is_ours, help);
            let mut count = 0;
            replace_dir(dir, existing, |fresh| -> anyhow::Result<()> {
                count = write_plots(fresh, &plots)?;
                Ok(())
            })?;
            say!("wrote {count} plots (SVG and PNG) in {}", dir.display());
        }
        if let Some(path) = &args.html {
            write_html(path, &html)?;
            say!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
