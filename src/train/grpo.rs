//! Execute (training): the GRPO loop behind `grpo` and `rlhf` — each step samples and
//! scores the step's groups (`rollout`, refilled by `dynamic_sampling` when the stage asks
//! for it), updates the policy on them (`policy_update`),
//! syncs the reference model when asked (`reference_sync`), logs TRL's per-step metrics
//! and the mechanism metrics (`crate::metrics::mechanism`), and keeps every rollout.
//! Checkpoints and resume as the supervised trainer.

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;

use super::dynamic_sampling::{sample_filled, PromptStream, Refill, PROMPTS_DRAWN};
use super::models::{failed, load_input, model_files};
use super::policy_rewards::PolicyRewards;
use super::policy_update::{update_policy, UpdateSettings, UpdateStats};
use super::reference_sync::{check_syncable, mix_into_reference};
use super::reward_scoring::RewardModels;
use super::rollout::{prompt_batch, sample_step, RolloutSettings, StepRollouts};
use super::state::{
    checkpoint_if_due, load_module, load_optimizer, module_bytes, resumed_state, LoopState,
    OPTIMIZER_FILE, WEIGHTS_FILE,
};
use super::update::learning_rate_at;
use crate::exec::{StageContext, StageError, StageOutput};
use crate::metric_names as names;
use crate::metrics::{mechanism_metrics, Rollout, ROLLOUTS_FILE};
use crate::model::TrainBackend;
use crate::model::{BackendTask, Transformer};
use crate::records::DatasetRecord;
use crate::rewards::{AccuracyVerifier, ModelScorer};
use crate::stages::InputField;
use crate::stages::{GenerationSettings, PolicySettings, TrainingSettings};

/// Checkpoint file of a reference model that syncing has moved away from its start.
const REFERENCE_FILE: &str = "reference.bin";

/// The resolved settings of a GRPO run.
#[derive(Debug, Clone)]
pub struct GrpoJob {
    pub training: TrainingSettings,
    pub generation: GenerationSettings,
    pub policy: PolicySettings,
    pub rewards: PolicyRewards,
    pub seed: u64,
}

impl GrpoJob {
    /// Whether the reference model changes during training (and so is checkpointed).
    fn syncs_reference(&self) -> bool {
        self.policy.beta > 0.0 && self.policy.sync_ref_model > 0
    }
}

pub struct GrpoTask<'c, 'a> {
    pub context: &'c mut StageContext<'a>,
    pub job: GrpoJob,
}

impl BackendTask for GrpoTask<'_, '_> {
    type Output = Result<StageOutput, StageError>;

    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output {
        let Self { context, job } = self;
        let spec = context.spec().clone();
        let mut policy = load_input::<B>(context, InputField::From, job.seed, &device)?;
        let mut reference: Option<Transformer<B::InnerBackend>> = if job.policy.beta > 0.0 {
            Some(match spec.input(InputField::Reference) {
                Some(_) => {
                    load_input::<B::InnerBackend>(
                        context,
                        InputField::Reference,
                        job.seed,
                        &device,
                    )?
                    .model
                }
                None => policy.model.valid(),
            })
        } else {
            None
        };
        if let (true, Some(reference)) = (job.syncs_reference(), &reference) {
            check_syncable(&policy.model.valid(), reference)?;
        }
        let records: Vec<DatasetRecord> =
            context.read_records(InputField::Prompts, "train.jsonl")?;
        if records.is_empty() {
            return Err(failed("the prompts' train split is empty"));
        }
        let reward_set = job.rewards.build(context)?;
        let accuracy = AccuracyVerifier::of_stage(&spec.rewards);
        let mut reward_models = RewardModels::<B::InnerBackend>::load(
            context,
            &reward_set.reward_model_stages(),
            &device,
        )?;
        let training = &job.training;
        let group = job.policy.num_generations;
        let prompts_per_step = (training.sequences_per_step() / group).max(1);
        let total = training.total_steps(records.len(), prompts_per_step);
        let tokenizer = policy.tokenizer.clone();
        let mut optimizer = AdamWConfig::new()
            .with_beta_1(training.adam_beta1 as f32)
            .with_beta_2(training.adam_beta2 as f32)
            .with_weight_decay(training.weight_decay as f32)
            .init::<B, Transformer<B>>();
        let mut model = policy.model;
        let mut state = LoopState::default();
        let mut rollouts: Vec<Rollout> = Vec::new();
        // With dynamic sampling a step draws as many prompts as it needs: where the stream
        // stands is loop state. Without, a step's prompts are a function of the step.
        let mut stream = job
            .policy
            .dynamic_sampling
            .as_ref()
            .map(|_| PromptStream::new(job.seed, records.len(), 0));
        if let Some(resumed) = resumed_state(context)? {
            if let Some(stream) = &mut stream {
                let drawn = resumed
                    .extra
                    .get(PROMPTS_DRAWN)
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| {
                        failed("the checkpoint does not say how many prompts dynamic sampling drew")
                    })?;
                *stream = PromptStream::new(job.seed, records.len(), drawn);
            }
            model = load_module(model, context.read_checkpoint(WEIGHTS_FILE)?, &device)?;
            optimizer =
                load_optimizer(optimizer, context.read_checkpoint(OPTIMIZER_FILE)?, &device)?;
            rollouts = crate::records::from_jsonl(&context.read_checkpoint(ROLLOUTS_FILE)?)
                .map_err(failed)?;
            if job.syncs_reference() {
                if let Some(start) = reference.take() {
                    reference = Some(load_module(
                        start,
                        context.read_checkpoint(REFERENCE_FILE)?,
                        &device,
                    )?);
                }
            }
            state = resumed;
        }
        let rollout_settings = RolloutSettings {
            generation: &job.generation,
            policy: &job.policy,
            seed: job.seed,
        };
        while state.step < total {
            let step = state.step;
            let (sampled, refill): (Option<StepRollouts>, Option<Refill>) =
                match (&job.policy.dynamic_sampling, &mut stream) {
                    (Some(config), Some(stream)) => {
                        let (sampled, refill) = sample_filled(
                            &model.valid(),
                            &tokenizer,
                            &records,
                            stream,
                            (prompts_per_step, step),
                            &rollout_settings,
                            config,
                            &reward_set,
                            &mut reward_models as &mut dyn ModelScorer,
                            &device,
                        )?;
                        state.extra = serde_json::json!({ PROMPTS_DRAWN: stream.drawn() });
                        (sampled, Some(refill))
                    }
                    _ => {
                        let picks = prompt_batch(job.seed, records.len(), prompts_per_step, step);
                        let sampled = sample_step(
                            &model.valid(),
                            &tokenizer,
                            &records,
                            picks,
                            (step, 0),
                            &rollout_settings,
                            &reward_set,
                            &mut reward_models as &mut dyn ModelScorer,
                            &device,
                        )?;
                        (Some(sampled), None)
                    }
                };
            // Scores so large that their group statistics overflow (a verifier printing
            // 1e308) would make every later step NaN: say so here, not as a diverged loss.
            if sampled
                .iter()
                .any(|s| s.advantages.iter().any(|a| !a.is_finite()))
            {
                return Err(failed(format!(
                    "the rewards of step {} are too large to compare within a group (their mean or \
                     spread is not finite); keep reward scores within a moderate range, e.g. [-10, 10]",
                    step + 1
                )));
            }
            // Wall time of each phase, logged as `time/*` (measurements, not part of any
            // artifact, so they do not affect determinism).
            let clock = std::time::Instant::now();
            let learning_rate = learning_rate_at(training, step, total);
            let update = UpdateSettings {
                training,
                policy: &job.policy,
                max_completion_length: job.generation.max_completion_length,
                pad: tokenizer.pad_id(),
                learning_rate,
                step: state.step + 1,
            };
            // A step whose every group dynamic sampling dropped has nothing to learn from:
            // it takes no optimizer step (the schedule moves on with the step count).
            let mut stats = None;
            if let Some(sampled) = &sampled {
                let updated;
                (model, updated) = update_policy(
                    model,
                    &mut optimizer,
                    reference.as_ref(),
                    sampled,
                    &update,
                    &device,
                )?;
                stats = Some(updated);
            }
            state.step += 1;
            if job.syncs_reference() && state.step % job.policy.sync_ref_model == 0 {
                reference = reference.map(|r| {
                    mix_into_reference(r, &model.valid(), job.policy.ref_model_mixup_alpha)
                });
            }
            let update_s = clock.elapsed().as_secs_f64();

            let mut metrics = match (&sampled, &stats) {
                (Some(sampled), Some(stats)) => {
                    step_metrics(sampled, stats, learning_rate, &accuracy)
                }
                _ => BTreeMap::from([(names::LEARNING_RATE.to_string(), learning_rate)]),
            };
            if let Some(refill) = &refill {
                metrics.extend(refill.metrics());
            }
            metrics.insert(names::TIME_UPDATE.into(), update_s);
            let reward_mean = metrics.get(names::REWARD).copied().unwrap_or(f64::NAN);
            if state.step % training.logging_steps == 0 || state.step == total {
                // A mean over no samples (a reward that skipped every sample, a prompt
                // kind absent from the step) is NaN: it is left out of the point, which
                // the store keeps as JSON (where NaN has no spelling).
                metrics.retain(|_, value| value.is_finite());
                context.log_metrics(state.step, metrics)?;
            }
            if let Some(sampled) = &sampled {
                rollouts.extend(sampled.records(state.step, &records));
            }
            context.progress(state.step, total, &format!("reward {reward_mean:.3}"));
            checkpoint_if_due(
                context,
                &model,
                &optimizer,
                &state,
                (total, training.save_steps),
                || {
                    let mut files = vec![(
                        ROLLOUTS_FILE.to_string(),
                        crate::records::to_jsonl(&rollouts).map_err(failed)?,
                    )];
                    if let (true, Some(reference)) = (job.syncs_reference(), &reference) {
                        files.push((REFERENCE_FILE.to_string(), module_bytes(reference)?));
                    }
                    Ok(files)
                },
            )?;
        }
        // The optimizer's moments are twice the weights: let them go before the weights
        // are serialised (which copies them twice more).
        drop(optimizer);
        drop(reference);
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
            (names::STEPS.to_string(), total as f64),
            ("final_reward".to_string(), final_reward),
            ("rollouts".to_string(), rollouts.len() as f64),
        ]);
        Ok(StageOutput { files, metrics })
    }
}

/// A step's metrics under TRL's names: each reward's mean and std, the share of groups
/// whose rewards are all equal (of the groups trained on, after dynamic sampling), the update's statistics, lengths, and phase times; then
/// the mechanism metrics of its completions (`truncated_ratio` among them), correctness
/// graded by `accuracy`.
fn step_metrics(
    sampled: &StepRollouts,
    stats: &UpdateStats,
    learning_rate: f64,
    accuracy: &AccuracyVerifier,
) -> BTreeMap<String, f64> {
    let mut metrics: BTreeMap<String, f64> = sampled.scores.metrics().into_iter().collect();
    metrics.insert(
        names::FRAC_REWARD_ZERO_STD.into(),
        sampled
            .scores
            .batch
            .frac_reward_zero_std(sampled.group)
            .unwrap_or(f64::NAN),
    );
    metrics.insert(names::KL.into(), stats.kl);
    metrics.insert(names::CLIP_RATIO.into(), stats.clip_ratio);
    metrics.insert(names::ENTROPY.into(), stats.entropy);
    metrics.insert(names::LOSS.into(), stats.loss);
    metrics.insert(names::GRAD_NORM.into(), stats.grad_norm);
    metrics.insert(names::LEARNING_RATE.into(), learning_rate);
    metrics.insert(names::TIME_GENERATION.into(), sampled.generation_s);
    metrics.insert(names::TIME_REWARD.into(), sampled.reward_s);
    let lengths: Vec<usize> = sampled
        .completions
        .iter()
        .map(|c| c.token_ids.len())
        .collect();
    metrics.insert(
        names::COMPLETION_LENGTH.into(),
        lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64,
    );
    metrics.insert(
        names::COMPLETION_LENGTH_MIN.into(),
        lengths.iter().copied().min().unwrap_or(0) as f64,
    );
    metrics.insert(
        names::COMPLETION_LENGTH_MAX.into(),
        lengths.iter().copied().max().unwrap_or(0) as f64,
    );
    metrics.extend(mechanism_metrics(&sampled.mode_samples(accuracy)));
    metrics
}
