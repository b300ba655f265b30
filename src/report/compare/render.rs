//! Report (`compare`): the comparison table as text (aligned columns), Markdown, CSV and
//! JSON, with notes on what is left out or not in the store, and the paired statistics
//! after it where there are some (CSV holds the table only).

use std::fmt::Write as _;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{missing_stages, Comparison};
use crate::report::html::Cell;
use crate::report::params;
use crate::report::stored::format_metric;

impl Comparison {
    /// Header names: `variant`, `seeds` (when grouped), parameters, metrics.
    pub fn headers(&self) -> Vec<String> {
        let mut headers = vec!["variant".to_string()];
        if self.seeds_grouped {
            headers.push("seeds".into());
        }
        headers.extend(self.param_columns.iter().cloned());
        headers.extend(self.metric_columns.iter().cloned());
        headers
    }

    /// The table's cells: parameters as text, metrics as `mean` or `mean ± std`, `—`
    /// where a row has no value.
    pub fn cells(&self) -> Vec<Vec<Cell>> {
        self.rows
            .iter()
            .map(|row| {
                let mut cells = vec![Cell::Text(row.variant.clone())];
                if self.seeds_grouped {
                    cells.push(Cell::Number(row.members.len().to_string()));
                }
                for path in &self.param_columns {
                    cells.push(Cell::Text(params::display(row.params.get(path))));
                }
                for column in &self.metric_columns {
                    let text = match (row.metrics.get(column), row.std.get(column)) {
                        (Some(mean), Some(sd)) => format!(
                            "{} ± {}",
                            format_metric(column, *mean),
                            format_metric(column, *sd)
                        ),
                        (Some(mean), None) => format_metric(column, *mean),
                        (None, _) => "—".to_string(),
                    };
                    cells.push(Cell::Number(text));
                }
                cells
            })
            .collect()
    }

    /// What is not in the store, one line per missing stage (see `missing_stages`).
    pub fn missing(&self) -> Vec<String> {
        missing_stages(&self.variants)
    }

    /// Aligned columns, then a line per stage that is not in the store.
    pub fn to_text(&self) -> String {
        let headers = self.headers();
        let rows: Vec<Vec<String>> = self
            .cells()
            .into_iter()
            .map(|row| row.iter().map(|c| c.text().to_string()).collect())
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let numeric = |i: usize| i >= headers.len() - self.metric_columns.len();
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if numeric(i) && !std::ptr::eq(row, &headers) {
                    let _ = write!(line, "{cell:>w$}  ");
                } else {
                    let _ = write!(line, "{cell:<w$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        self.append_notes(&mut out);
        if let Some(statistics) = &self.statistics {
            out.push_str(&statistics.to_text());
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let headers = self.headers();
        let metric_start = headers.len() - self.metric_columns.len();
        let numeric: Vec<bool> = (0..headers.len()).map(|i| i >= metric_start).collect();
        let mut out = markdown_table(&headers, &numeric, &self.cells());
        if !self.missing().is_empty() || !self.shared_evals.is_empty() {
            out.push('\n');
            self.append_notes(&mut out);
        }
        if let Some(statistics) = &self.statistics {
            out.push_str(&statistics.to_markdown());
        }
        out
    }

    /// CSV (RFC 4180 quoting): a column per parameter and metric, plus `METRIC_std`
    /// columns when seeds are grouped; empty where a row has no value.
    pub fn to_csv(&self) -> String {
        let mut headers = vec!["variant".to_string()];
        if self.seeds_grouped {
            headers.push("seeds".into());
        }
        headers.extend(self.param_columns.iter().cloned());
        for column in &self.metric_columns {
            headers.push(column.clone());
            if self.seeds_grouped {
                headers.push(format!("{column}_std"));
            }
        }
        let mut out = csv_line(&headers);
        for row in &self.rows {
            let mut cells = vec![row.variant.clone()];
            if self.seeds_grouped {
                cells.push(row.members.len().to_string());
            }
            for path in &self.param_columns {
                cells.push(match row.params.get(path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                });
            }
            for column in &self.metric_columns {
                cells.push(
                    row.metrics
                        .get(column)
                        .map(f64::to_string)
                        .unwrap_or_default(),
                );
                if self.seeds_grouped {
                    cells.push(row.std.get(column).map(f64::to_string).unwrap_or_default());
                }
            }
            out.push_str(&csv_line(&cells));
        }
        out
    }

    /// `{"rows": [{"variant", "params", "metrics"}]}`; a row that groups seeds adds
    /// `"std"` (per metric), `"seeds"` (how many) and `"members"` (the variants); a row
    /// with stages not in the store adds `"missing"`. With statistics to show, `"paired"`
    /// holds them (see `Statistics::to_json`).
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut object = Map::new();
                object.insert("variant".into(), json!(row.variant));
                object.insert(
                    "params".into(),
                    Value::Object(row.params.clone().into_iter().collect()),
                );
                object.insert("metrics".into(), json_numbers(&row.metrics));
                if self.seeds_grouped {
                    object.insert("std".into(), json_numbers(&row.std));
                    object.insert("seeds".into(), json!(row.members.len()));
                    object.insert(
                        "members".into(),
                        json!(row
                            .members
                            .iter()
                            .map(|&i| self.variants[i].label.clone())
                            .collect::<Vec<_>>()),
                    );
                }
                if !row.missing.is_empty() {
                    object.insert("missing".into(), json!(row.missing));
                }
                Value::Object(object)
            })
            .collect();
        match &self.statistics {
            Some(statistics) if !statistics.is_empty() => {
                json!({ "rows": rows, "paired": statistics.to_json() })
            }
            _ => json!({ "rows": rows }),
        }
    }

    fn append_notes(&self, out: &mut String) {
        for stage in &self.shared_evals {
            let _ = writeln!(
                out,
                "not shown: eval stage `{stage}`, the same instance in every row (--stage {stage} shows it)"
            );
        }
        for missing in self.missing() {
            let _ = writeln!(out, "not in the store: {missing}");
        }
    }
}

/// A GitHub-flavoured Markdown table: a header row, a rule that right-aligns the columns
/// `numeric` marks, and the rows, with `|` escaped in every cell.
pub(super) fn markdown_table(headers: &[String], numeric: &[bool], rows: &[Vec<Cell>]) -> String {
    let escape = |t: &str| t.replace('|', "\\|");
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(headers.iter().map(|h| escape(h)).collect());
    let rule: Vec<&str> = numeric
        .iter()
        .map(|n| if *n { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| escape(c.text())).collect()));
    }
    out
}

fn json_numbers(metrics: &IndexMap<String, f64>) -> Value {
    Value::Object(metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn csv_line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}
