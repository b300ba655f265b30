//! Execute (stage kind `reward_model`): a scalar-head model trained on the data's train
//! pairs with the Bradley–Terry loss, scored on its test pairs.

use crate::exec::{StageContext, StageError};
use crate::records::DatasetRecord;
use crate::stages::InputField;
use crate::stages::RewardModel;
use crate::train::{self, JobResult, PreferencePair, RewardModelJob};

pub(super) fn run(settings: RewardModel, context: &mut StageContext<'_>) -> JobResult {
    let pairs = |file: &str| -> Result<Vec<PreferencePair>, StageError> {
        let records: Vec<DatasetRecord> = context.read_records(InputField::Data, file)?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                Some(PreferencePair {
                    prompt: r.prompt,
                    chosen: r.chosen?,
                    rejected: r.rejected?,
                })
            })
            .collect())
    };
    let job = RewardModelJob {
        pairs: pairs("train.jsonl")?,
        held_out: pairs("test.jsonl")?,
        max_seq_length: settings.max_seq_length,
        center_rewards_coefficient: settings.center_rewards_coefficient,
        hyper: settings.training,
        seed: settings.seed,
    };
    train::run_job(context, job)
}
