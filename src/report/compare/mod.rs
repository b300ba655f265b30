//! Report (`compare`): a table across variants or runs — the parameters that differ
//! between rows (and only those, like `dvc exp show --only-changed`), then each row's final
//! eval metrics. Rows that differ only in seeds are grouped into one row with mean ± std
//! (sample std, n − 1) across the seeds. `render` writes it as text, Markdown, CSV or JSON;
//! `page` draws the training curves of the stages that differ and the HTML page.
//! `statistics` compares each row with a baseline row prompt by prompt (`prompt_scores`
//! from the stored samples, the `paired` bootstrap, `seeds` needed), shown by
//! `render_stats`.

mod page;
pub mod paired;
pub mod prompt_scores;
mod render;
mod render_stats;
pub mod seeds;
pub mod statistics;

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_json::Value;

use super::params::{self, Params};
use super::stats::mean_std;
use super::stored::{order_metrics, StageSeries};
use crate::plan::StageKey;

pub use paired::{Interval, Verdict, DEFAULT_RESAMPLES};
pub use statistics::{
    MetricDifference, PairedComparison, ScoresByKey, SeedSpread, Statistics, StatsOptions,
    UnknownBaseline,
};

/// One variant of a manifest, or one variant of a stored run, before seeds are grouped.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    /// The variant's name (prefixed with its run id when several runs are compared).
    pub label: String,
    /// Every resolved parameter (see `report::params`).
    pub params: Params,
    /// The final metrics of its eval stages that are in the store.
    pub evals: Vec<EvalResult>,
    /// Stages of the variant that are not in the store, as `name (key 0123456789ab)`.
    pub missing: Vec<String>,
    /// The metric series of its training stages.
    pub curves: Vec<StageSeries>,
}

/// One eval stage instance's final metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub stage: String,
    pub key: StageKey,
    pub metrics: IndexMap<String, f64>,
}

/// One row of the table: a variant, or a group of variants that differ only in seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub variant: String,
    /// The differing parameters (seeds left out when the row groups seeds).
    pub params: Params,
    /// Final metrics: a variant's own, or the mean over the group's members.
    pub metrics: IndexMap<String, f64>,
    /// Sample std over the members, for metrics at least two members have.
    pub std: IndexMap<String, f64>,
    /// Indices of the variants this row stands for (one unless seeds are grouped).
    pub members: Vec<usize>,
    /// Members' stages that are not in the store, as `variant: name (key …)`.
    pub missing: Vec<String>,
}

/// The comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub variants: Vec<VariantResult>,
    /// Dotted paths of the parameters shown (those that differ between rows).
    pub param_columns: Vec<String>,
    pub metric_columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Whether rows were grouped over seeds.
    pub seeds_grouped: bool,
    /// Eval stages left out because every row shares one instance of them (equal
    /// metrics everywhere), while other eval stages differ.
    pub shared_evals: Vec<String>,
    /// Each row against the baseline row, prompt by prompt (see `statistics`); `None`
    /// until `with_statistics` adds them.
    pub statistics: Option<Statistics>,
}

/// Builds the table. With `group_seeds`, variants whose differing parameters are all
/// seeds (`…seed`) apart from a common rest are grouped into one row.
pub fn compare(variants: Vec<VariantResult>, group_seeds: bool) -> Comparison {
    let all: Vec<&Params> = variants.iter().map(|v| &v.params).collect();
    let differing = params::differing(&all);
    let (seed_paths, other_paths): (Vec<String>, Vec<String>) =
        differing.into_iter().partition(|p| params::is_seed(p));

    // Groups: equal values of every differing parameter but the seeds.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    if group_seeds && !seed_paths.is_empty() {
        let mut by_rest: IndexMap<String, Vec<usize>> = IndexMap::new();
        for (i, variant) in variants.iter().enumerate() {
            let rest: Vec<Option<&Value>> =
                other_paths.iter().map(|p| variant.params.get(p)).collect();
            by_rest
                .entry(serde_json::to_string(&rest).unwrap_or_default())
                .or_default()
                .push(i);
        }
        groups = by_rest.into_values().collect();
    }
    let seeds_grouped = groups.iter().any(|g| g.len() > 1);
    if !seeds_grouped {
        groups = (0..variants.len()).map(|i| vec![i]).collect();
    }
    let mut param_columns: Vec<String> = if seeds_grouped {
        other_paths
    } else {
        let mut all: Vec<String> = seed_paths.into_iter().chain(other_paths).collect();
        all.sort();
        all
    };

    // Eval stages: those whose instance differs between the variants (an eval stage all
    // variants share, like the base model's, has equal metrics in every row), unless
    // every one is shared. Metric names are prefixed with the stage when several remain.
    let mut keys_by_stage: IndexMap<&str, BTreeSet<&str>> = IndexMap::new();
    for variant in &variants {
        for eval in &variant.evals {
            keys_by_stage
                .entry(eval.stage.as_str())
                .or_default()
                .insert(eval.key.as_str());
        }
    }
    let differing_evals: Vec<&str> = keys_by_stage
        .iter()
        .filter(|(_, keys)| keys.len() > 1)
        .map(|(stage, _)| *stage)
        .collect();
    let (shown, shared_evals): (Vec<&str>, Vec<String>) = if differing_evals.is_empty() {
        (keys_by_stage.keys().copied().collect(), Vec::new())
    } else {
        (
            differing_evals.clone(),
            keys_by_stage
                .keys()
                .filter(|s| !differing_evals.contains(s))
                .map(|s| s.to_string())
                .collect(),
        )
    };
    // Every shown eval stage is one instance that all variants share (`--stage eval_base`):
    // one row says its numbers once, instead of repeating them per variant with ± 0.
    let one_instance = variants.len() > 1
        && !shown.is_empty()
        && shown
            .iter()
            .all(|s| keys_by_stage.get(s).is_some_and(|k| k.len() == 1))
        && variants
            .iter()
            .all(|v| shown.iter().all(|s| v.evals.iter().any(|e| e.stage == *s)));
    if one_instance {
        groups = vec![(0..variants.len()).collect()];
        param_columns.clear();
    }
    let prefixed = shown.len() > 1;
    let metrics_of = |v: &VariantResult| -> IndexMap<String, f64> {
        let mut out = IndexMap::new();
        for eval in v.evals.iter().filter(|e| shown.contains(&e.stage.as_str())) {
            for (name, value) in &eval.metrics {
                let name = if prefixed {
                    format!("{}/{name}", eval.stage)
                } else {
                    name.clone()
                };
                out.insert(name, *value);
            }
        }
        out
    };
    let own: Vec<IndexMap<String, f64>> = variants.iter().map(metrics_of).collect();

    let mut columns: Vec<String> = Vec::new();
    for metrics in &own {
        for name in metrics.keys() {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    if !prefixed {
        columns = order_metrics(columns.into_iter().map(|c| (c, 0.0)))
            .into_keys()
            .collect();
    }

    let rows = groups
        .into_iter()
        .map(|members| {
            let first = &variants[members[0]];
            let mut metrics = IndexMap::new();
            let mut std = IndexMap::new();
            for column in &columns {
                let values: Vec<f64> = members
                    .iter()
                    .filter_map(|&i| own[i].get(column).copied())
                    .collect();
                if values.is_empty() {
                    continue;
                }
                let (mean, sd) = mean_std(&values);
                metrics.insert(column.clone(), mean);
                if members.len() > 1 && !one_instance {
                    if let Some(sd) = sd {
                        std.insert(column.clone(), sd);
                    }
                }
            }
            let labels: Vec<&str> = members
                .iter()
                .map(|&i| variants[i].label.as_str())
                .collect();
            let missing = members
                .iter()
                .flat_map(|&i| {
                    let variant = &variants[i];
                    variant
                        .missing
                        .iter()
                        .map(move |m| format!("{}: {m}", variant.label))
                })
                .collect();
            Row {
                variant: if one_instance {
                    format!("all {} variants (one shared instance)", members.len())
                } else if members.len() > 1 {
                    common_label(&labels)
                } else {
                    first.label.clone()
                },
                params: param_columns
                    .iter()
                    .filter_map(|p| first.params.get(p).map(|v| (p.clone(), v.clone())))
                    .collect(),
                metrics,
                std,
                members,
                missing,
            }
        })
        .collect();
    Comparison {
        variants,
        param_columns,
        metric_columns: columns,
        rows,
        seeds_grouped: seeds_grouped && !one_instance,
        shared_evals,
        statistics: None,
    }
}

/// The stages of `variants` that are not in the store, once each: `stage (key …) for
/// variant, variant` (a stage shared by several variants is one line).
pub fn missing_stages(variants: &[VariantResult]) -> Vec<String> {
    let mut by_stage: IndexMap<&str, Vec<&str>> = IndexMap::new();
    for variant in variants {
        for missing in &variant.missing {
            by_stage.entry(missing).or_default().push(&variant.label);
        }
    }
    by_stage
        .into_iter()
        .map(|(stage, labels)| format!("{stage} for {}", labels.join(", ")))
        .collect()
}

/// The name of a group of variants: the arm names (`+`-separated, after an optional
/// `source:` prefix) all of them share, in place (`with_language` for `with_language+s1`
/// and `with_language+s2`; `m.yaml:low` for `m.yaml:low+s1` and `m.yaml:low+s2`).
fn common_label(labels: &[&str]) -> String {
    // Each part with the separator before it.
    fn parts(label: &str) -> Vec<(char, &str)> {
        let mut out = Vec::new();
        let mut separator = ' ';
        let mut start = 0;
        for (i, c) in label.char_indices() {
            if c == '+' || c == ':' {
                out.push((separator, &label[start..i]));
                separator = c;
                start = i + 1;
            }
        }
        out.push((separator, &label[start..]));
        out
    }
    let split: Vec<Vec<(char, &str)>> = labels.iter().map(|l| parts(l)).collect();
    let Some(first) = split.first() else {
        return String::new();
    };
    let mut label = String::new();
    for (i, part) in first.iter().enumerate() {
        if split.iter().all(|s| s.get(i) == Some(part)) {
            if !label.is_empty() {
                label.push(part.0);
            }
            label.push_str(part.1);
        }
    }
    if label.is_empty() {
        "all seeds".to_string()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variant(label: &str, params: Value, metrics: &[(&str, f64)]) -> VariantResult {
        let mut flat = Params::new();
        if let Value::Object(map) = params {
            for (k, v) in &map {
                params::flatten_into(k, v, &mut flat);
            }
        }
        VariantResult {
            label: label.into(),
            params: flat,
            evals: vec![EvalResult {
                stage: "eval".into(),
                key: StageKey::new(format!("key of {label}")),
                metrics: metrics.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            }],
            missing: Vec::new(),
            curves: Vec::new(),
        }
    }

    fn readability() -> Vec<VariantResult> {
        let arm = |lang: f64, seed: u64, pass: f64, len: f64| {
            let name = if lang > 0.0 {
                "with_language"
            } else {
                "accuracy_only"
            };
            variant(
                &format!("{name}+s{seed}"),
                json!({"stages": {"rl": {"learning_rate": 2e-5, "seed": seed, "rewards": {"language": lang}}}}),
                &[
                    ("pass@1", pass),
                    ("completion_len_mean", len),
                    ("format_rate", 1.0),
                ],
            )
        };
        vec![
            arm(0.0, 1, 0.30, 40.0),
            arm(0.0, 2, 0.40, 44.0),
            arm(0.5, 1, 0.25, 38.0),
            arm(0.5, 2, 0.27, 36.0),
        ]
    }

    #[test]
    fn mean_and_sample_std() {
        let (mean, sd) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(mean, 5.0);
        assert!((sd.unwrap_or(0.0) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[3.0]), (3.0, None));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn seeds_are_grouped_into_mean_and_std() {
        let table = compare(readability(), true);
        assert!(table.seeds_grouped);
        assert_eq!(table.param_columns, ["stages.rl.rewards.language"]);
        assert_eq!(
            table.metric_columns,
            ["pass@1", "format_rate", "completion_len_mean"]
        );
        let names: Vec<&str> = table.rows.iter().map(|r| r.variant.as_str()).collect();
        assert_eq!(names, ["accuracy_only", "with_language"]);
        let first = &table.rows[0];
        assert!((first.metrics["pass@1"] - 0.35).abs() < 1e-12);
        assert!((first.std["pass@1"] - (0.005f64).sqrt()).abs() < 1e-12);
        assert_eq!(first.std["format_rate"], 0.0);
        assert_eq!(first.members, [0, 1]);

        let text = table.to_text();
        assert!(
            text.starts_with("variant        seeds  stages.rl.rewards.language  pass@1"),
            "{text}"
        );
        assert!(text.contains("0.3500 ± 0.0707"), "{text}");
    }

    #[test]
    fn without_grouping_seeds_are_parameters() {
        let table = compare(readability(), false);
        assert!(!table.seeds_grouped);
        assert_eq!(
            table.param_columns,
            ["stages.rl.rewards.language", "stages.rl.seed"]
        );
        assert_eq!(table.rows.len(), 4);
        assert!(table.rows.iter().all(|r| r.std.is_empty()));
    }

    #[test]
    fn variants_that_differ_in_more_than_seeds_are_not_grouped() {
        let table = compare(
            vec![
                variant("a", json!({"seed": 1, "lr": 1}), &[("pass@1", 0.1)]),
                variant("b", json!({"seed": 2, "lr": 2}), &[("pass@1", 0.2)]),
            ],
            true,
        );
        assert!(!table.seeds_grouped);
        assert_eq!(table.param_columns, ["lr", "seed"]);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let table = compare(readability()[..2].to_vec(), false);
        let value = table.to_json();
        assert_eq!(
            value,
            json!({"rows": [
                {"variant": "accuracy_only+s1", "params": {"stages.rl.seed": 1},
                 "metrics": {"pass@1": 0.30, "format_rate": 1.0, "completion_len_mean": 40.0}},
                {"variant": "accuracy_only+s2", "params": {"stages.rl.seed": 2},
                 "metrics": {"pass@1": 0.40, "format_rate": 1.0, "completion_len_mean": 44.0}}
            ]})
        );
        let grouped = compare(readability(), true).to_json();
        let row = &grouped["rows"][1];
        assert_eq!(row["variant"], "with_language");
        assert_eq!(row["seeds"], 2);
        assert_eq!(
            row["members"],
            json!(["with_language+s1", "with_language+s2"])
        );
        assert_eq!(row["params"], json!({"stages.rl.rewards.language": 0.5}));
        assert!(row["std"]["pass@1"].as_f64().is_some());
    }

    #[test]
    fn several_eval_stages_prefix_metric_names_and_shared_ones_are_left_out() {
        let base = |v: &mut VariantResult, key: &str, pass: f64| {
            v.evals.push(EvalResult {
                stage: "eval_base".into(),
                key: key.into(),
                metrics: IndexMap::from([("pass@1".to_string(), pass)]),
            })
        };
        let mut a = variant("a", json!({"x": 1}), &[("pass@1", 0.1)]);
        let mut b = variant("b", json!({"x": 2}), &[("pass@1", 0.2)]);
        base(&mut a, "shared", 0.05);
        base(&mut b, "shared", 0.05);
        let table = compare(vec![a.clone(), b.clone()], true);
        assert_eq!(table.metric_columns, ["pass@1"]);
        assert_eq!(table.rows[1].metrics["pass@1"], 0.2, "eval, not eval_base");
        assert_eq!(table.shared_evals, ["eval_base"]);
        assert!(table.to_text().contains(
            "not shown: eval stage `eval_base`, the same instance in every row (--stage eval_base shows it)"
        ));

        b.evals[1].key = "own".into();
        let table = compare(vec![a.clone(), b], true);
        assert_eq!(table.metric_columns, ["eval/pass@1", "eval_base/pass@1"]);
        assert!(table.shared_evals.is_empty());

        // One row: every eval stage is "shared"; all are shown.
        let table = compare(vec![a], true);
        assert_eq!(table.metric_columns, ["eval/pass@1", "eval_base/pass@1"]);
        assert!(table.param_columns.is_empty(), "one row: nothing differs");
    }

    #[test]
    fn a_stage_all_variants_share_is_one_row() {
        // As `--stage eval_base` leaves it: every variant holds the same instance.
        let mut variants = readability();
        for v in &mut variants {
            v.evals = vec![EvalResult {
                stage: "eval_base".into(),
                key: "the base model's".into(),
                metrics: IndexMap::from([("pass@1".to_string(), 0.05)]),
            }];
        }
        let table = compare(variants, true);
        assert_eq!(table.rows.len(), 1);
        assert_eq!(
            table.rows[0].variant,
            "all 4 variants (one shared instance)"
        );
        assert!(table.param_columns.is_empty() && table.rows[0].std.is_empty());
        assert_eq!(table.rows[0].metrics["pass@1"], 0.05);
        assert_eq!(table.rows[0].members, [0, 1, 2, 3]);
    }

    #[test]
    fn markdown_and_csv_render_every_row_and_missing_stages() {
        let mut variants = readability();
        variants[3].evals.clear();
        variants[3].missing.push("eval (key 0123456789ab)".into());
        let table = compare(variants, false);
        let markdown = table.to_markdown();
        assert!(
            markdown
                .starts_with("| variant | stages.rl.rewards.language | stages.rl.seed | pass@1 |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("|---|---|---|---:|---:|---:|"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| with_language+s2 | 0.5 | 2 | — | — | — |"),
            "{markdown}"
        );
        assert!(markdown.contains("not in the store: eval (key 0123456789ab) for with_language+s2"));
        let csv = table.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "variant,stages.rl.rewards.language,stages.rl.seed,pass@1,format_rate,completion_len_mean");
        assert_eq!(lines[4], "with_language+s2,0.5,2,,,");
        assert_eq!(
            table.to_json()["rows"][3]["missing"],
            json!(["with_language+s2: eval (key 0123456789ab)"])
        );
    }

    #[test]
    fn a_missing_stage_shared_by_variants_is_listed_once() {
        let mut variants = readability();
        for v in &mut variants {
            v.missing.push("base (key aaaaaaaaaaaa)".into());
        }
        variants[0].missing.push("rl (key bbbbbbbbbbbb)".into());
        assert_eq!(
            missing_stages(&variants),
            [
                "base (key aaaaaaaaaaaa) for accuracy_only+s1, accuracy_only+s2, with_language+s1, with_language+s2",
                "rl (key bbbbbbbbbbbb) for accuracy_only+s1"
            ]
        );
    }

    #[test]
    fn group_names_keep_the_shared_arms() {
        assert_eq!(
            common_label(&["with_language+s1", "with_language+s2"]),
            "with_language"
        );
        assert_eq!(common_label(&["s1", "s2"]), "all seeds");
        assert_eq!(common_label(&["a+s1+x", "a+s2+x"]), "a+x");
        assert_eq!(
            common_label(&["m.yaml:low+s1", "m.yaml:low+s2"]),
            "m.yaml:low"
        );
        assert_eq!(common_label(&["m.yaml:low+s1", "run1:low+s2"]), "low");
    }
}
