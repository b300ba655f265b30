//! Report (`compare`): the comparison's training curves — one line per row for every
//! training stage that differs between rows — and its self-contained HTML page (table,
//! curves, then the paired statistics).

use std::collections::BTreeSet;

use super::Comparison;
use crate::metric_names as names;
use crate::report::curves::{slug, variant_plot, NamedPlot, VariantCurves};
use crate::report::html::HtmlReport;
use crate::report::stored::StageSeries;

impl Comparison {
    /// The self-contained HTML page: the table, what is missing, the curves, and the
    /// paired statistics; also returns the plots, for the caller to write as files.
    pub fn to_html(&self, title: &str, sources: &[String]) -> (String, Vec<NamedPlot>) {
        let (plots, notes) = self.curves();
        let mut page = HtmlReport::new(title);
        page.meta(&format!("compared: {}", sources.join(", ")));
        page.heading(2, "Final metrics");
        if self.param_columns.is_empty() {
            page.paragraph("No parameter differs between the rows.");
        } else {
            page.paragraph("Only the parameters that differ between the rows are shown.");
        }
        if self.seeds_grouped {
            page.paragraph(
                "Rows that differ only in seeds are grouped: mean ± sample std (n − 1) across the seeds.",
            );
        }
        page.table(&self.headers(), &self.cells());
        for stage in &self.shared_evals {
            page.paragraph(&format!(
                "Not shown: eval stage {stage}, the same instance (equal metrics) in every row."
            ));
        }
        for missing in self.missing() {
            page.note(&format!("Not in the store: {missing}"));
        }
        page.heading(2, "Training curves");
        if plots.is_empty() && notes.is_empty() {
            page.note(
                "No training stage differs between the rows, so there is no curve to compare.",
            );
        }
        for note in &notes {
            page.note(note);
        }
        for plot in &plots {
            page.plot(&plot.plot);
        }
        // After the curves, so that the page's first screen stays the table and plots.
        if let Some(statistics) = &self.statistics {
            statistics.to_html(&mut page);
        }
        (page.finish(), plots)
    }

    /// Training curves, one line per row, for every training stage whose instances
    /// differ between rows (a stage all rows share would draw identical lines): reward,
    /// accuracy and language-consistency rewards, completion length, the worked mode's
    /// share and the length of correct completions; loss for supervised stages. Also returns a note for each of those that a stage does not log.
    pub fn curves(&self) -> (Vec<NamedPlot>, Vec<String>) {
        let mut stage_names: Vec<&str> = Vec::new();
        for variant in &self.variants {
            for series in &variant.curves {
                if !stage_names.contains(&series.stage.name.as_str()) {
                    stage_names.push(&series.stage.name);
                }
            }
        }
        let mut plots = Vec::new();
        let mut notes = Vec::new();
        for stage in stage_names {
            let lines: Vec<VariantCurves<'_>> = self
                .rows
                .iter()
                .map(|row| VariantCurves {
                    label: row.variant.clone(),
                    members: row
                        .members
                        .iter()
                        .filter_map(|&i| {
                            self.variants[i]
                                .curves
                                .iter()
                                .find(|s| s.stage.name == stage && !s.points.is_empty())
                        })
                        .collect(),
                })
                .collect();
            let keys: BTreeSet<&str> = lines
                .iter()
                .flat_map(|l| l.members.iter().map(|s| s.stage.key.as_str()))
                .collect();
            if keys.len() < 2 {
                continue;
            }
            let all: Vec<&StageSeries> = lines.iter().flat_map(|l| l.members.clone()).collect();
            let logs = |metric: &str| {
                all.iter()
                    .any(|s| s.points.iter().any(|p| p.values.contains_key(metric)))
            };
            for (what, title, y_label, curve) in &CURVES {
                let drawn = match curve {
                    Curve::Metric(names::LOSS) => logs(names::LOSS) && !logs(names::REWARD),
                    Curve::Metric(metric) => logs(metric),
                    Curve::RewardOfKind(_) => logs(names::REWARD),
                };
                if !drawn {
                    continue;
                }
                let title = format!("{stage}: {title}");
                let plot = variant_plot(title.clone(), y_label, &lines, |s| curve.metric_of(s));
                if plot.is_empty() {
                    notes.push(format!("{title}: not logged by this stage"));
                } else {
                    plots.push(NamedPlot {
                        slug: slug(&format!("{stage}-{what}")),
                        plot,
                    });
                }
            }
        }
        (plots, notes)
    }
}

/// The curves a comparison draws of a training stage, in order: the file name's end, the
/// title after the stage's name, the y axis and what it plots. A metric's curve is drawn
/// when the stage logs it, a reward kind's when the stage logs a total reward, and the
/// loss only when it logs none (a GRPO loss says little).
#[rustfmt::skip]
const CURVES: [(&str, &str, &str, Curve); 7] = [
    ("reward", "total reward", "reward", Curve::Metric(names::REWARD)),
    ("accuracy", "accuracy reward", "reward", Curve::RewardOfKind("accuracy")),
    ("language-consistency", "language-consistency reward", "reward", Curve::RewardOfKind("language")),
    ("completion-length", "mean completion length", "tokens", Curve::Metric(names::COMPLETION_LENGTH)),
    ("worked-share", "share of completions in the worked mode", "share", Curve::Metric(names::WORKED_SHARE)),
    ("length-correct", "mean length of correct completions", "tokens", Curve::Metric(names::COMPLETION_LEN_CORRECT)),
    ("loss", "loss", "loss", Curve::Metric(names::LOSS)),
];

/// What a comparison curve plots.
enum Curve {
    /// A metric by name.
    Metric(&'static str),
    /// The first reward of this kind that the stage logged (`reward/NAME`), whatever
    /// the manifest named it.
    RewardOfKind(&'static str),
}

impl Curve {
    fn metric_of(&self, series: &StageSeries) -> Option<String> {
        match self {
            Self::Metric(name) => Some(name.to_string()),
            Self::RewardOfKind(kind) => series
                .rewards_of_kind(kind)
                .into_iter()
                .map(names::reward_of)
                .find(|metric| series.points.iter().any(|p| p.values.contains_key(metric))),
        }
    }
}
