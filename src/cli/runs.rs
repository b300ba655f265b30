//! CLI `runs`: list the runs in the store, or show one run's stages (text or JSON).

use std::fmt::Write as _;
use std::process::ExitCode;

use r1flow::store::{RunRecord, RunStatus};
use serde_json::json;

use super::store_dir::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
enum RunsCommand {
    /// One run's stages: status, duration, key, artifact sizes, final metrics.
    Show {
        /// The run id (`last` for the newest).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn status_name<T: serde::Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Formats rows as aligned columns.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
    out
}

fn run_json(run: &RunRecord) -> serde_json::Value {
    json!({
        "run": run.id,
        "pipeline": run.pipeline,
        "manifest": run.manifest,
        "status": status_name(&shown_status(run)),
        "started": run.started,
        "finished": run.finished,
        "stages": run.stages.iter().map(|s| json!({
            "name": s.name,
            "kind": s.kind,
            "variant": s.variants.join(","),
            "variants": s.variants,
            "key": s.key,
            "status": status_name(&s.status),
            "duration_s": s.duration_s,
            "outputs": s.outputs.iter().map(|(name, blob)| json!({"name": name, "hash": blob.hash, "bytes": blob.bytes})).collect::<Vec<_>>(),
            "metrics": s.metrics,
            "error": s.error,
        })).collect::<Vec<_>>(),
    })
}

/// The status to show: this command holds the store's lock, so no live process is
/// writing it, and a run still marked `running` was stopped by a crash or a kill (the next
/// `run` records it so).
fn shown_status(run: &RunRecord) -> RunStatus {
    match run.status {
        RunStatus::Running => RunStatus::Interrupted,
        status => status,
    }
}

pub(crate) fn run(args: &RunsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    match &args.command {
        None => {
            let rows: Vec<Vec<String>> = store
                .runs()?
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.pipeline.clone(),
                        r.manifest.display().to_string(),
                        r.started.format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.duration_s().map_or("-".into(), |d| format!("{d:.1}s")),
                        status_name(&shown_status(r)),
                        (r.count(r1flow::store::StageStatus::Ran)
                            + r.count(r1flow::store::StageStatus::Resumed))
                        .to_string(),
                        r.count(r1flow::store::StageStatus::Cached).to_string(),
                    ]
                })
                .collect();
            super::print_stdout(&table(
                &[
                    "id", "pipeline", "manifest", "started", "duration", "status", "ran", "cached",
                ],
                &rows,
            ))?;
        }
        Some(RunsCommand::Show { id, json }) => {
            let run = store.run(id)?;
            if *json {
                super::print_stdout(&(serde_json::to_string_pretty(&run_json(&run))? + "\n"))?;
            } else {
                let rows: Vec<Vec<String>> = run
                    .stages
                    .iter()
                    .map(|s| {
                        let bytes: u64 = s.outputs.values().map(|b| b.bytes).sum();
                        let metrics: Vec<String> = s
                            .metrics
                            .iter()
                            .map(|(k, v)| format!("{k}={v:.4}"))
                            .collect();
                        vec![
                            s.name.clone(),
                            s.kind.clone(),
                            s.variants.join(","),
                            s.key.get(..12).unwrap_or(&s.key).to_string(),
                            status_name(&s.status),
                            format!("{:.1}s", s.duration_s),
                            bytes.to_string(),
                            s.error.clone().unwrap_or_else(|| metrics.join(" ")),
                        ]
                    })
                    .collect();
                let header = format!(
                    "run {} of {} ({}): {}\n\n",
                    run.id,
                    run.pipeline,
                    run.manifest.display(),
                    status_name(&shown_status(&run))
                );
                super::print_stdout(
                    &(header
                        + &table(
                            &[
                                "stage", "kind", "variants", "key", "status", "duration", "bytes",
                                "metrics",
                            ],
                            &rows,
                        )),
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
