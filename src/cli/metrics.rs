//! CLI `metrics`: a stage's metric series from the store, as CSV or JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;

use super::store_dir::StoreArgs;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    /// The run id (`last` for the newest).
    run: String,
    /// The stage name.
    stage: String,
    /// The variant, when the stage has one instance per variant.
    #[arg(long)]
    variant: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) fn run(args: &MetricsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_for_reading()?;
    let run = store.run(&args.run)?;
    let matches: Vec<_> = run
        .stages
        .iter()
        .filter(|s| s.name == args.stage)
        .filter(|s| args.variant.as_ref().is_none_or(|v| s.variants.contains(v)))
        .collect();
    let stage = match matches.as_slice() {
        [one] => *one,
        [] => {
            let names: BTreeSet<&str> = run.stages.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "run {} has no stage `{}`{}; its stages: {}",
                run.id,
                args.stage,
                args.variant
                    .as_ref()
                    .map(|v| format!(" in variant `{v}`"))
                    .unwrap_or_default(),
                names.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        several => {
            let variants: Vec<String> = several.iter().map(|s| s.variants.join(",")).collect();
            bail!(
                "stage `{}` has one instance per variant; pick one with --variant ({})",
                args.stage,
                variants.join(" | ")
            );
        }
    };
    let series = store.metrics(&stage.key)?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&series)? + "\n",
        Format::Csv => {
            let names: BTreeSet<&str> = series
                .iter()
                .flat_map(|p| p.values.keys().map(String::as_str))
                .collect();
            let mut out = String::from("step");
            for name in &names {
                let _ = write!(out, ",{name}");
            }
            out.push('\n');
            for point in &series {
                let _ = write!(out, "{}", point.step);
                for name in &names {
                    match point.values.get(*name) {
                        Some(v) => {
                            let _ = write!(out, ",{v}");
                        }
                        None => out.push(','),
                    }
                }
                out.push('\n');
            }
            out
        }
    };
    super::terminal::print_text(&text)?;
    Ok(ExitCode::SUCCESS)
}
