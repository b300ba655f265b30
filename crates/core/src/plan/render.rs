//! Report (of a plan): the DAG as a text table, as JSON for machines, and as Graphviz DOT.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use super::{Plan, StageKey};
use crate::check::{Target, Variant};

/// Short form of a key for tables.
fn describe_target(target: &Target) -> String {
    match target {
        Target::Stage(name) => name.clone(),
        Target::Model(name) => format!("{name} (model)"),
        Target::Source(name) => format!("{name} (dataset)"),
    }
}

fn variants_cell(plan: &Plan, variants: &[String]) -> String {
    if plan.variants.len() > 1 && variants.len() == plan.variants.len() {
        format!("all {}", variants.len())
    } else {
        variants.join(", ")
    }
}

/// What the store says of a stage instance: `cached`, `run`, `resume@N`, and for a stage
/// that would run again, why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageState {
    pub label: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

/// The plan as an aligned table in execution order; with `states`, a status column and
/// the reasons for each re-run under the table.
pub fn render_text(plan: &Plan, states: Option<&BTreeMap<StageKey, StageState>>) -> String {
    let mut out = String::new();
    let variant_names: Vec<&str> = plan.variants.iter().map(|v| v.name.as_str()).collect();
    let _ = writeln!(out, "pipeline: {}", plan.name);
    if plan.variants.len() > 1
        || plan
            .variants
            .first()
            .is_some_and(|v| v.name != Variant::DEFAULT_NAME)
    {
        let _ = writeln!(
            out,
            "variants: {} ({})",
            plan.variants.len(),
            variant_names.join(", ")
        );
    }
    let (distinct, unshared) = plan.sharing();
    let _ = writeln!(
        out,
        "stages:   {distinct} to run or reuse{}",
        if unshared > distinct {
            format!(" ({unshared} if the variants shared nothing)")
        } else {
            String::new()
        }
    );
    out.push('\n');
    let headers = ["#", "stage", "kind", "key", "status", "variants", "inputs"];
    let rows: Vec<[String; 7]> = plan
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let inputs: Vec<String> = s
                .inputs
                .iter()
                .map(|inp| format!("{}={}", inp.field, describe_target(&inp.target)))
                .collect();
            [
                (i + 1).to_string(),
                if s.implicit {
                    format!("{} (implicit)", s.name)
                } else {
                    s.name.clone()
                },
                s.kind.to_string(),
                s.key.short().to_string(),
                states
                    .and_then(|m| m.get(&s.key))
                    .map_or_else(|| "-".to_string(), |st| st.label.clone()),
                variants_cell(plan, &s.variants),
                inputs.join(" "),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&headers.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    if let Some(states) = states {
        let mut first = true;
        for stage in &plan.stages {
            let Some(state) = states.get(&stage.key) else {
                continue;
            };
            if state.why.is_empty() {
                continue;
            }
            if first {
                out.push_str("\nwhy they run again:\n");
                first = false;
            }
            let _ = writeln!(
                out,
                "  {} ({}):",
                stage.name,
                variants_cell(plan, &stage.variants)
            );
            for reason in &state.why {
                let _ = writeln!(out, "    {reason}");
            }
        }
    }
    out
}

/// The plan as JSON: `{"name", "variants": [...], "stages": [...]}`, each stage with its
/// `status` when `states` is given.
pub fn render_json(
    plan: &Plan,
    states: Option<&BTreeMap<StageKey, StageState>>,
) -> serde_json::Value {
    let stages: Vec<serde_json::Value> = plan
        .stages
        .iter()
        .map(|s| {
            let mut value = serde_json::to_value(s).unwrap_or_default();
            if let (Some(state), Some(map)) =
                (states.and_then(|m| m.get(&s.key)), value.as_object_mut())
            {
                map.insert(
                    "status".into(),
                    serde_json::to_value(state).unwrap_or_default(),
                );
            }
            value
        })
        .collect();
    json!({
        "name": plan.name,
        "variants": plan.variants,
        "stages": stages,
    })
}

/// The plan as a Graphviz digraph (edges from input to reader, labelled by field).
pub fn render_dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {:?} {{", plan.name);
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"monospace\"];");
    for (i, stage) in plan.stages.iter().enumerate() {
        let variants = if plan.variants.len() > 1 {
            format!("\\n[{}]", variants_cell(plan, &stage.variants))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  s{i} [label=\"{}\\n{}\\n{}{variants}\"];",
            stage.name,
            stage.kind,
            stage.key.short()
        );
    }
    for edge in plan.graph.edge_indices() {
        if let (Some((from, to)), Some(field)) = (
            plan.graph.edge_endpoints(edge),
            plan.graph.edge_weight(edge),
        ) {
            let _ = writeln!(
                out,
                "  s{} -> s{} [label={field:?}];",
                plan.graph[from], plan.graph[to]
            );
        }
    }
    out.push_str("}\n");
    out
}
