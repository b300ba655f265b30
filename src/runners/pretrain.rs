//! Execute (stage kind `pretrain`): next-token training on the data's full texts (prompt
//! and completion), packed into `max_seq_length` windows.

use crate::exec::StageContext;
use crate::records::DatasetRecord;
use crate::stages::InputField;
use crate::stages::Pretrain;
use crate::train::{self, JobResult, Objective, SequenceMode, SupervisedJob};

pub(super) fn run(settings: Pretrain, context: &mut StageContext<'_>) -> JobResult {
    let records: Vec<DatasetRecord> = context.read_records(InputField::Data, "train.jsonl")?;
    let examples = records
        .into_iter()
        .map(|r| (r.prompt, r.completion.unwrap_or_default()))
        .collect();
    let job = SupervisedJob {
        init_field: InputField::From,
        examples,
        mode: SequenceMode::Packed,
        objective: Objective::CrossEntropy,
        max_seq_length: settings.max_seq_length,
        hyper: settings.training,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
