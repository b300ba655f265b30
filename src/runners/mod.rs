//! Execute (stage kinds): how each stage kind runs — one runner per kind, reading the
//! settings `check` resolved (`crate::stages::ResolvedStage`) and the inputs the executor
//! hands it. `Runners` registers them with the executor (`exec::StageRunner`): the match
//! below is exhaustive, so a kind without a runner does not compile.

mod dataset;
mod distill;
mod eval;
mod export;
mod grpo;
mod pretrain;
mod rejection_sampling;
mod reward_model;
mod rlhf;
mod sft;

use crate::exec::{StageContext, StageError, StageOutput, StageRunner};
use crate::stages::ResolvedStage;

/// Every stage kind's runner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Runners;

impl StageRunner for Runners {
    fn run(&self, context: &mut StageContext<'_>) -> Result<StageOutput, StageError> {
        match context.spec().resolved.clone() {
            ResolvedStage::Dataset(settings) => dataset::run(&settings, context),
            ResolvedStage::Pretrain(settings) => pretrain::run(settings, context),
            ResolvedStage::Sft(settings) => sft::run(settings, context),
            ResolvedStage::Grpo(settings) => grpo::run(settings, context),
            ResolvedStage::RejectionSampling(settings) => {
                rejection_sampling::run(settings, context)
            }
            ResolvedStage::RewardModel(settings) => reward_model::run(settings, context),
            ResolvedStage::Rlhf(settings) => rlhf::run(settings, context),
            ResolvedStage::Distill(settings) => distill::run(settings, context),
            ResolvedStage::Eval(settings) => eval::run(settings, context),
            ResolvedStage::Export(settings) => export::run(&settings, context),
        }
    }
}
