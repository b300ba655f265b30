//! Execute (stage kind `sft`): fine-tuning on the data's (prompt, completion) pairs, the
//! loss on completion tokens only unless `completion_only_loss` is off.

use crate::exec::StageContext;
use crate::records::DatasetRecord;
use crate::stages::InputField;
use crate::stages::Sft;
use crate::train::{self, JobResult, Objective, SequenceMode, SupervisedJob};

pub(super) fn run(settings: Sft, context: &mut StageContext<'_>) -> JobResult {
    let records: Vec<DatasetRecord> = context.read_records(InputField::Data, "train.jsonl")?;
    let examples = records
        .into_iter()
        .filter_map(|r| Some((r.prompt, r.completion?)))
        .collect();
    let mode = if settings.packing {
        SequenceMode::Packed
    } else {
        SequenceMode::Pairs {
            completion_only: settings.completion_only_loss,
        }
    };
    let job = SupervisedJob {
        init_field: InputField::From,
        examples,
        mode,
        objective: Objective::CrossEntropy,
        max_seq_length: settings.max_seq_length,
        hyper: settings.training,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
