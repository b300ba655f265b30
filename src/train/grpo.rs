//! Execute (training): the GRPO loop behind `grpo` and `rlhf` — each step samples and
//! scores the step's groups (`rollout`, refilled by `dynamic_sampling` when the stage asks
//! for it), updates the policy on them (`policy_update`),
//! syncs the reference model when asked (`reference_sync`), logs TRL's per-step metrics
//! and the mechanism metrics (`crate::metrics::mechanism`), and keeps every rollout; run
//! by the shared training loop (`training_loop`: schedule, logging, checkpoints, resume).

use std::collections::BTreeMap;

use burn::module::AutodiffModule;

use super::dynamic_sampling::{sample_filled, PromptStream, Refill, PROMPTS_DRAWN};
use super::lora::{trained_model_files, with_adapters};
use super::models::{failed, load_input};
use super::policy_rewards::PolicyRewards;
use super::policy_update::{update_policy, UpdateSettings, UpdateStats};
use super::reference_sync::{check_syncable, mix_into_reference};
use super::reward_scoring::RewardModels;
use super::rollout::{prompt_batch, sample_step, RolloutSettings, StepRollouts};
use super::stage_job::{JobResult, StageJob};
use super::state::{load_module, module_bytes, LoopState};
use super::training_loop::{train, AdamW, Learner, StepAt, StepReport};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::metric_names as names;
use crate::metrics::{mechanism_metrics, Rollout, ROLLOUTS_FILE};
use crate::model::TrainBackend;
use crate::model::{TextTokenizer, Transformer};
use crate::records::DatasetRecord;
use crate::rewards::{AccuracyVerifier, ModelScorer, RoutedRewards};
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

impl StageJob for GrpoJob {
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult {
        let spec = context.spec().clone();
        let mut policy = load_input::<B>(context, InputField::From, self.seed, &device)?;
        let lora = self.training.lora.as_ref();
        if lora.is_some() && self.syncs_reference() {
            // `check` refuses it at `sync_ref_model`; a spec written by hand meets this.
            return Err(failed(
                "`sync_ref_model` with `lora:`: the reference is the frozen base, which syncing cannot move",
            ));
        }
        policy.model = with_adapters(policy.model, lora, self.seed, &device)?;
        let reference: Option<Transformer<B::InnerBackend>> = if self.policy.beta > 0.0 {
            Some(match spec.input(InputField::Reference) {
                Some(_) => {
                    load_input::<B::InnerBackend>(
                        context,
                        InputField::Reference,
                        self.seed,
                        &device,
                    )?
                    .model
                }
                // With adapters the reference is the frozen base: the policy's own
                // weights with the adapters left out, not a second copy.
                None => policy.model.valid().without_lora(),
            })
        } else {
            None
        };
        if let (true, Some(reference)) = (self.syncs_reference(), &reference) {
            check_syncable(&policy.model.valid(), reference)?;
        }
        let records: Vec<DatasetRecord> =
            context.read_records(InputField::Prompts, "train.jsonl")?;
        if records.is_empty() {
            return Err(failed("the prompts' train split is empty"));
        }
        let reward_set = self.rewards.build(context)?;
        let reward_models = RewardModels::<B::InnerBackend>::load(
            context,
            &reward_set.reward_model_stages(),
            &device,
        )?;
        let training = &self.training;
        let prompts_per_step = (training.sequences_per_step() / self.policy.num_generations).max(1);
        let total = training.total_steps(records.len(), prompts_per_step);
        // With dynamic sampling a step draws as many prompts as it needs: where the stream
        // stands is loop state. Without, a step's prompts are a function of the step.
        let stream = self
            .policy
            .dynamic_sampling
            .as_ref()
            .map(|_| PromptStream::new(self.seed, records.len(), 0));
        let mut learner = GrpoLearner {
            job: &self,
            tokenizer: policy.tokenizer.clone(),
            records: &records,
            reward_set: &reward_set,
            reward_models,
            accuracy: AccuracyVerifier::of_stage(&spec.rewards),
            reference,
            stream,
            prompts_per_step,
            rollouts: Vec::new(),
            device: &device,
        };
        policy.model = train(
            context,
            policy.model,
            &mut learner,
            training,
            total,
            &device,
        )?;
        // The reference model is as large as the weights: let it go before the weights are
        // serialised (which copies them twice more); `train` has dropped the optimizer.
        let rollouts = std::mem::take(&mut learner.rollouts);
        drop(learner);
        let mut files = trained_model_files(policy, lora)?;
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

/// The policy as it samples a step's completions: with LoRA adapters, merged into its
/// weights once per step — one `A · B` per projection, instead of two thin products and an
/// add per projection for every decoded token (as TRL does when it syncs a PEFT policy to
/// vLLM). Equal in value to the adapted forward the update differentiates, not in bits.
fn sampling_policy<B: TrainBackend>(model: &Transformer<B>) -> Transformer<B::InnerBackend> {
    let policy = model.valid();
    if policy.has_lora() {
        policy.merge_lora()
    } else {
        policy
    }
}

/// A GRPO step: sample and score the step's groups (refilled by dynamic sampling when the
/// stage asks for it), update the policy on them, sync the reference when due; every
/// rollout is kept, and checkpointed with the reference that syncing moves.
struct GrpoLearner<'j, B: TrainBackend> {
    job: &'j GrpoJob,
    tokenizer: TextTokenizer,
    records: &'j [DatasetRecord],
    reward_set: &'j RoutedRewards,
    reward_models: RewardModels<B::InnerBackend>,
    accuracy: AccuracyVerifier,
    reference: Option<Transformer<B::InnerBackend>>,
    /// Where dynamic sampling's prompt stream stands (none without dynamic sampling).
    stream: Option<PromptStream>,
    prompts_per_step: usize,
    rollouts: Vec<Rollout>,
    device: &'j B::Device,
}

impl<B: TrainBackend> Learner<B> for GrpoLearner<'_, B> {
    type Model = Transformer<B>;

    fn resume(&mut self, context: &StageContext<'_>, state: &LoopState) -> Result<(), StageError> {
        if let Some(stream) = &mut self.stream {
            let drawn = state
                .extra
                .get(PROMPTS_DRAWN)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| {
                    failed("the checkpoint does not say how many prompts dynamic sampling drew")
                })?;
            *stream = PromptStream::new(self.job.seed, self.records.len(), drawn);
        }
        self.rollouts =
            crate::records::from_jsonl(&context.read_checkpoint(ROLLOUTS_FILE)?).map_err(failed)?;
        if self.job.syncs_reference() {
            if let Some(start) = self.reference.take() {
                self.reference = Some(load_module(
                    start,
                    context.read_checkpoint(REFERENCE_FILE)?,
                    self.device,
                )?);
            }
        }
        Ok(())
    }

    fn step(
        &mut self,
        mut model: Transformer<B>,
        optimizer: &mut AdamW<B, Transformer<B>>,
        at: StepAt,
    ) -> Result<(Transformer<B>, StepReport), StageError> {
        let job = self.job;
        let step = at.step;
        let rollout_settings = RolloutSettings {
            generation: &job.generation,
            policy: &job.policy,
            seed: job.seed,
        };
        let mut extra = None;
        let sampler = sampling_policy(&model);
        let (sampled, refill): (Option<StepRollouts>, Option<Refill>) =
            match (&job.policy.dynamic_sampling, &mut self.stream) {
                (Some(config), Some(stream)) => {
                    let (sampled, refill) = sample_filled(
                        &sampler,
                        &self.tokenizer,
                        self.records,
                        stream,
                        (self.prompts_per_step, step),
                        &rollout_settings,
                        config,
                        self.reward_set,
                        &mut self.reward_models as &mut dyn ModelScorer,
                        self.device,
                    )?;
                    extra = Some(serde_json::json!({ PROMPTS_DRAWN: stream.drawn() }));
                    (sampled, Some(refill))
                }
                _ => {
                    let picks =
                        prompt_batch(job.seed, self.records.len(), self.prompts_per_step, step);
                    let sampled = sample_step(
                        &sampler,
                        &self.tokenizer,
                        self.records,
                        picks,
                        (step, 0),
                        &rollout_settings,
                        self.reward_set,
                        &mut self.reward_models as &mut dyn ModelScorer,
                        self.device,
                    )?;
                    (Some(sampled), None)
                }
            };
        drop(sampler);
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
        let update = UpdateSettings {
            training: &job.training,
            policy: &job.policy,
            max_completion_length: job.generation.max_completion_length,
            pad: self.tokenizer.pad_id(),
            learning_rate: at.learning_rate,
            step: step + 1,
        };
        // A step whose every group dynamic sampling dropped has nothing to learn from:
        // it takes no optimizer step (the schedule moves on with the step count).
        let mut stats = None;
        if let Some(sampled) = &sampled {
            let updated;
            (model, updated) = update_policy(
                model,
                optimizer,
                self.reference.as_ref(),
                sampled,
                &update,
                self.device,
            )?;
            stats = Some(updated);
        }
        if job.syncs_reference() && (step + 1).is_multiple_of(job.policy.sync_ref_model) {
            self.reference = self
                .reference
                .take()
                .map(|r| mix_into_reference(r, &model.valid(), job.policy.ref_model_mixup_alpha));
        }
        let update_s = clock.elapsed().as_secs_f64();

        let mut metrics = match (&sampled, &stats) {
            (Some(sampled), Some(stats)) => {
                step_metrics(sampled, stats, at.learning_rate, &self.accuracy)
            }
            _ => BTreeMap::from([(names::LEARNING_RATE.to_string(), at.learning_rate)]),
        };
        if let Some(refill) = &refill {
            metrics.extend(refill.metrics());
        }
        metrics.insert(names::TIME_UPDATE.into(), update_s);
        let reward_mean = metrics.get(names::REWARD).copied().unwrap_or(f64::NAN);
        if let Some(sampled) = &sampled {
            self.rollouts
                .extend(sampled.records(step + 1, self.records));
        }
        let report = StepReport {
            averaged: Vec::new(),
            latest: metrics,
            progress: format!("reward {reward_mean:.3}"),
            extra,
        };
        Ok((model, report))
    }

    fn checkpoint_files(&self) -> Result<Vec<(String, Vec<u8>)>, StageError> {
        let mut files = vec![(
            ROLLOUTS_FILE.to_string(),
            crate::records::to_jsonl(&self.rollouts).map_err(failed)?,
        )];
        if let (true, Some(reference)) = (self.job.syncs_reference(), &self.reference) {
            files.push((REFERENCE_FILE.to_string(), module_bytes(reference)?));
        }
        Ok(files)
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
