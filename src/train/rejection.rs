//! Execute (data generation): rejection sampling — `n` samples per prompt from a model,
//! kept when every thresholded reward reaches its threshold, the strict R1 format holds
//! (when required), and the completion is new for its prompt; at most `max_per_prompt`
//! per prompt. The kept samples are an SFT dataset whose ids record their prompt.
//!
//! With `emit: preferences`, the samples become preference pairs instead: per prompt, a
//! sample that passes (chosen) with one that does not (rejected), at most
//! `max_per_prompt` pairs; the prompts' test split is sampled too (with its own seed), so
//! a reward model trained on the pairs has held-out pairs to be scored on.

use std::collections::{BTreeMap, HashSet};

use indexmap::IndexMap;

use super::models::{failed, load_input};
use super::reward_scoring::RewardModels;
use super::sampling::{answers_of, reward_samples, sample_records, PromptSample};
use super::stage_job::{JobResult, StageJob};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::model::SamplingParams;
use crate::model::TrainBackend;
use crate::records::{to_jsonl, DatasetRecord};
use crate::rewards::format::is_strict_r1;
use crate::rewards::{ModelScorer, RewardSet};
use crate::stages::InputField;

/// The resolved settings of a rejection-sampling stage.
#[derive(Debug, Clone)]
pub struct RejectionJob {
    pub num_samples: usize,
    pub thresholds: IndexMap<String, f64>,
    pub require_format: bool,
    pub dedup: bool,
    pub max_per_prompt: usize,
    /// Sample only the first this many training prompts.
    pub limit: Option<usize>,
    pub sampling: SamplingParams,
    pub max_prompt_length: usize,
    /// Emit preference pairs instead of kept samples.
    pub preferences: bool,
    pub seed: u64,
}

/// One sample and whether it passed the rules.
struct Judged {
    sample: PromptSample,
    passed: bool,
}

impl StageJob for RejectionJob {
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult {
        let spec = context.spec().clone();
        let loaded = load_input::<B::InnerBackend>(context, InputField::From, self.seed, &device)?;
        let weights: IndexMap<String, f64> =
            self.thresholds.keys().map(|k| (k.clone(), 1.0)).collect();
        let reward_set =
            RewardSet::build(&weights, &spec.rewards, &spec.base_dir).map_err(failed)?;
        let mut reward_models = RewardModels::<B::InnerBackend>::load(
            context,
            &reward_set.reward_model_stages(),
            &device,
        )?;
        let mut judge = |context: &mut StageContext<'_>,
                         records: &[DatasetRecord],
                         sampling: &SamplingParams|
         -> Result<Vec<Judged>, StageError> {
            let generated = sample_records(
                context,
                &loaded.model,
                &loaded.tokenizer,
                records,
                self.num_samples,
                self.max_prompt_length,
                sampling,
                &device,
            )?;
            let answers = answers_of(records);
            let samples = reward_samples(records, &answers, &generated);
            let scored = reward_set
                .score_with(&samples, Some(&mut reward_models as &mut dyn ModelScorer))
                .map_err(failed)?;
            Ok(generated
                .into_iter()
                .enumerate()
                .map(|(i, sample)| {
                    let thresholds_met = self.thresholds.iter().all(|(name, threshold)| {
                        scored
                            .per_reward
                            .get(name)
                            .and_then(|o| o[i].score())
                            .is_some_and(|s| s >= *threshold)
                    });
                    let formatted = !self.require_format || is_strict_r1(&sample.response);
                    Judged {
                        passed: thresholds_met && formatted,
                        sample,
                    }
                })
                .collect())
        };
        let mut records: Vec<DatasetRecord> =
            context.read_records(InputField::Prompts, "train.jsonl")?;
        if let Some(limit) = self.limit {
            records.truncate(limit);
        }
        let judged = judge(context, &records, &self.sampling)?;
        if !self.preferences {
            return kept_samples(&self, &records, &judged);
        }
        let (train, train_prompts) = preference_pairs(&self, &records, &judged);
        let test_records: Vec<DatasetRecord> =
            context.read_records(InputField::Prompts, "test.jsonl")?;
        let test_sampling = SamplingParams {
            seed: self.sampling.seed ^ 0x7E57_5EED,
            ..self.sampling.clone()
        };
        let test_judged = judge(context, &test_records, &test_sampling)?;
        let (test, _) = preference_pairs(&self, &test_records, &test_judged);
        let total = judged.len().max(1) as f64;
        let passed = judged.iter().filter(|j| j.passed).count();
        let metrics = BTreeMap::from([
            ("acceptance_rate".to_string(), passed as f64 / total),
            ("pairs".to_string(), train.len() as f64),
            ("test_pairs".to_string(), test.len() as f64),
            (
                "prompts_with_a_pair".to_string(),
                train_prompts as f64 / records.len().max(1) as f64,
            ),
        ]);
        Ok(StageOutput {
            files: vec![
                ("train.jsonl".to_string(), to_jsonl(&train).map_err(failed)?),
                ("test.jsonl".to_string(), to_jsonl(&test).map_err(failed)?),
            ],
            metrics,
        })
    }
}

/// The SFT dataset of the samples that passed: new for their prompt (with `dedup`), at
/// most `max_per_prompt` each.
fn kept_samples(
    job: &RejectionJob,
    records: &[DatasetRecord],
    judged: &[Judged],
) -> Result<StageOutput, StageError> {
    let mut kept: Vec<DatasetRecord> = Vec::new();
    let mut per_prompt = vec![0usize; records.len()];
    let mut seen: HashSet<(usize, String)> = HashSet::new();
    let mut passed_rules = 0usize;
    for Judged { sample: g, passed } in judged {
        if !passed {
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
    let total = judged.len().max(1) as f64;
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

/// Preference pairs: per prompt, the passing samples (chosen) and the failing ones
/// (rejected) in sample order — each new for its prompt with `dedup` — paired first with
/// first, at most `max_per_prompt` pairs. Also returns how many prompts have a pair.
fn preference_pairs(
    job: &RejectionJob,
    records: &[DatasetRecord],
    judged: &[Judged],
) -> (Vec<DatasetRecord>, usize) {
    let mut chosen: Vec<Vec<&PromptSample>> = vec![Vec::new(); records.len()];
    let mut rejected: Vec<Vec<&PromptSample>> = vec![Vec::new(); records.len()];
    let mut seen: HashSet<(usize, &str)> = HashSet::new();
    for Judged { sample, passed } in judged {
        if job.dedup && !seen.insert((sample.prompt, sample.completion.text.as_str())) {
            continue;
        }
        if *passed {
            chosen[sample.prompt].push(sample);
        } else {
            rejected[sample.prompt].push(sample);
        }
    }
    let mut pairs = Vec::new();
    let mut prompts = 0;
    for (p, record) in records.iter().enumerate() {
        let before = pairs.len();
        for (good, bad) in chosen[p].iter().zip(&rejected[p]).take(job.max_per_prompt) {
            pairs.push(DatasetRecord {
                id: format!("{}-s{}-s{}", record.id, good.sample, bad.sample),
                chosen: Some(good.completion.text.clone()),
                rejected: Some(bad.completion.text.clone()),
                completion: None,
                ..record.clone()
            });
        }
        prompts += usize::from(pairs.len() > before);
    }
    (pairs, prompts)
}
