//! CLI `runs`: list the runs in the store, or show one run's stages (text or JSON).

use std::fmt::Write as _;
use std::process::ExitCode;

use r1flow::store::{
    MetricPoint, RunRecord, RunStatus, StageProgress, StageRun, StageStatus, Store,
};
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

/// What `runs show` knows of a stage while it runs: its progress and latest metric point.
struct Live {
    progress: Option<StageProgress>,
    latest: Option<MetricPoint>,
}

fn live_of(store: &Store, stage: &StageRun) -> anyhow::Result<Live> {
    if stage.status != StageStatus::Running {
        return Ok(Live {
            progress: None,
            latest: None,
        });
    }
    Ok(Live {
        progress: store.progress(&stage.key)?,
        latest: store.metrics(&stage.key)?.pop(),
    })
}

/// Where a stage ran or runs: its job while it runs, else where its artifact was made.
fn place(stage: &StageRun) -> String {
    match (&stage.job, &stage.produced, stage.status) {
        (Some(job), _, StageStatus::Running) => job.clone(),
        (_, Some(produced), _) => format!("{} on {}", produced.backend, produced.host),
        (Some(job), None, _) => job.clone(),
        _ => "-".into(),
    }
}

fn run_json(store: &Store, run: &RunRecord) -> anyhow::Result<serde_json::Value> {
    let mut stages = Vec::new();
    for s in &run.stages {
        let live = live_of(store, s)?;
        stages.push(json!({
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
            "produced": s.produced,
            "job": s.job,
            "log": s.log,
            "progress": live.progress,
            "latest": live.latest,
        }));
    }
    Ok(json!({
        "run": run.id,
        "pipeline": run.pipeline,
        "manifest": run.manifest,
        "status": status_name(&shown_status(store, run)),
        "started": run.started,
        "finished": run.finished,
        "stages": stages,
    }))
}

/// The status to show. A store opened for writing (not a live snapshot) is held by this
/// command, so no live process is running on it, and a run still marked `running` was
/// stopped by a crash or a kill (the next `run` records it so).
fn shown_status(store: &Store, run: &RunRecord) -> RunStatus {
    match run.status {
        RunStatus::Running if store.snapshot_time().is_none() => RunStatus::Interrupted,
        status => status,
    }
}

pub(crate) fn run(args: &RunsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_for_reading()?;
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
                        status_name(&shown_status(&store, r)),
                        (r.count(r1flow::store::StageStatus::Ran)
                            + r.count(r1flow::store::StageStatus::Resumed))
                        .to_string(),
                        r.count(r1flow::store::StageStatus::Cached).to_string(),
                    ]
                })
                .collect();
            super::terminal::print_text(&table(
                &[
                    "id", "pipeline", "manifest", "started", "duration", "status", "ran", "cached",
                ],
                &rows,
            ))?;
        }
        Some(RunsCommand::Show { id, json }) => {
            let run = store.run(id)?;
            if *json {
                super::terminal::print_text(
                    &(serde_json::to_string_pretty(&run_json(&store, &run)?)? + "\n"),
                )?;
            } else {
                let mut rows: Vec<Vec<String>> = Vec::new();
                let mut notes: Vec<String> = Vec::new();
                for s in &run.stages {
                    let bytes: u64 = s.outputs.values().map(|b| b.bytes).sum();
                    let live = live_of(&store, s)?;
                    let values = match &live.latest {
                        Some(point) => &point.values,
                        None => &s.metrics,
                    };
                    let metrics: Vec<String> =
                        values.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
                    let status = match &live.progress {
                        Some(p) => format!("running {}/{}", p.step, p.total),
                        None => status_name(&s.status),
                    };
                    rows.push(vec![
                        s.name.clone(),
                        s.kind.clone(),
                        s.variants.join(","),
                        s.key.short().to_string(),
                        status,
                        format!("{:.1}s", s.duration_s),
                        bytes.to_string(),
                        place(s),
                        s.error
                            .as_deref()
                            .and_then(|e| e.lines().next())
                            .map(str::to_string)
                            .unwrap_or_else(|| metrics.join(" ")),
                    ]);
                    if let Some(log) = &s.log {
                        notes.push(format!("log of {}: {}", s.name, log.display()));
                    }
                    if let Some(produced) = &s.produced {
                        notes.push(format!("{} was produced with {produced}", s.name));
                    }
                }
                let header = format!(
                    "run {} of {} ({}): {}\n\n",
                    run.id,
                    run.pipeline,
                    run.manifest.display(),
                    status_name(&shown_status(&store, &run))
                );
                let live = match store.snapshot_time() {
                    Some(time) => format!(
                        "(live: as the running coordinator published it {:.0}s ago)\n\n",
                        time.elapsed().map_or(0.0, |d| d.as_secs_f64())
                    ),
                    None => String::new(),
                };
                let mut text = header
                    + &live
                    + &table(
                        &[
                            "stage", "kind", "variants", "key", "status", "duration", "bytes",
                            "where", "metrics",
                        ],
                        &rows,
                    );
                if !notes.is_empty() {
                    text.push('\n');
                    for note in notes {
                        text.push_str(&note);
                        text.push('\n');
                    }
                }
                super::terminal::print_text(&text)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
