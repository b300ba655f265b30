//! Report (of a plan): the DAG as a text table, as JSON for machines, and as Graphviz DOT.

use std::fmt::Write as _;

use serde_json::json;

use super::Plan;
use crate::check::{Target, Variant};

/// Short form of a key for tables.
fn short(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

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

/// The plan as an aligned table in execution order.
pub fn render_text(plan: &Plan) -> String {
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
            format!(" ({} shared across variants)", unshared - distinct)
        } else {
            String::new()
        }
    );
    out.push('\n');
    let headers = ["#", "stage", "kind", "key", "variants", "inputs"];
    let rows: Vec<[String; 6]> = plan
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
                short(&s.key).to_string(),
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
    out
}

/// The plan as JSON: `{"name", "variants": [...], "stages": [...]}`.
pub fn render_json(plan: &Plan) -> serde_json::Value {
    json!({
        "name": plan.name,
        "variants": plan.variants,
        "stages": plan.stages,
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
            short(&stage.key)
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
