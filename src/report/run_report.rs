//! Report (`report RUN`): one run as a self-contained HTML page — its stages, every eval
//! stage's final metrics, and the training curves of each stage that logged a series —
//! plus each plot on its own, for the CLI to write as SVG and PNG files.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::curves::{stage_plots, NamedPlot};
use super::html::{Cell, HtmlReport};
use super::stored::{eval_metrics, format_metric, order_metrics, stage_series, StageRef};
use crate::metric_names as names;
use crate::stages::StageKind;
use crate::store::{RunRecord, StageRun, StageStatus, Store, StoreError};

/// A run's report: the page and its plots.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub html: String,
    pub plots: Vec<NamedPlot>,
}

fn status_name<T: serde::Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Whether a stored stage of kind `kind` (as the run record names it) is an eval.
fn is_eval(kind: &str) -> bool {
    StageKind::named(kind) == Some(StageKind::Eval)
}

fn finished(stage: &StageRun) -> bool {
    matches!(
        stage.status,
        StageStatus::Ran | StageStatus::Resumed | StageStatus::Cached
    )
}

/// A stage's name in titles: with its variants when the run has several instances of it.
fn display_name(stage: &StageRun, run: &RunRecord) -> String {
    let instances = run.stages.iter().filter(|s| s.name == stage.name).count();
    if instances > 1 {
        format!("{} [{}]", stage.name, stage.variants.join(","))
    } else {
        stage.name.clone()
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    }
}

/// Builds the report of `run` from the store.
pub fn run_report(store: &Store, run: &RunRecord) -> Result<RunReport, StoreError> {
    let mut page = HtmlReport::new(format!("r1flow report: run {}", run.id));
    page.meta(&format!(
        "pipeline {} · manifest {} · status {} · started {}{}",
        run.pipeline,
        run.manifest.display(),
        status_name(&run.status),
        run.started.format("%Y-%m-%d %H:%M:%S UTC"),
        run.duration_s()
            .map(|d| format!(" · {d:.1} s"))
            .unwrap_or_default()
    ));

    page.heading(2, "Stages");
    let rows: Vec<Vec<Cell>> = run
        .stages
        .iter()
        .map(|s| {
            vec![
                Cell::Text(s.name.clone()),
                Cell::Text(s.kind.clone()),
                Cell::Text(s.variants.join(", ")),
                Cell::Text(s.key.short().to_string()),
                Cell::Text(status_name(&s.status)),
                Cell::Number(format!("{:.1} s", s.duration_s)),
                Cell::Text(s.error.clone().unwrap_or_else(|| {
                    if is_eval(&s.kind) && finished(s) {
                        return "see Evaluation".to_string();
                    }
                    s.metrics
                        .iter()
                        .map(|(k, v)| format!("{k}={}", number(*v)))
                        .collect::<Vec<_>>()
                        .join("  ")
                })),
            ]
        })
        .collect();
    page.table(
        &[
            "stage",
            "kind",
            "variants",
            "key",
            "status",
            "duration",
            "final metrics",
        ]
        .map(String::from),
        &rows,
    );

    // Eval stages: one row each, one column per metric any of them reports.
    let mut evals: Vec<(String, IndexMap<String, f64>)> = Vec::new();
    let mut unfinished: Vec<String> = Vec::new();
    for stage in run.stages.iter().filter(|s| is_eval(&s.kind)) {
        if finished(stage) {
            let metrics = eval_metrics(store, &stage.outputs, &stage.metrics)?;
            evals.push((display_name(stage, run), metrics));
        } else {
            unfinished.push(format!(
                "{}: {} in this run",
                display_name(stage, run),
                status_name(&stage.status)
            ));
        }
    }
    page.heading(2, "Evaluation");
    if evals.is_empty() && unfinished.is_empty() {
        page.note("This run has no eval stage.");
    }
    if !evals.is_empty() {
        let names: BTreeMap<String, f64> = evals
            .iter()
            .flat_map(|(_, m)| m.keys().map(|k| (k.clone(), 0.0)))
            .collect();
        let columns: Vec<String> = order_metrics(names).into_keys().collect();
        let mut headers = vec!["eval stage".to_string()];
        headers.extend(columns.iter().cloned());
        let rows: Vec<Vec<Cell>> = evals
            .iter()
            .map(|(name, metrics)| {
                let mut row = vec![Cell::Text(name.clone())];
                row.extend(columns.iter().map(|c| {
                    Cell::Number(
                        metrics
                            .get(c)
                            .map_or("—".to_string(), |v| format_metric(c, *v)),
                    )
                }));
                row
            })
            .collect();
        page.table(&headers, &rows);
    }
    for stage in unfinished {
        page.note(&format!("Eval stage {stage}, so it has no metrics."));
    }

    page.heading(2, "Training curves");
    let mut plots = Vec::new();
    let mut any = false;
    for stage in run.stages.iter().filter(|s| !is_eval(&s.kind)) {
        let reference = StageRef {
            name: display_name(stage, run),
            kind: stage.kind.clone(),
            key: stage.key.clone(),
        };
        let series = stage_series(store, reference, None)?;
        if series.points.is_empty() {
            continue;
        }
        any = true;
        page.heading(3, &format!("{} ({})", series.stage.name, stage.kind));
        let logged = series.points.len();
        let (first, last) = (
            series.points.first().map_or(0, |p| p.step),
            series.points.last().map_or(0, |p| p.step),
        );
        page.meta(&format!(
            "{logged} logged steps ({first}–{last}) · key {} · {}",
            stage.key.short(),
            status_name(&stage.status)
        ));
        let stage_plots = stage_plots(&series);
        if series.reward_kinds.values().all(|k| k != "language")
            && series.names().iter().any(|n| n == names::REWARD)
        {
            page.note("No language-consistency reward is used by this stage, so none is plotted.");
        }
        for plot in &stage_plots {
            page.plot(&plot.plot);
        }
        plots.extend(stage_plots);
    }
    if !any {
        page.note("No stage of this run logged a metric series.");
    }
    Ok(RunReport {
        html: page.finish(),
        plots,
    })
}
