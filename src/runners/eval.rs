//! Execute (stage kind `eval`): n samples per held-out prompt, and pass@1, pass@k, cons@k,
//! format rate, language consistency, lengths and each reward; the samples are kept.

use crate::exec::StageContext;
use crate::stages::{Eval, EvalSplit};
use crate::train::{self, EvalJob, JobResult};

pub(super) fn run(settings: Eval, context: &mut StageContext<'_>) -> JobResult {
    let job = EvalJob {
        split_file: match settings.split {
            EvalSplit::Train => "train.jsonl",
            EvalSplit::Test => "test.jsonl",
        },
        num_samples: settings.num_samples,
        ks: settings.ks,
        rewards: settings.rewards,
        limit: settings.limit,
        sampling: train::sampling_params(&settings.generation, settings.seed),
        max_prompt_length: settings.generation.max_prompt_length,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
