//! Check: `dynamic_sampling:` of `grpo` and `rlhf` — its `metric` is a raw reward the stage
//! scores, never the weighted sum nor a shaping penalty, and it samples at least one round.
//!
//! Filtering on the shaped reward is the mistake DAPO users report: with an overlong or
//! format term in the sum, a group whose completions are all right (or all wrong) still
//! differs a little, so it is kept although it says nothing about the task, and the batch
//! fills with such groups.

use indexmap::IndexMap;

use super::suggest;
use crate::manifest::{DynamicSampling, RewardDecl};
use crate::metric_names as names;
use crate::stages::{FieldChecks, StageDecl};

/// Names a user may take for the weighted sum; none is a reward a stage can list.
const COMBINED: &[&str] = &[
    names::REWARD,
    "rewards",
    "total",
    "score",
    names::REWARD_STD,
];

/// Checks `decl`'s `dynamic_sampling:`, if it has one; `declared` are the manifest's
/// `rewards:` entries.
pub(crate) fn check(
    decl: &StageDecl,
    declared: &IndexMap<String, RewardDecl>,
    checks: &mut FieldChecks<'_>,
) {
    let (sampling, rewards, other) = match decl {
        StageDecl::Grpo(stage) => (&stage.dynamic_sampling, &stage.rewards, None),
        StageDecl::Rlhf(stage) => (
            &stage.dynamic_sampling,
            &stage.rewards,
            Some(&stage.general_rewards),
        ),
        _ => return,
    };
    let Some(DynamicSampling { metric, max_rounds }) = sampling else {
        return;
    };
    checks.ensure(
        *max_rounds >= 1,
        "dynamic_sampling.max_rounds",
        format!("`dynamic_sampling.max_rounds` must be at least 1, not {max_rounds}"),
        "rounds of sampling per step, the first included: 1 only drops groups, 3 to 5 refills most batches",
    );
    let names: Vec<&str> = rewards.keys().map(String::as_str).collect();
    let listed = names.join("`, `");
    let field = "dynamic_sampling.metric";
    if COMBINED.contains(&metric.as_str()) {
        checks.error(
            field,
            format!("`dynamic_sampling.metric` is `{metric}`: dynamic sampling filters on one raw reward, not the weighted sum of the stage's rewards"),
            format!("the weighted sum holds shaping terms (length, format), so a group that is all right or all wrong still varies and is kept although it teaches nothing; name a task reward of `rewards:`, e.g. `metric: {}`", names.first().copied().unwrap_or("accuracy")),
        );
        return;
    }
    if !rewards.contains_key(metric) {
        let (message, help) = if other.is_some_and(|general| general.contains_key(metric)) {
            (
                format!("`dynamic_sampling.metric` `{metric}` is one of `general_rewards`, which score general prompts"),
                format!("dynamic sampling filters the reasoning prompts' groups by a reward of `rewards:` (`{listed}`); general prompts' groups are always kept"),
            )
        } else if declared.contains_key(metric) || RewardDecl::builtin(metric).is_some() {
            (
                format!("`dynamic_sampling.metric` `{metric}` is not one of this stage's `rewards:`"),
                format!("the filter reads a reward the stage scores: add `{metric}` to `rewards:` (a weight of 0 scores and logs it without training on it), or use one of `{listed}`"),
            )
        } else {
            (
                format!("`dynamic_sampling.metric` names an unknown reward `{metric}`"),
                suggest::help_for(metric, &names, "reward of this stage"),
            )
        };
        checks.error(field, message, help);
        return;
    }
    let kind = declared
        .get(metric)
        .cloned()
        .or_else(|| RewardDecl::builtin(metric));
    if let Some(RewardDecl::Length(_)) = kind {
        checks.error(
            field,
            format!("`dynamic_sampling.metric` `{metric}` is a length penalty, a shaping term: it does not say whether a completion solved its task"),
            format!("filter on the task's outcome, e.g. `metric: accuracy`; the length penalty is 0 for most groups, so filtering on it would drop them{}", if names.len() > 1 { format!(" (this stage's rewards: `{listed}`)") } else { String::new() }),
        );
    }
}
