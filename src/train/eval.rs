//! Execute (evaluation): sample `n` completions per held-out prompt on the inner backend,
//! judge each (accuracy, strict format, language, every requested reward), store every
//! sample, and summarise into `pass@1`, `pass@K`, `cons@K`, `format_rate`, … so that any
//! metric can be recomputed later from the stored samples; with them the mechanism
//! metrics (`worked_share`, accuracy per mode, length by outcome, `truncated_ratio`).

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::models::{failed, load_input};
use super::reward_scoring::RewardModels;
use super::sampling::{answers_of, reward_samples, sample_records};
use super::stage_job::{JobResult, StageJob};
use crate::exec::{StageContext, StageOutput};
use crate::manifest::RewardDecl;
use crate::metrics::{mechanism_metrics, summarize, EvalSample, ModeSample};
use crate::metrics::{StoredSample, METRICS_FILE, SAMPLES_FILE};
use crate::model::TrainBackend;
use crate::model::{FinishReason, SamplingParams};
use crate::records::DatasetRecord;
use crate::rewards::{AccuracyVerifier, LanguageConsistency, ModelScorer, RewardSet};
use crate::stages::InputField;

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

impl StageJob for EvalJob {
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult {
        let spec = context.spec().clone();
        let loaded = load_input::<B::InnerBackend>(context, InputField::From, self.seed, &device)?;
        let mut records: Vec<DatasetRecord> =
            context.read_records(InputField::Prompts, self.split_file)?;
        if let Some(limit) = self.limit {
            records.truncate(limit);
        }
        if records.is_empty() {
            return Err(failed(format!(
                "no prompts to evaluate in {}",
                self.split_file
            )));
        }
        let accuracy = AccuracyVerifier::of_stage(&spec.rewards);
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
            RewardSet::build(&self.rewards, &spec.rewards, &spec.base_dir).map_err(failed)?;
        let answers = answers_of(&records);
        let generated = sample_records(
            context,
            &loaded.model,
            &loaded.tokenizer,
            &records,
            self.num_samples,
            self.max_prompt_length,
            &self.sampling,
            &device,
        )?;
        let samples = reward_samples(&records, &answers, &generated);
        let mut reward_models = RewardModels::<B::InnerBackend>::load(
            context,
            &reward_set.reward_model_stages(),
            &device,
        )?;
        let scored = reward_set
            .score_with(&samples, Some(&mut reward_models as &mut dyn ModelScorer))
            .map_err(failed)?;
        let mut per_prompt: Vec<Vec<EvalSample>> = vec![Vec::new(); records.len()];
        let mut stored = Vec::with_capacity(generated.len());
        for (i, g) in generated.iter().enumerate() {
            let mut sample = EvalSample::judge(
                &g.response,
                g.completion.token_ids.len(),
                answers[g.prompt].as_ref(),
                &accuracy,
                language.as_ref(),
            );
            sample.rewards = scored
                .per_reward
                .iter()
                .map(|(name, outcomes)| (name.clone(), outcomes[i].score()))
                .collect();
            stored.push(StoredSample {
                prompt_id: records[g.prompt].id.clone(),
                sample: g.sample,
                completion: g.completion.text.clone(),
                tokens: g.completion.token_ids.len(),
                correct: sample.correct,
                answer: sample.answer.clone(),
                format_ok: sample.format_ok,
                language: sample.language,
                rewards: sample.rewards.clone(),
            });
            per_prompt[g.prompt].push(sample);
        }
        let mut metrics: BTreeMap<String, f64> =
            summarize(&per_prompt, &self.ks).into_iter().collect();
        let modes: Vec<ModeSample<'_>> = generated
            .iter()
            .zip(&stored)
            .map(|(g, s)| ModeSample {
                response: &g.response,
                correct: s.correct,
                tokens: s.tokens,
                truncated: g.completion.finish == FinishReason::Length,
            })
            .collect();
        metrics.extend(mechanism_metrics(&modes));
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
