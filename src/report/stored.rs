//! Report: what the reports read from the store — a training stage's metric series with
//! the kinds of the rewards it used, and an eval stage's final metrics from the
//! `metrics.json` it stored, in the order reports list them.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::manifest::RewardDecl;
use crate::metric_names as names;
use crate::metrics::METRICS_FILE;
use crate::plan::{StageKey, StageSpec};
use crate::store::{BlobRef, MetricPoint, Store, StoreError, StoreErrorKind};

/// A stage instance as the reports see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRef {
    pub name: String,
    pub kind: String,
    pub key: StageKey,
}

/// A training stage's metric series, by step.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSeries {
    pub stage: StageRef,
    pub points: Vec<MetricPoint>,
    /// Reward name → its kind (`accuracy`, `format`, `language`, …), so that plots can
    /// find the accuracy and language-consistency rewards whatever they are named.
    pub reward_kinds: BTreeMap<String, String>,
}

impl StageSeries {
    /// The (step, value) points of `metric`, where logged.
    pub fn values(&self, metric: &str) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter_map(|p| p.values.get(metric).map(|v| (p.step as f64, *v)))
            .collect()
    }

    /// Every metric name logged at some step, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .points
            .iter()
            .flat_map(|p| p.values.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The names of the rewards of `kind` this stage used.
    pub fn rewards_of_kind(&self, kind: &str) -> Vec<&str> {
        self.reward_kinds
            .iter()
            .filter(|(_, k)| k.as_str() == kind)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// A reward declaration's kind, as written in manifests.
pub fn reward_kind(decl: &RewardDecl) -> String {
    serde_json::to_value(decl)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(String::from))
        .unwrap_or_default()
}

/// The series of `stage` (empty when it logged none), with reward kinds from the stage's
/// stored spec, or from `rewards` when given (a manifest being compared).
pub fn stage_series(
    store: &Store,
    stage: StageRef,
    rewards: Option<&IndexMap<String, RewardDecl>>,
) -> Result<StageSeries, StoreError> {
    let points = store.metrics(&stage.key)?;
    let reward_kinds = match rewards {
        Some(rewards) => rewards
            .iter()
            .map(|(name, decl)| (name.clone(), reward_kind(decl)))
            .collect(),
        None => store
            .spec::<StageSpec>(&stage.key)
            .ok()
            .flatten()
            .map(|spec| {
                spec.rewards
                    .iter()
                    .map(|(name, decl)| (name.clone(), reward_kind(decl)))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(StageSeries {
        stage,
        points,
        reward_kinds,
    })
}

/// An eval stage's final metrics: its stored `metrics.json` (verified by hash), else the
/// metrics its record holds (the same numbers), ordered as reports list them.
pub fn eval_metrics(
    store: &Store,
    outputs: &BTreeMap<String, BlobRef>,
    recorded: &BTreeMap<String, f64>,
) -> Result<IndexMap<String, f64>, StoreError> {
    let metrics: BTreeMap<String, f64> = match outputs.get(METRICS_FILE) {
        Some(blob) => {
            let bytes = store.blobs().read(blob)?;
            // JSON writes NaN and infinities as `null`: they come back as NaN.
            let stored: BTreeMap<String, Option<f64>> =
                serde_json::from_slice(&bytes).map_err(|e| {
                    StoreError::new(StoreErrorKind::Record(format!(
                        "{METRICS_FILE} of an eval stage: {e}"
                    )))
                })?;
            stored
                .into_iter()
                .map(|(name, value)| (name, value.unwrap_or(f64::NAN)))
                .collect()
        }
        None => recorded.clone(),
    };
    Ok(order_metrics(metrics))
}

/// Eval metrics in report order: `pass@K` and `cons@K` by K, `format_rate`,
/// `language_consistency`, completion lengths (overall, then of correct and incorrect
/// completions), the worked mode's share and each mode's accuracy, `truncated_ratio`,
/// `reward/NAME`, then anything else.
pub fn order_metrics(metrics: impl IntoIterator<Item = (String, f64)>) -> IndexMap<String, f64> {
    let mut all: Vec<(String, f64)> = metrics.into_iter().collect();
    all.sort_by(|(a, _), (b, _)| metric_rank(a).cmp(&metric_rank(b)).then_with(|| a.cmp(b)));
    all.into_iter().collect()
}

/// A final metric as tables show it: lengths with one decimal, rates and rewards with
/// four.
pub fn format_metric(name: &str, value: f64) -> String {
    let name = name.rsplit('/').next().unwrap_or(name);
    if name.starts_with("completion_len") {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    }
}

/// The sort rank of a metric name (see `order_metrics`).
pub fn metric_rank(name: &str) -> (u8, usize) {
    let k = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|k| k.parse::<usize>().ok())
    };
    if let Some(k) = k(names::PASS_AT_PREFIX) {
        return (0, k);
    }
    if let Some(k) = k(names::CONS_AT_PREFIX) {
        return (1, k);
    }
    match name {
        names::FORMAT_RATE => (2, 0),
        names::LANGUAGE_CONSISTENCY => (3, 0),
        names::COMPLETION_LEN_MEAN => (4, 0),
        names::COMPLETION_LEN_MEDIAN => (4, 1),
        names::COMPLETION_LEN_MAX => (4, 2),
        names::COMPLETION_LEN_CORRECT => (4, 3),
        names::COMPLETION_LEN_INCORRECT => (4, 4),
        names::WORKED_SHARE => (4, 5),
        names::ACCURACY_WORKED => (4, 6),
        names::ACCURACY_SHORTCUT => (4, 7),
        "truncated_ratio" => (4, 8),
        _ if name.starts_with(names::REWARD_PREFIX) => (5, 0),
        _ => (6, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_metrics_come_in_report_order() {
        let names = [
            "reward/format",
            "completion_len_max",
            "cons@8",
            "pass@8",
            "pass@1",
            "cons@1",
            "format_rate",
            "language_consistency",
            "completion_len_mean",
            "completion_len_median",
            "pass@16",
            "truncated_ratio",
            "accuracy_shortcut",
            "reward/accuracy",
            "worked_share",
            "completion_len_incorrect",
            "accuracy_worked",
            "completion_len_correct",
        ];
        let ordered = order_metrics(names.iter().map(|n| (n.to_string(), 0.0)));
        let keys: Vec<&str> = ordered.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "pass@1",
                "pass@8",
                "pass@16",
                "cons@1",
                "cons@8",
                "format_rate",
                "language_consistency",
                "completion_len_mean",
                "completion_len_median",
                "completion_len_max",
                "completion_len_correct",
                "completion_len_incorrect",
                "worked_share",
                "accuracy_worked",
                "accuracy_shortcut",
                "truncated_ratio",
                "reward/accuracy",
                "reward/format"
            ]
        );
    }
}
