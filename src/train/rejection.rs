//! Execute (data generation): rejection sampling — `n` samples per prompt from a model,
//! kept when every thresholded reward reaches its threshold, the strict R1 format holds
//! (when required), and the completion is new for its prompt; at most `max_per_prompt`
//! per prompt. The kept samples are an SFT dataset whose ids record their prompt.

use std::collections::{BTreeMap, HashSet};

use burn::tensor::backend::AutodiffBackend;
use indexmap::IndexMap;

use super::models::{failed, load_input};
use super::sampling::sample_records;
use crate::exec::{StageContext, StageError, StageOutput};
use crate::model::{BackendTask, SamplingParams};
use crate::records::{to_jsonl, Answer, DatasetRecord};
use crate::rewards::format::is_strict_r1;
use crate::rewards::{RewardSet, Sample};

/// The resolved settings of a rejection-sampling stage.
#[derive(Debug, Clone)]
pub struct RejectionJob {
    pub num_samples: usize,
    pub thresholds: IndexMap<String, f64>,
    pub require_format: bool,
    pub dedup: bool,
    pub max_per_prompt: usize,
    pub sampling: SamplingParams,
    pub max_prompt_length: usize,
    pub seed: u64,
}

pub struct RejectionTask<'c, 'a> {
    pub context: &'c mut StageContext<'a>,
    pub job: RejectionJob,
}

impl BackendTask for RejectionTask<'_, '_> {
    type Output = Result<StageOutput, StageError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Self { context, job } = self;
        let spec = context.spec().clone();
        let loaded = load_input::<B::InnerBackend>(context, "from", job.seed, &device)?;
        let records: Vec<DatasetRecord> = context.read_records("prompts", "train.jsonl")?;
        let generated = sample_records(
            context,
            &loaded.model,
            &loaded.tokenizer,
            &records,
            job.num_samples,
            job.max_prompt_length,
            &job.sampling,
            &device,
        )?;
        let weights: IndexMap<String, f64> =
            job.thresholds.keys().map(|k| (k.clone(), 1.0)).collect();
        let reward_set =
            RewardSet::build(&weights, &spec.rewards, &spec.base_dir).map_err(failed)?;
        let answers: Vec<Option<Answer>> = records
            .iter()
            .map(|r| r.answer.clone().map(Answer::Text))
            .collect();
        let samples: Vec<Sample<'_>> = generated
            .iter()
            .map(|g| {
                Sample::new(
                    &records[g.prompt].prompt,
                    &g.response,
                    answers[g.prompt].as_ref(),
                )
                .with_tokens(g.completion.token_ids.len())
            })
            .collect();
        let scored = reward_set.score(&samples).map_err(failed)?;
        let mut kept: Vec<DatasetRecord> = Vec::new();
        let mut per_prompt = vec![0usize; records.len()];
        let mut seen: HashSet<(usize, String)> = HashSet::new();
        let mut passed_rules = 0usize;
        for (i, g) in generated.iter().enumerate() {
            let thresholds_met = job.thresholds.iter().all(|(name, threshold)| {
                scored
                    .per_reward
                    .get(name)
                    .and_then(|o| o[i].score())
                    .is_some_and(|s| s >= *threshold)
            });
            if !thresholds_met || (job.require_format && !is_strict_r1(&g.response)) {
                continue;
            }
            passed_rules += 1;
            if (job.dedup && !seen.insert((g.prompt, g.completion.text.clone())))
                || per_prompt[g.prompt] >= job.max_per_prompt
            {
                continue;
            }
            per_prompt[g.prompt] += 1;
            let record = &records[g.prompt];
            kept.push(DatasetRecord {
                id: format!("{}-s{}", record.id, g.sample),
                completion: Some(g.completion.text.clone()),
                ..record.clone()
            });
        }
        let total = generated.len().max(1) as f64;
        let metrics = BTreeMap::from([
            ("acceptance_rate".to_string(), passed_rules as f64 / total),
            ("kept".to_string(), kept.len() as f64),
            ("kept_rate".to_string(), kept.len() as f64 / total),
            (
                "prompts_with_a_sample".to_string(),
                per_prompt.iter().filter(|n| **n > 0).count() as f64 / records.len().max(1) as f64,
            ),
        ]);
        Ok(StageOutput {
            files: vec![
                ("train.jsonl".to_string(), to_jsonl(&kept).map_err(failed)?),
                ("test.jsonl".to_string(), Vec::new()),
            ],
            metrics,
        })
    }
}
