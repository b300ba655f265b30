//! Report (`compare`): the paired statistics (see `statistics`) as text, Markdown, JSON
//! and an HTML section — one line per row, eval stage and metric compared with the
//! baseline: the difference, its 95 % interval, the verdict, the seeds' spread and the
//! seeds that would resolve it; then what could not be compared.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::paired::CONFIDENCE;
use super::render::markdown_table;
use super::seeds::{Z_80, Z_975};
use super::statistics::{MetricDifference, PairedComparison, Statistics};
use crate::report::html::{Cell, HtmlReport};
use crate::report::stored::format_metric;

impl Statistics {
    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.notes.is_empty()
    }

    /// What the numbers are, in a sentence or two per line.
    pub fn legend(&self) -> Vec<String> {
        vec![
            format!(
                "arm − baseline over the prompts both rows evaluated, paired by prompt id; {:.0} % interval: percentiles of {} bootstrap resamples of the prompts and of each row's seeds (bootstrap seed {}).",
                CONFIDENCE * 100.0,
                self.resamples,
                self.seed
            ),
            "verdict: `different` when the interval excludes 0, else `within noise`.".to_string(),
            format!(
                "seeds: eval instances in the arm/baseline row; seed sd: pooled std of the per-seed means; seeds needed: per arm for 80 % power at 5 %, n ≈ 2·(({:.2} + {:.2})·sd/difference)², were the observed difference the true one (a rough guide).",
                Z_975, Z_80
            ),
        ]
    }

    pub fn headers() -> Vec<String> {
        [
            "arm",
            "baseline",
            "metric",
            "arm − baseline",
            "95 % interval",
            "verdict",
            "prompts",
            "seeds",
            "seed sd",
            "seeds needed",
        ]
        .map(String::from)
        .to_vec()
    }

    /// One row per metric compared.
    pub fn cells(&self) -> Vec<Vec<Cell>> {
        self.pairs
            .iter()
            .flat_map(|pair| pair.metrics.iter().map(move |m| metric_cells(pair, m)))
            .collect()
    }

    /// How the text and Markdown blocks open: `title`, then the legend a line each.
    fn opening(&self, title: &str) -> String {
        let mut out = title.to_string();
        for line in self.legend() {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// The notes, a line each: what could not be compared.
    fn not_compared(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "not compared: {note}");
        }
        out
    }

    /// A titled block: the legend, aligned columns, then the notes.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = self.opening("\nIs the difference real?\n");
        let headers = Self::headers();
        let cells = self.cells();
        if !cells.is_empty() {
            out.push('\n');
            let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
            for row in &cells {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.text().chars().count());
                }
            }
            let mut line = String::new();
            for (header, w) in headers.iter().zip(&widths) {
                let pad = w - header.chars().count();
                let _ = write!(line, "{header}{}  ", " ".repeat(pad));
            }
            let _ = writeln!(out, "{}", line.trim_end());
            for row in &cells {
                let mut line = String::new();
                for (cell, w) in row.iter().zip(&widths) {
                    let text = cell.text();
                    let pad = " ".repeat(w - text.chars().count());
                    match cell {
                        Cell::Number(_) => {
                            let _ = write!(line, "{pad}{text}  ");
                        }
                        Cell::Text(_) => {
                            let _ = write!(line, "{text}{pad}  ");
                        }
                    }
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        out.push_str(&self.not_compared());
        out
    }

    /// A bold title, the legend, a table, the notes.
    pub fn to_markdown(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = self.opening("\n**Is the difference real?**\n\n");
        let cells = self.cells();
        if !cells.is_empty() {
            let numeric: Vec<bool> = cells[0]
                .iter()
                .map(|c| matches!(c, Cell::Number(_)))
                .collect();
            out.push('\n');
            out.push_str(&markdown_table(&Self::headers(), &numeric, &cells));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            out.push_str(&self.not_compared());
        }
        out
    }

    /// `{"method", "confidence", "resamples", "seed", "comparisons": [{"arm",
    /// "baseline", "stage", "seeds": {"arm", "baseline"}, "metrics": [{"metric",
    /// "prompts", "baseline", "arm", "difference", "interval": [low, high], "verdict",
    /// "seed_sd": {"arm", "baseline", "pooled"}, "seeds_needed"}]}], "notes"}`; a
    /// standard deviation or seed count that cannot be computed is `null`.
    pub fn to_json(&self) -> Value {
        let comparisons: Vec<Value> = self
            .pairs
            .iter()
            .map(|pair| {
                let metrics: Vec<Value> = pair
                    .metrics
                    .iter()
                    .map(|m| {
                        json!({
                            "metric": m.metric,
                            "prompts": m.prompts,
                            "baseline": m.baseline,
                            "arm": m.arm,
                            "difference": m.interval.estimate,
                            "interval": [m.interval.low, m.interval.high],
                            "verdict": m.verdict.as_str(),
                            "seed_sd": {
                                "arm": m.seed_sd.arm,
                                "baseline": m.seed_sd.baseline,
                                "pooled": m.seed_sd.pooled,
                            },
                            "seeds_needed": m.seeds_needed,
                        })
                    })
                    .collect();
                json!({
                    "arm": pair.arm,
                    "baseline": pair.baseline,
                    "stage": pair.stage,
                    "seeds": {"arm": pair.arm_seeds, "baseline": pair.baseline_seeds},
                    "metrics": metrics,
                })
            })
            .collect();
        json!({
            "method": "paired bootstrap over prompts and seeds, percentile interval",
            "confidence": CONFIDENCE,
            "resamples": self.resamples,
            "seed": self.seed,
            "comparisons": comparisons,
            "notes": self.notes,
        })
    }

    /// The HTML section: heading, legend, table, notes.
    pub fn to_html(&self, page: &mut HtmlReport) {
        if self.is_empty() {
            return;
        }
        page.heading(2, "Is the difference real?");
        for line in self.legend() {
            page.paragraph(&line);
        }
        let cells = self.cells();
        if !cells.is_empty() {
            page.table(&Self::headers(), &cells);
        }
        for note in &self.notes {
            page.note(&format!("Not compared: {note}"));
        }
    }
}

fn metric_cells(pair: &PairedComparison, m: &MetricDifference) -> Vec<Cell> {
    let optional = |value: Option<f64>| match value {
        Some(v) => format_metric(&m.metric, v),
        None => "—".to_string(),
    };
    vec![
        Cell::Text(pair.arm.clone()),
        Cell::Text(pair.baseline.clone()),
        Cell::Text(m.metric.clone()),
        Cell::Number(signed(&m.metric, m.interval.estimate)),
        Cell::Number(format!(
            "[{}, {}]",
            signed(&m.metric, m.interval.low),
            signed(&m.metric, m.interval.high)
        )),
        Cell::Text(m.verdict.as_str().to_string()),
        Cell::Number(m.prompts.to_string()),
        Cell::Number(format!("{}/{}", pair.arm_seeds, pair.baseline_seeds)),
        Cell::Number(optional(m.seed_sd.pooled)),
        Cell::Number(
            m.seeds_needed
                .map_or_else(|| "—".to_string(), |n| n.to_string()),
        ),
    ]
}

/// A difference with its sign (`+0.1250`, `-0.0625`; zero as `+0.0000`).
fn signed(metric: &str, value: f64) -> String {
    // Adding 0.0 turns −0 into +0.
    let text = format_metric(metric, value + 0.0);
    if text.starts_with('-') || text.starts_with("NaN") {
        text
    } else {
        format!("+{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_carry_their_sign() {
        assert_eq!(signed("pass@1", 0.125), "+0.1250");
        assert_eq!(signed("pass@1", -0.0625), "-0.0625");
        assert_eq!(signed("pass@1", -0.0), "+0.0000");
        assert_eq!(signed("completion_len_mean", 3.26), "+3.3");
        // A tiny negative difference rounds to a signed zero, as printed numbers do.
        assert_eq!(signed("pass@1", -1e-9), "-0.0000");
    }
}
