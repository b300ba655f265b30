//! Execute (evaluation): sample `n` completions per held-out prompt on the inner backend,
//! judge each (accuracy, strict format, language, every requested reward), store every
//! sample, and summarise into `pass@1`, `pass@K`, `cons@K`, `format_rate`, … so that any
//! metric can be recomputed later from the stored samples.

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::models::{failed, load_input};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::manifest::{AccuracyReward, RewardDecl};
use crate::metrics::{summarize, EvalSample};
use crate::model::{self, BackendTask, SamplingParams};
use crate::records::{Answer, DatasetRecord};
use crate::rewards::{AccuracyVerifier, LanguageConsistency, RewardSet, Sample};

pub const SAMPLES_FILE: &str = "samples.jsonl";
pub const METRICS_FILE: &str = "metrics.json";

/// Rows generated at once.
const GENERATION_ROWS: usize = 64;

/// The resolved settings of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub split_file: &'static str,
    pub num_samples: usize,
    pub ks: Vec<usize>,
    pub rewards: IndexMap<String, f64>,
    pub limit: Option<usize>,
    pub sampling: SamplingParams,
    pub max_prompt_length: usize,
    pub seed: u64,
}

/// One evaluated sample, as stored in `samples.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSample {
    pub prompt_id: String,
    pub sample: usize,
    pub completion: String,
    pub tokens: usize,
    pub correct: Option<bool>,
    pub answer: Option<String>,
    pub format_ok: bool,
    pub language: Option<f64>,
    pub rewards: IndexMap<String, Option<f64>>,
}

pub struct EvalTask<'c, 'a> {
    pub context: &'c mut StageContext<'a>,
    pub job: EvalJob,
}

impl BackendTask for EvalTask<'_, '_> {
    type Output = Result<StageOutput, StageError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Self { context, job } = self;
        let spec = context.spec().clone();
        let loaded = load_input::<B::InnerBackend>(context, "from", job.seed, &device)?;
        let mut records: Vec<DatasetRecord> = context.read_records("prompts", job.split_file)?;
        if let Some(limit) = job.limit {
            records.truncate(limit);
        }
        if records.is_empty() {
            return Err(failed(format!(
                "no prompts to evaluate in {}",
                job.split_file
            )));
        }
        let accuracy = match spec.rewards.get("accuracy") {
            Some(RewardDecl::Accuracy(decl)) => AccuracyVerifier::new(decl),
            _ => AccuracyVerifier::new(&AccuracyReward::default()),
        };
        let language = spec
            .rewards
            .values()
            .find_map(|r| match r {
                RewardDecl::Language(decl) => Some(LanguageConsistency::new(decl, &spec.base_dir)),
                _ => None,
            })
            .transpose()
            .map_err(|e| failed(format!("language reward: {e:?}")))?;
        let reward_set =
            RewardSet::build(&job.rewards, &spec.rewards, &spec.base_dir).map_err(failed)?;
        let tokenizer = &loaded.tokenizer;
        let mut rows: Vec<(usize, usize, Vec<u32>)> = Vec::new();
        for (p, record) in records.iter().enumerate() {
            let mut ids = tokenizer.encode(&record.prompt, false).map_err(failed)?;
            if ids.len() > job.max_prompt_length {
                ids.drain(..ids.len() - job.max_prompt_length);
            }
            for s in 0..job.num_samples {
                rows.push((p, s, ids.clone()));
            }
        }
        let answers: Vec<Option<Answer>> = records
            .iter()
            .map(|r| r.answer.clone().map(Answer::Text))
            .collect();
        let mut per_prompt: Vec<Vec<EvalSample>> = vec![Vec::new(); records.len()];
        let mut stored = Vec::with_capacity(rows.len());
        let chunks: Vec<&[(usize, usize, Vec<u32>)]> = rows.chunks(GENERATION_ROWS).collect();
        for (c, chunk) in chunks.iter().enumerate() {
            if context.cancelled() {
                // Evaluation is cheap to redo; nothing partial is kept.
                return Err(StageError::Cancelled { step: 0 });
            }
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|(_, _, ids)| ids.clone()).collect();
            let params = SamplingParams {
                seed: job.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ..job.sampling.clone()
            };
            let completions = model::generate(&loaded.model, tokenizer, &prompts, &params, &device)
                .map_err(failed)?;
            let responses: Vec<String> = chunk
                .iter()
                .zip(&completions)
                .map(|((p, _, _), c)| format!("{}{}", records[*p].response_prefix, c.text))
                .collect();
            let samples: Vec<Sample<'_>> = chunk
                .iter()
                .zip(&responses)
                .zip(&completions)
                .map(|(((p, _, _), text), c)| {
                    Sample::new(&records[*p].prompt, text, answers[*p].as_ref())
                        .with_tokens(c.token_ids.len())
                })
                .collect();
            let scored = reward_set.score(&samples).map_err(failed)?;
            for (i, ((p, s, _), completion)) in chunk.iter().zip(&completions).enumerate() {
                let mut sample = EvalSample::judge(
                    &responses[i],
                    completion.token_ids.len(),
                    answers[*p].as_ref(),
                    &accuracy,
                    language.as_ref(),
                );
                sample.rewards = scored
                    .per_reward
                    .iter()
                    .map(|(name, outcomes)| (name.clone(), outcomes[i].score()))
                    .collect();
                stored.push(StoredSample {
                    prompt_id: records[*p].id.clone(),
                    sample: *s,
                    completion: completion.text.clone(),
                    tokens: completion.token_ids.len(),
                    correct: sample.correct,
                    answer: sample.answer.clone(),
                    format_ok: sample.format_ok,
                    language: sample.language,
                    rewards: sample.rewards.clone(),
                });
                per_prompt[*p].push(sample);
            }
            context.progress(
                (c + 1) as u64,
                chunks.len() as u64,
                &format!("{} of {} samples", stored.len(), rows.len()),
            );
        }
        let metrics: BTreeMap<String, f64> = summarize(&per_prompt, &job.ks).into_iter().collect();
        let metrics_json = serde_json::to_vec_pretty(&metrics).map_err(failed)?;
        Ok(StageOutput {
            files: vec![
                (
                    SAMPLES_FILE.to_string(),
                    crate::records::to_jsonl(&stored).map_err(failed)?,
                ),
                (METRICS_FILE.to_string(), metrics_json),
            ],
            metrics,
        })
    }
}
