//! Execute (training): the GRPO loop behind `grpo` and `rlhf` — sample `num_generations`
//! completions per prompt with the KV cache on the inner (non-autodiff) backend, score
//! them with the stage's rewards (for `rlhf`, by prompt type: rule rewards for reasoning
//! prompts, a reward model for general ones), turn group-relative advantages into the
//! clipped-surrogate loss (KL to a frozen reference when `beta` > 0), step AdamW; log
//! TRL's per-step metrics and keep every rollout. Checkpoints and resume as the
//! supervised trainer.

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::grpo_loss::{group_advantages, policy_loss, LossSettings};
use super::hyper::TrainingHyper;
use super::models::{failed, load_input, model_files};
use super::reward_scoring::RewardModels;
use super::state::{
    checkpoint_if_due, load_module, load_optimizer, resumed_state, LoopState, OPTIMIZER_FILE,
    WEIGHTS_FILE,
};
use super::update::apply_gradients;
use crate::exec::{InputSpec, StageContext, StageError, StageOutput};
use crate::manifest::{LossType, ScaleRewards};
use crate::manifest::{ModelReward, RewardDecl};
use crate::model::{self, BackendTask, FinishReason, SamplingParams, TokenBatch, Transformer};
use crate::records::{Answer, DatasetRecord};
use crate::rewards::{ModelScorer, Reward, RewardSet, RoutedRewards, Sample};
use crate::tasks::SeededRng;

/// Output name of the rollout log.
pub const ROLLOUTS_FILE: &str = "rollouts.jsonl";

/// The resolved settings of a GRPO run.
#[derive(Debug, Clone)]
pub struct GrpoJob {
    pub hyper: TrainingHyper,
    pub rewards: PolicyRewards,
    pub num_generations: usize,
    pub beta: f64,
    pub epsilon: f64,
    pub epsilon_high: f64,
    pub num_iterations: usize,
    pub scale_rewards: ScaleRewards,
    pub loss_type: LossType,
    pub mask_truncated_completions: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub max_prompt_length: usize,
    pub max_completion_length: usize,
    pub stop: Vec<String>,
    pub seed: u64,
}

/// Which rewards score a policy's completions (names → weights).
#[derive(Debug, Clone)]
pub enum PolicyRewards {
    /// The same rewards for every prompt (`grpo`).
    Same(indexmap::IndexMap<String, f64>),
    /// `rlhf`: `reasoning` for prompts with a reference answer; for the others the score
    /// of the reward model named by input `reward_model_field` (weight 1, unless
    /// `general` names a `model` reward of that stage, whose weight then applies) plus
    /// `general`.
    ByKind {
        reasoning: indexmap::IndexMap<String, f64>,
        general: indexmap::IndexMap<String, f64>,
        reward_model_field: &'static str,
    },
}

/// Name of the implicit reward-model term of `rlhf`'s general prompts (logged as
/// `reward/general/reward_model`).
pub const REWARD_MODEL_TERM: &str = "reward_model";

impl PolicyRewards {
    /// The reward functions, built from the stage's declarations.
    fn build(&self, context: &StageContext<'_>) -> Result<RoutedRewards, StageError> {
        let spec = context.spec();
        let build = |weights: &indexmap::IndexMap<String, f64>| {
            RewardSet::build(weights, &spec.rewards, &spec.base_dir).map_err(failed)
        };
        match self {
            Self::Same(weights) => Ok(RoutedRewards::Same(build(weights)?)),
            Self::ByKind {
                reasoning,
                general,
                reward_model_field,
            } => {
                let stage = match spec.inputs.get(*reward_model_field) {
                    Some(InputSpec::Artifact { stage, .. }) => stage.clone(),
                    _ => {
                        return Err(failed(format!(
                            "internal: input `{reward_model_field}` is not a reward model stage"
                        )))
                    }
                };
                let extra = build(general)?;
                let mut general = RewardSet::new(Vec::new());
                if !extra.reward_model_stages().contains(&stage.as_str()) {
                    let decl = RewardDecl::Model(ModelReward { model: stage });
                    let term = Reward::from_decl(REWARD_MODEL_TERM, &decl, &spec.base_dir)
                        .map_err(failed)?;
                    general.push(term, 1.0);
                }
                for (reward, weight) in extra.rewards() {
                    general.push(reward.clone(), *weight);
                }
                Ok(RoutedRewards::ByKind {
                    reasoning: build(reasoning)?,
                    general,
                })
            }
        }
    }
}

/// One scored completion, as stored in `rollouts.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollout {
    pub step: u64,
    pub prompt_id: String,
    pub completion: String,
    pub reward: Option<f64>,
    pub rewards: BTreeMap<String, Option<f64>>,
    pub advantage: f64,
    pub tokens: usize,
    pub truncated: bool,
}

/// Prompt indices of step `step`: consecutive slices of a seeded order, reshuffled per epoch.
fn prompt_batch(seed: u64, count: usize, per_step: usize, step: u64) -> Vec<usize> {
    let per_epoch = (count / per_step.max(1)).max(1) as u64;
    let epoch = step / per_epoch;
    let within = (step % per_epoch) as usize;
    let mut order: Vec<usize> = (0..count).collect();
    SeededRng::for_purpose(seed, &format!("grpo-epoch-{epoch}")).shuffle(&mut order);
    order
        .into_iter()
        .cycle()
        .skip(within * per_step)
        .take(per_step)
        .collect()
}

pub struct GrpoTask<'c, 'a> {
    pub context: &'c mut StageContext<'a>,
    pub job: GrpoJob,
}

impl BackendTask for GrpoTask<'_, '_> {
    type Output = Result<StageOutput, StageError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Self { context, job } = self;
        let spec = context.spec().clone();
        let mut policy = load_input::<B>(context, "from", job.seed, &device)?;
        let reference: Option<Transformer<B::InnerBackend>> = if job.beta > 0.0 {
            Some(match spec.inputs.get("reference") {
                Some(_) => {
                    load_input::<B::InnerBackend>(context, "reference", job.seed, &device)?.model
                }
                None => policy.model.valid(),
            })
        } else {
            None
        };
        let records: Vec<DatasetRecord> = context.read_records("prompts", "train.jsonl")?;
        if records.is_empty() {
            return Err(failed("the prompts' train split is empty"));
        }
        let reward_set = job.rewards.build(context)?;
        let mut reward_models = RewardModels::<B::InnerBackend>::load(
            context,
            &reward_set.reward_model_stages(),
            &device,
        )?;
        let hyper = &job.hyper;
        let group = job.num_generations.max(2);
        let completions_per_step = hyper.batch_size * hyper.accumulation;
        let prompts_per_step = (completions_per_step / group).max(1);
        let total = hyper.max_steps.unwrap_or_else(|| {
            ((records.len() as f64 * hyper.epochs) / prompts_per_step as f64)
                .ceil()
                .max(1.0) as u64
        });
        let tokenizer = policy.tokenizer.clone();
        let pad = tokenizer.pad_id();
        let mut optimizer = AdamWConfig::new()
            .with_beta_1(hyper.adam_beta1 as f32)
            .with_beta_2(hyper.adam_beta2 as f32)
            .with_weight_decay(hyper.weight_decay as f32)
            .init::<B, Transformer<B>>();
        let mut model = policy.model;
        let mut state = LoopState::default();
        let mut rollouts: Vec<Rollout> = Vec::new();
        if let Some(resumed) = resumed_state(context)? {
            model = load_module(model, context.read_checkpoint(WEIGHTS_FILE)?, &device)?;
            optimizer =
                load_optimizer(optimizer, context.read_checkpoint(OPTIMIZER_FILE)?, &device)?;
            rollouts = crate::records::from_jsonl(&context.read_checkpoint(ROLLOUTS_FILE)?)
                .map_err(failed)?;
            state = resumed;
        }
        let settings = LossSettings {
            epsilon_low: job.epsilon,
            epsilon_high: job.epsilon_high,
            beta: job.beta,
            loss_type: job.loss_type,
            max_completion_length: job.max_completion_length,
        };
        while state.step < total {
            let step = state.step;
            let picks = prompt_batch(job.seed, records.len(), prompts_per_step, step);
            let mut prompt_ids = Vec::with_capacity(picks.len());
            for &i in &picks {
                let mut ids = tokenizer
                    .encode(&records[i].prompt, false)
                    .map_err(failed)?;
                if ids.len() > job.max_prompt_length {
                    ids.drain(..ids.len() - job.max_prompt_length);
                }
                prompt_ids.push(ids);
            }
            let rows: Vec<Vec<u32>> = prompt_ids
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.clone(), group))
                .collect();
            let sampling = SamplingParams {
                max_new_tokens: job.max_completion_length,
                temperature: job.temperature as f32,
                top_p: job.top_p as f32,
                top_k: job.top_k,
                seed: job.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                stop: job.stop.clone(),
            };
            // Wall time of each phase, logged as `time/*` (measurements, not part of any
            // artifact, so they do not affect determinism).
            let clock = std::time::Instant::now();
            let inner = model.valid();
            let completions =
                model::generate(&inner, &tokenizer, &rows, &sampling, &device).map_err(failed)?;

            // Rewards on the whole response: the pre-filled start and the generated text.
            let responses: Vec<String> = completions
                .iter()
                .enumerate()
                .map(|(r, c)| format!("{}{}", records[picks[r / group]].response_prefix, c.text))
                .collect();
            let answers: Vec<Option<Answer>> = picks
                .iter()
                .map(|&i| records[i].answer.clone().map(Answer::Text))
                .collect();
            let samples: Vec<Sample<'_>> = responses
                .iter()
                .enumerate()
                .map(|(r, text)| {
                    let record = &records[picks[r / group]];
                    Sample::new(&record.prompt, text, answers[r / group].as_ref())
                        .with_tokens(completions[r].token_ids.len())
                        .with_response_prefix(&record.response_prefix)
                })
                .collect();
            let generation_s = clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            let routed = reward_set
                .score(&samples, Some(&mut reward_models as &mut dyn ModelScorer))
                .map_err(failed)?;
            let scored = &routed.batch;
            let reward_s = clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            let advantages = group_advantages(&scored.total, group, job.scale_rewards);

            // Sequences, and the completion-token mask (column t scores token t + 1).
            let sequences: Vec<Vec<u32>> = rows
                .iter()
                .zip(&completions)
                .map(|(p, c)| p.iter().chain(&c.token_ids).copied().collect())
                .collect();
            let seq_len = sequences.iter().map(Vec::len).max().unwrap_or(2).max(2);
            let mut weights = Vec::with_capacity(rows.len() * (seq_len - 1));
            for (r, (p, c)) in rows.iter().zip(&completions).enumerate() {
                let keep = scored.total[r].is_some()
                    && !(job.mask_truncated_completions && c.finish == FinishReason::Length);
                for t in 0..seq_len - 1 {
                    let target = t + 1;
                    let in_completion = target >= p.len() && target < p.len() + c.token_ids.len();
                    weights.push(if keep && in_completion { 1.0f32 } else { 0.0 });
                }
            }
            let micro = hyper.batch_size.max(1);
            let batch_of =
                |range: std::ops::Range<usize>| padded_rows(&sequences[range], seq_len, pad);
            let mask_of = |range: std::ops::Range<usize>, dev: &B::Device| {
                let cols = seq_len - 1;
                let data = weights[range.start * cols..range.end * cols].to_vec();
                (data, [range.len(), cols], dev.clone())
            };
            // Old-policy and reference log-probs, without gradients.
            let chunks: Vec<std::ops::Range<usize>> = (0..rows.len())
                .step_by(micro)
                .map(|s| s..(s + micro).min(rows.len()))
                .collect();
            let mut old_logps = Vec::new();
            let mut ref_logps = Vec::new();
            for range in &chunks {
                let batch = batch_of(range.clone());
                if job.num_iterations > 1 {
                    old_logps.push(
                        model::token_logprobs(&inner, &batch, &device)
                            .map_err(failed)?
                            .logprobs,
                    );
                }
                if let Some(reference) = &reference {
                    ref_logps.push(
                        model::token_logprobs(reference, &batch, &device)
                            .map_err(failed)?
                            .logprobs,
                    );
                }
            }
            let mut kl_sum = 0.0;
            let mut clip_sum = 0.0;
            let mut entropy_sum = 0.0;
            let mut loss_sum = 0.0;
            let mut grad_norm = 0.0;
            let lr = hyper.learning_rate_at(step, total);
            for _ in 0..job.num_iterations.max(1) {
                let mut accumulator = GradientsAccumulator::<Transformer<B>>::new();
                for (c, range) in chunks.iter().enumerate() {
                    let batch = batch_of(range.clone());
                    let out = model::token_logprobs_with_entropy(&model, &batch, &device)
                        .map_err(failed)?;
                    let (data, shape, dev) = mask_of(range.clone(), &device);
                    let mask = Tensor::<B, 2>::from_data(TensorData::new(data, shape), &dev);
                    let old = match old_logps.get(c) {
                        Some(old) => Tensor::from_inner(old.clone()),
                        None => out.logprobs.clone().detach(),
                    };
                    let reference_logp = ref_logps.get(c).map(|r| Tensor::from_inner(r.clone()));
                    if let Some(entropy) = &out.entropy {
                        let e: f64 = (entropy.clone() * mask.clone()).sum().into_scalar().elem();
                        entropy_sum += e;
                    }
                    let result = policy_loss(
                        out.logprobs,
                        old,
                        reference_logp,
                        &advantages[range.clone()],
                        mask,
                        settings,
                    );
                    let loss = result.loss.div_scalar(chunks.len() as f64);
                    loss_sum += f64::from(loss.clone().into_scalar().elem::<f32>());
                    kl_sum += result.kl / chunks.len() as f64;
                    clip_sum += result.clip_ratio / chunks.len() as f64;
                    accumulator
                        .accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
                }
                (model, grad_norm) =
                    apply_gradients(model, &mut optimizer, accumulator.grads(), hyper, lr);
            }
            state.step += 1;
            let update_s = clock.elapsed().as_secs_f64();

            // Metrics (TRL's names) and the rollout log.
            let iterations = job.num_iterations.max(1) as f64;
            let tokens: usize = weights.iter().filter(|w| **w > 0.0).count();
            let lengths: Vec<usize> = completions.iter().map(|c| c.token_ids.len()).collect();
            let mut metrics: BTreeMap<String, f64> = routed.metrics().into_iter().collect();
            metrics.insert(
                "frac_reward_zero_std".into(),
                scored.frac_reward_zero_std(group).unwrap_or(f64::NAN),
            );
            metrics.insert("kl".into(), kl_sum / iterations);
            metrics.insert("clip_ratio".into(), clip_sum / iterations);
            metrics.insert(
                "entropy".into(),
                entropy_sum / iterations / tokens.max(1) as f64,
            );
            metrics.insert("loss".into(), loss_sum / iterations);
            metrics.insert("grad_norm".into(), grad_norm);
            metrics.insert("learning_rate".into(), lr);
            metrics.insert("time/generation_s".into(), generation_s);
            metrics.insert("time/reward_s".into(), reward_s);
            metrics.insert("time/update_s".into(), update_s);
            metrics.insert(
                "completion_length".into(),
                lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64,
            );
            metrics.insert(
                "completion_length_min".into(),
                lengths.iter().copied().min().unwrap_or(0) as f64,
            );
            metrics.insert(
                "completion_length_max".into(),
                lengths.iter().copied().max().unwrap_or(0) as f64,
            );
            let truncated = completions
                .iter()
                .filter(|c| c.finish == FinishReason::Length)
                .count();
            metrics.insert(
                "truncated_ratio".into(),
                truncated as f64 / completions.len().max(1) as f64,
            );
            let reward_mean = metrics.get("reward").copied().unwrap_or(f64::NAN);
            if state.step % hyper.logging_steps == 0 || state.step == total {
                // A mean over no samples (a reward that skipped every sample, a prompt
                // kind absent from the step) is NaN: it is left out of the point, which
                // the store keeps as JSON (where NaN has no spelling).
                let mut point = metrics.clone();
                point.retain(|_, value| value.is_finite());
                context.log_metrics(state.step, point)?;
            }
            for (r, completion) in completions.iter().enumerate() {
                rollouts.push(Rollout {
                    step: state.step,
                    prompt_id: records[picks[r / group]].id.clone(),
                    completion: completion.text.clone(),
                    reward: scored.total[r],
                    rewards: scored
                        .per_reward
                        .iter()
                        .map(|(name, outcomes)| (name.clone(), outcomes[r].score()))
                        .collect(),
                    advantage: advantages[r],
                    tokens: completion.token_ids.len(),
                    truncated: completion.finish == FinishReason::Length,
                });
            }
            context.progress(state.step, total, &format!("reward {reward_mean:.3}"));
            checkpoint_if_due(
                context,
                &model,
                &optimizer,
                &state,
                (total, hyper.save_steps),
                || {
                    Ok(vec![(
                        ROLLOUTS_FILE.to_string(),
                        crate::records::to_jsonl(&rollouts).map_err(failed)?,
                    )])
                },
            )?;
        }
        policy.model = model;
        let mut files = model_files(&policy)?;
        files.push((
            ROLLOUTS_FILE.to_string(),
            crate::records::to_jsonl(&rollouts).map_err(failed)?,
        ));
        let last_step = rollouts.iter().map(|r| r.step).max().unwrap_or(0);
        let last: Vec<&Rollout> = rollouts.iter().filter(|r| r.step == last_step).collect();
        let final_reward =
            last.iter().filter_map(|r| r.reward).sum::<f64>() / last.len().max(1) as f64;
        let metrics = BTreeMap::from([
            ("steps".to_string(), total as f64),
            ("final_reward".to_string(), final_reward),
            ("rollouts".to_string(), rollouts.len() as f64),
        ]);
        Ok(StageOutput { files, metrics })
    }
}

/// `rows` right-padded to `seq` columns (every chunk of a step has the same width, so
/// its mask columns line up).
fn padded_rows(rows: &[Vec<u32>], seq: usize, pad: u32) -> TokenBatch {
    let mut ids = Vec::with_capacity(rows.len() * seq);
    let mut valid = Vec::with_capacity(rows.len() * seq);
    for row in rows {
        let n = row.len().min(seq);
        ids.extend_from_slice(&row[..n]);
        valid.extend(std::iter::repeat_n(true, n));
        ids.extend(std::iter::repeat_n(pad, seq - n));
        valid.extend(std::iter::repeat_n(false, seq - n));
    }
    TokenBatch {
        ids,
        valid,
        batch: rows.len(),
        seq,
    }
}
