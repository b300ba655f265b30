//! Parse: `dynamic_sampling:` of `grpo` and `rlhf` — DAPO's dynamic sampling, which keeps
//! only the groups a raw reward tells apart and samples new prompts in place of the rest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `dynamic_sampling: {metric: accuracy, max_rounds: 3}` — after a step's groups are
/// scored, each group whose `metric` reward is the same for every completion is dropped
/// (all its advantages are 0, so it teaches nothing) and groups of new prompts are
/// sampled in its place, until the step's batch is full or `max_rounds` rounds were
/// sampled; the step then trains on the groups it kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicSampling {
    /// The reward whose constant groups are dropped: one of the stage's `rewards:`, as it
    /// scores (not weighted, not summed). Filter on the task's outcome (`accuracy`), not
    /// on shaping terms: a group that is all right or all wrong but differs in length or
    /// format still teaches nothing about the task.
    pub metric: String,
    /// Sampling rounds per step, the first included; at least 1 (1 only drops).
    pub max_rounds: u32,
}
