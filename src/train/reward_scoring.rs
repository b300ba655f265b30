//! Execute (rewards): the trained reward models a stage's `model` rewards read — loaded
//! from their `reward_model` artifacts on the inner (non-autodiff) backend — lent to the
//! rewards as a [`ModelScorer`]. They score the prompt followed by what the policy
//! generated, as the reward model was trained on prompt + completion.

use burn::tensor::backend::Backend;

use super::reward_model::{load_reward_model, StoredRewardModel};
use crate::exec::{StageContext, StageError};
use crate::model::KernelBackend;
use crate::rewards::{ModelScorer, Sample};

/// Texts scored per forward pass.
const SCORING_ROWS: usize = 32;

/// The reward models of a running stage, by stage name.
pub struct RewardModels<B: Backend> {
    models: Vec<(String, StoredRewardModel<B>)>,
    device: B::Device,
}

impl<B: KernelBackend> RewardModels<B> {
    /// Loads the reward model of each of `stages` from the stage input that names it.
    pub fn load(
        context: &StageContext<'_>,
        stages: &[&str],
        device: &B::Device,
    ) -> Result<Self, StageError> {
        let mut models = Vec::with_capacity(stages.len());
        for &stage in stages {
            models.push((
                stage.to_string(),
                load_reward_model::<B>(context, stage, device)?,
            ));
        }
        Ok(Self {
            models,
            device: device.clone(),
        })
    }
}

impl<B: KernelBackend> ModelScorer for RewardModels<B> {
    fn score(&mut self, stage: &str, samples: &[Sample<'_>]) -> Result<Vec<f64>, String> {
        let (_, model) = self
            .models
            .iter()
            .find(|(name, _)| name == stage)
            .ok_or_else(|| format!("the reward model of stage `{stage}` is not loaded"))?;
        let texts: Vec<(&str, &str)> = samples.iter().map(|s| (s.prompt, s.generated())).collect();
        model
            .score_texts(&texts, SCORING_ROWS, &self.device)
            .map_err(|e| e.to_string())
    }
}
