//! Report: which curves to draw from a training stage's metric series. Plots are chosen by
//! metric name (TRL's names, as GRPO logs them; `loss` for the supervised stages), not by
//! stage kind, so stages that log the same names (rlhf, distill) get the same plots, and a
//! metric nobody planned for still gets a plot of its own.

use crate::metric_names as names;
use std::collections::BTreeSet;

use super::stored::StageSeries;
use super::svg::{LinePlot, Series};

/// A plot with a file-name-safe identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPlot {
    /// `stage-what`, made of `[a-z0-9_-]` only.
    pub slug: String,
    pub plot: LinePlot,
}

/// Makes `text` safe as (part of) a file name.
pub fn slug(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

/// Per-reward statistics that are not plotted as lines of their own: the std of each
/// reward (`reward_std` is the band of the total reward instead).
fn is_dispersion(name: &str) -> bool {
    name == names::REWARD_STD || (name.starts_with(names::REWARD_PREFIX) && name.ends_with("/std"))
}

/// The plots of one training stage's series: total reward (± its std), each reward's
/// mean, completion length (mean, min, max), the worked mode (its share and each mode's
/// accuracy), length by outcome (correct, incorrect), loss, then every other logged metric
/// (those sharing a `prefix/` together, e.g. `time/…`). Nothing for a stage that logged
/// nothing.
pub fn stage_plots(series: &StageSeries) -> Vec<NamedPlot> {
    let stage = &series.stage.name;
    let names = series.names();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut plots = Vec::new();
    let mut add = |used: &mut BTreeSet<String>,
                   what: &str,
                   title: String,
                   y_label: &str,
                   lines: Vec<Series>,
                   used_names: &[String]| {
        let mut plot = LinePlot::new(title, "step", y_label);
        for line in lines {
            plot.push(line);
        }
        used.extend(used_names.iter().cloned());
        if !plot.is_empty() {
            plots.push(NamedPlot {
                slug: slug(&format!("{stage}-{what}")),
                plot,
            });
        }
    };

    if names.iter().any(|n| n == names::REWARD) {
        let mean = series.values(names::REWARD);
        let std = series.values(names::REWARD_STD);
        let mut line = Series::new("reward (mean ± std)", mean.clone());
        if std.len() == mean.len() {
            line = line.with_band(
                mean.iter()
                    .zip(&std)
                    .map(|((x, m), (_, s))| (*x, m - s, m + s))
                    .collect(),
            );
        }
        add(
            &mut used,
            "reward",
            format!("{stage}: total reward"),
            "reward",
            vec![line],
            &[names::REWARD.into(), names::REWARD_STD.into()],
        );
    }

    let per_reward: Vec<String> = names
        .iter()
        .filter(|n| {
            n.starts_with(names::REWARD_PREFIX) && !is_dispersion(n) && !n.ends_with("/skipped")
        })
        .cloned()
        .collect();
    if !per_reward.is_empty() {
        let lines = per_reward
            .iter()
            .map(|n| {
                let reward = n.trim_start_matches(names::REWARD_PREFIX);
                let kind = series.reward_kinds.get(reward);
                let label = match kind {
                    Some(kind) if kind != reward => format!("{reward} ({kind})"),
                    _ => reward.to_string(),
                };
                Series::new(label, series.values(n))
            })
            .collect();
        add(
            &mut used,
            "rewards",
            format!("{stage}: mean of each reward"),
            "reward",
            lines,
            &per_reward,
        );
    }

    // Plots of a few metrics each, drawn with those the stage logs, each line labelled:
    // completion lengths; how answers are reached (crate::metrics::mechanism), the worked
    // mode's share and each mode's accuracy on one plot, lengths of correct and incorrect
    // completions on another.
    for (what, title, y_label, members) in [
        (
            "completion-length",
            "completion length",
            "tokens",
            &[
                (names::COMPLETION_LENGTH_MAX, "max"),
                (names::COMPLETION_LENGTH, "mean"),
                (names::COMPLETION_LENGTH_MIN, "min"),
            ][..],
        ),
        (
            "worked-mode",
            "worked mode: share, and accuracy of each mode",
            "share",
            &[
                (names::WORKED_SHARE, names::WORKED_SHARE),
                (names::ACCURACY_WORKED, names::ACCURACY_WORKED),
                (names::ACCURACY_SHORTCUT, names::ACCURACY_SHORTCUT),
            ][..],
        ),
        (
            "length-by-outcome",
            "completion length of correct and incorrect completions",
            "tokens",
            &[
                (names::COMPLETION_LEN_CORRECT, names::COMPLETION_LEN_CORRECT),
                (
                    names::COMPLETION_LEN_INCORRECT,
                    names::COMPLETION_LEN_INCORRECT,
                ),
            ][..],
        ),
    ] {
        let present: Vec<(&str, &str)> = members
            .iter()
            .copied()
            .filter(|(n, _)| names.iter().any(|m| m == n))
            .collect();
        if !present.is_empty() {
            let lines = present
                .iter()
                .map(|(n, label)| Series::new(*label, series.values(n)))
                .collect();
            let metrics: Vec<String> = present.iter().map(|(n, _)| n.to_string()).collect();
            add(
                &mut used,
                what,
                format!("{stage}: {title}"),
                y_label,
                lines,
                &metrics,
            );
        }
    }

    if names.iter().any(|n| n == names::LOSS) {
        add(
            &mut used,
            "loss",
            format!("{stage}: loss"),
            "loss",
            vec![Series::new("loss", series.values(names::LOSS))],
            &[names::LOSS.into()],
        );
    }

    // Everything else: one plot per metric, or per `prefix/` group.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for name in &names {
        if used.contains(name) || is_dispersion(name) {
            continue;
        }
        // A reward's skipped share only matters when something was skipped.
        if name.ends_with("/skipped")
            && series
                .values(name)
                .iter()
                .all(|(_, v)| *v == 0.0 || !v.is_finite())
        {
            continue;
        }
        let group = match name.split_once('/') {
            Some((prefix, _)) if !name.starts_with(names::REWARD_PREFIX) => prefix.to_string(),
            _ => name.clone(),
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(name.clone()),
            None => groups.push((group, vec![name.clone()])),
        }
    }
    for (group, members) in groups {
        let lines = members
            .iter()
            .map(|n| Series::new(n.clone(), series.values(n)))
            .collect();
        add(
            &mut used,
            &group,
            format!("{stage}: {group}"),
            &group,
            lines,
            &members,
        );
    }
    plots
}

/// One line of a comparison: a row's label and the series of each of its members (one
/// run per seed when seeds are aggregated).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantCurves<'a> {
    pub label: String,
    pub members: Vec<&'a StageSeries>,
}

/// A plot of `metric` over steps with one line per variant; a variant with several
/// members (seeds) is drawn as their mean over the steps all of them logged, with a ±std
/// band. Variants that did not log `metric` are left out.
pub fn variant_plot(
    title: String,
    y_label: &str,
    variants: &[VariantCurves<'_>],
    metric: impl Fn(&StageSeries) -> Option<String>,
) -> LinePlot {
    let mut plot = LinePlot::new(title, "step", y_label);
    for variant in variants {
        let member_points: Vec<Vec<(f64, f64)>> = variant
            .members
            .iter()
            .filter_map(|s| metric(s).map(|name| s.values(&name)))
            .filter(|points| !points.is_empty())
            .collect();
        match member_points.as_slice() {
            [] => {}
            [one] => plot.push(Series::new(variant.label.clone(), one.clone())),
            several => {
                let steps: Vec<f64> = several[0]
                    .iter()
                    .map(|(x, _)| *x)
                    .filter(|x| several.iter().all(|m| m.iter().any(|(mx, _)| mx == x)))
                    .collect();
                let mut mean = Vec::with_capacity(steps.len());
                let mut band = Vec::with_capacity(steps.len());
                for x in steps {
                    let values: Vec<f64> = several
                        .iter()
                        .filter_map(|m| m.iter().find(|(mx, _)| *mx == x).map(|(_, y)| *y))
                        .collect();
                    let (m, s) = super::stats::mean_std(&values);
                    mean.push((x, m));
                    let s = s.unwrap_or(0.0);
                    band.push((x, m - s, m + s));
                }
                plot.push(
                    Series::new(
                        format!("{} (mean ± std, n={})", variant.label, several.len()),
                        mean,
                    )
                    .with_band(band),
                );
            }
        }
    }
    plot
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stored::StageRef;
    use crate::store::MetricPoint;
    use std::collections::BTreeMap;

    fn series(points: &[(u64, &[(&str, f64)])]) -> StageSeries {
        StageSeries {
            stage: StageRef {
                name: "zero".into(),
                kind: "grpo".into(),
                key: "k".into(),
            },
            points: points
                .iter()
                .map(|(step, values)| MetricPoint {
                    step: *step,
                    values: values.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
                })
                .collect(),
            reward_kinds: BTreeMap::from([
                ("strict".to_string(), "accuracy".to_string()),
                ("format".to_string(), "format".to_string()),
            ]),
        }
    }

    #[test]
    fn grpo_metrics_get_reward_length_and_other_plots() {
        let step: &[(&str, f64)] = &[
            ("reward", 0.5),
            ("reward_std", 0.1),
            ("reward/strict", 0.2),
            ("reward/strict/std", 0.1),
            ("reward/strict/skipped", 0.0),
            ("reward/format", 0.8),
            ("completion_length", 20.0),
            ("completion_length_max", 48.0),
            ("completion_length_min", 3.0),
            ("kl", 0.01),
            ("worked_share", 0.3),
            ("accuracy_worked", 0.6),
            ("accuracy_shortcut", 0.0),
            ("completion_len_correct", 40.0),
            ("completion_len_incorrect", 12.0),
            ("truncated_ratio", 0.05),
            ("time/generation_s", 0.1),
            ("time/update_s", 0.3),
        ];
        let plots = stage_plots(&series(&[(1, step), (2, step)]));
        let slugs: Vec<&str> = plots.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "zero-reward",
                "zero-rewards",
                "zero-completion-length",
                "zero-worked-mode",
                "zero-length-by-outcome",
                "zero-kl",
                "zero-time",
                "zero-truncated_ratio"
            ]
        );
        let lines = |plot: &NamedPlot| -> Vec<String> {
            plot.plot.series.iter().map(|s| s.name.clone()).collect()
        };
        assert_eq!(
            lines(&plots[3]),
            ["worked_share", "accuracy_worked", "accuracy_shortcut"]
        );
        assert_eq!(
            lines(&plots[4]),
            ["completion_len_correct", "completion_len_incorrect"]
        );
        let rewards = &plots[1].plot;
        let labels: Vec<&str> = rewards.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(labels, ["format", "strict (accuracy)"]);
        assert!(
            !plots[0].plot.series[0].band.is_empty(),
            "reward ± std band"
        );
        assert_eq!(plots[6].plot.series.len(), 2, "time/* share a plot");
    }

    #[test]
    fn mechanism_plots_draw_what_was_logged() {
        // No correct completion in any step: no `completion_len_correct`, no accuracy of
        // the worked mode.
        let step: &[(&str, f64)] = &[
            ("worked_share", 0.0),
            ("accuracy_shortcut", 0.0),
            ("completion_len_incorrect", 9.0),
        ];
        let plots = stage_plots(&series(&[(1, step), (2, step)]));
        let slugs: Vec<&str> = plots.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs, ["zero-worked-mode", "zero-length-by-outcome"]);
        assert_eq!(plots[0].plot.series.len(), 2);
        assert_eq!(plots[1].plot.series[0].name, "completion_len_incorrect");
    }

    #[test]
    fn supervised_stages_get_a_loss_curve() {
        let plots = stage_plots(&series(&[
            (2, &[("loss", 3.0), ("learning_rate", 1e-3)]),
            (4, &[("loss", 2.0), ("learning_rate", 1e-3)]),
        ]));
        let slugs: Vec<&str> = plots.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs, ["zero-loss", "zero-learning_rate"]);
        assert_eq!(plots[0].plot.series[0].points, [(2.0, 3.0), (4.0, 2.0)]);
        assert!(stage_plots(&series(&[])).is_empty());
    }

    #[test]
    fn seeds_are_drawn_as_their_mean_with_a_band() {
        let a = series(&[(1, &[("reward", 0.0)]), (2, &[("reward", 1.0)])]);
        let b = series(&[
            (1, &[("reward", 1.0)]),
            (2, &[("reward", 1.0)]),
            (3, &[("reward", 1.0)]),
        ]);
        let plot = variant_plot(
            "reward".into(),
            "reward",
            &[VariantCurves {
                label: "arm".into(),
                members: vec![&a, &b],
            }],
            |_| Some("reward".into()),
        );
        let line = &plot.series[0];
        assert_eq!(line.name, "arm (mean ± std, n=2)");
        assert_eq!(
            line.points,
            [(1.0, 0.5), (2.0, 1.0)],
            "steps both seeds logged"
        );
        let (_, lo, hi) = line.band[0];
        assert!((hi - lo - 2.0 * std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(
            slug("eval/with_language+s1: Reward"),
            "eval-with_language-s1-reward"
        );
    }
}
