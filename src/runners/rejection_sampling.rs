//! Execute (stage kind `rejection_sampling`): n samples per prompt, kept when they pass
//! the thresholds and format rule — an SFT dataset, or preference pairs.

use crate::exec::StageContext;
use crate::stages::{RejectionEmit, RejectionSampling};
use crate::train::{self, JobResult, RejectionJob};

pub(super) fn run(settings: RejectionSampling, context: &mut StageContext<'_>) -> JobResult {
    let job = RejectionJob {
        num_samples: settings.num_samples,
        thresholds: settings.thresholds,
        require_format: settings.require_format,
        dedup: settings.dedup,
        max_per_prompt: settings.max_per_prompt,
        limit: settings.limit,
        sampling: train::sampling_params(&settings.generation, settings.seed),
        max_prompt_length: settings.generation.max_prompt_length,
        preferences: settings.emit == RejectionEmit::Preferences,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
