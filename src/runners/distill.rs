//! Execute (stage kind `distill`): the student trains on the teacher's samples — SFT on
//! their completions as R1 distilled, or KL to the teacher's distributions on them.

use crate::exec::StageContext;
use crate::records::DatasetRecord;
use crate::stages::InputField;
use crate::stages::{Distill, DistillObjective};
use crate::train::{self, JobResult, Objective, SequenceMode, SupervisedJob};

pub(super) fn run(settings: Distill, context: &mut StageContext<'_>) -> JobResult {
    let objective = match settings.objective {
        DistillObjective::Sft => Objective::CrossEntropy,
        DistillObjective::Logits { kl } => Objective::TeacherLogits {
            teacher_field: InputField::Teacher,
            kl,
        },
    };
    let records: Vec<DatasetRecord> = context.read_records(InputField::Data, "train.jsonl")?;
    let examples = records
        .into_iter()
        .filter_map(|r| Some((r.prompt, r.completion?)))
        .collect();
    let job = SupervisedJob {
        init_field: InputField::Student,
        examples,
        mode: SequenceMode::Pairs {
            completion_only: true,
        },
        objective,
        max_seq_length: settings.max_seq_length,
        hyper: settings.training,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
