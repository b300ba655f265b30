//! Execute (training): which rewards score a policy's completions — the same weighted
//! rewards for every prompt (`grpo`), or by prompt type (`rlhf`: rule rewards for
//! reasoning prompts, a reward model plus extra rewards for general ones).

use indexmap::IndexMap;

use super::models::failed;
use crate::exec::{StageContext, StageError};
use crate::manifest::{ModelReward, RewardDecl};
use crate::plan::InputSpec;
use crate::rewards::{Reward, RewardSet, RoutedRewards};
use crate::stages::InputField;

/// Name of the implicit reward-model term of `rlhf`'s general prompts (logged as
/// `reward/general/reward_model`).
pub const REWARD_MODEL_TERM: &str = "reward_model";

/// Which rewards score a policy's completions (names → weights).
#[derive(Debug, Clone)]
pub enum PolicyRewards {
    /// The same rewards for every prompt (`grpo`).
    Same(IndexMap<String, f64>),
    /// `rlhf`: `reasoning` for prompts with a reference answer; for the others the score
    /// of the reward model named by input `reward_model_field` (weight 1, unless
    /// `general` names a `model` reward of that stage, whose weight then applies) plus
    /// `general`.
    ByKind {
        reasoning: IndexMap<String, f64>,
        general: IndexMap<String, f64>,
        reward_model_field: InputField,
    },
}

impl PolicyRewards {
    /// The reward functions, built from the stage's declarations.
    pub(super) fn build(&self, context: &StageContext<'_>) -> Result<RoutedRewards, StageError> {
        let spec = context.spec();
        let build = |weights: &IndexMap<String, f64>| {
            RewardSet::build(weights, &spec.rewards, &spec.base_dir).map_err(failed)
        };
        match self {
            Self::Same(weights) => Ok(RoutedRewards::Same(build(weights)?)),
            Self::ByKind {
                reasoning,
                general,
                reward_model_field,
            } => {
                let Some(InputSpec::Artifact { stage, .. }) = spec.input(*reward_model_field)
                else {
                    return Err(failed(format!(
                        "input `{reward_model_field}` is not a reward model stage"
                    )));
                };
                let extra = build(general)?;
                let mut general = RewardSet::new(Vec::new());
                if !extra.reward_model_stages().contains(&stage.as_str()) {
                    let decl = RewardDecl::Model(ModelReward {
                        model: stage.clone(),
                    });
                    let term = Reward::from_decl(REWARD_MODEL_TERM, &decl, &spec.base_dir)
                        .map_err(failed)?;
                    general.push(term, 1.0);
                }
                for (reward, weight) in extra.rewards() {
                    general.push(reward.clone(), *weight);
                }
                Ok(RoutedRewards::ByKind {
                    reasoning: build(reasoning)?,
                    general,
                })
            }
        }
    }
}
