//! Execute (training): one GRPO step's rollouts — the step's prompts, `num_generations`
//! completions each, sampled with the KV cache on the inner (non-autodiff) backend and
//! scored by the stage's rewards, with their group-relative advantages — and the
//! `Rollout` records they leave in `rollouts.jsonl`.

use std::time::Instant;

use super::grpo_loss::group_advantages;
use super::models::failed;
use crate::exec::StageError;
use crate::manifest::ScaleRewards;
use crate::metrics::{ModeSample, Rollout};
use crate::model::KernelBackend;
use crate::model::{self, Completion, FinishReason, SamplingParams, TextTokenizer, Transformer};
use crate::records::{Answer, DatasetRecord};
use crate::rewards::{AccuracyVerifier, ModelScorer, RoutedRewards, RoutedScores, Sample};
use crate::stages::{GenerationSettings, PolicySettings};
use crate::tasks::SeededRng;

/// Prompt indices of step `step`: consecutive slices of a seeded order, reshuffled per epoch.
pub(super) fn prompt_batch(seed: u64, count: usize, per_step: usize, step: u64) -> Vec<usize> {
    let per_epoch = (count / per_step.max(1)).max(1) as u64;
    let epoch = step / per_epoch;
    let within = (step % per_epoch) as usize;
    epoch_order(seed, count, epoch)
        .into_iter()
        .cycle()
        .skip(within * per_step)
        .take(per_step)
        .collect()
}

/// The seeded order of the `count` prompts in epoch `epoch`.
pub(super) fn epoch_order(seed: u64, count: usize, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    SeededRng::for_purpose(seed, &format!("grpo-epoch-{epoch}")).shuffle(&mut order);
    order
}

/// A step's sampled and scored groups: `group` consecutive rows per picked prompt.
pub(super) struct StepRollouts {
    /// Record index of each picked prompt.
    pub picks: Vec<usize>,
    /// Completions per prompt (`num_generations`).
    pub group: usize,
    /// Each row's prompt ids (truncated from the left to `max_prompt_length`).
    pub rows: Vec<Vec<u32>>,
    pub completions: Vec<Completion>,
    /// What the rewards scored: each row's pre-filled response start and completion.
    pub responses: Vec<String>,
    /// Each picked prompt's reference answer.
    pub answers: Vec<Option<Answer>>,
    pub scores: RoutedScores,
    pub advantages: Vec<f64>,
    /// Wall seconds spent sampling and scoring (measurements, in no artifact).
    pub generation_s: f64,
    pub reward_s: f64,
}

/// What sampling a step needs.
pub(super) struct RolloutSettings<'a> {
    pub generation: &'a GenerationSettings,
    pub policy: &'a PolicySettings,
    pub seed: u64,
}

/// Samples `group` completions for each of `picks` with `model` and scores them. `round`
/// counts the sampling rounds of one step (dynamic sampling); round 0 is every step's
/// first, with the seed steps always had.
#[allow(clippy::too_many_arguments)]
pub(super) fn sample_step<B: KernelBackend>(
    model: &Transformer<B>,
    tokenizer: &TextTokenizer,
    records: &[DatasetRecord],
    picks: Vec<usize>,
    (step, round): (u64, u32),
    settings: &RolloutSettings<'_>,
    rewards: &RoutedRewards,
    scorer: &mut dyn ModelScorer,
    device: &B::Device,
) -> Result<StepRollouts, StageError> {
    let group = settings.policy.num_generations;
    let generation = settings.generation;
    let mut rows = Vec::with_capacity(picks.len() * group);
    for &i in &picks {
        let mut ids = tokenizer
            .encode(&records[i].prompt, false)
            .map_err(failed)?;
        if ids.len() > generation.max_prompt_length {
            ids.drain(..ids.len() - generation.max_prompt_length);
        }
        rows.extend(std::iter::repeat_n(ids, group));
    }
    let sampling = SamplingParams {
        max_new_tokens: generation.max_completion_length,
        temperature: generation.temperature as f32,
        top_p: generation.top_p as f32,
        top_k: generation.top_k,
        seed: settings.seed
            ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(round).wrapping_mul(0xD1B5_4A32_D192_ED03),
        stop: generation.stop.clone(),
    };
    let clock = Instant::now();
    let completions =
        model::generate(model, tokenizer, &rows, &sampling, device).map_err(failed)?;

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
                .with_tests(record.tests.as_ref(), record.entry_point.as_deref())
        })
        .collect();
    let generation_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let scores = rewards.score(&samples, Some(scorer)).map_err(failed)?;
    let reward_s = clock.elapsed().as_secs_f64();
    let advantages = group_advantages(&scores.batch.total, group, settings.policy.scale_rewards);
    Ok(StepRollouts {
        picks,
        group,
        rows,
        completions,
        responses,
        answers,
        scores,
        advantages,
        generation_s,
        reward_s,
    })
}

impl StepRollouts {
    /// The groups `kept` picks out of `rounds` (round, group), in that order, as one
    /// step's batch; advantages are computed over it as if it had been sampled at once.
    /// `None` when nothing is kept.
    pub(super) fn gather(
        rounds: &[StepRollouts],
        kept: &[(usize, usize)],
        scale: ScaleRewards,
    ) -> Option<StepRollouts> {
        let first = rounds.first()?;
        if kept.is_empty() {
            return None;
        }
        let group = first.group;
        let rows: Vec<(usize, usize)> = kept
            .iter()
            .flat_map(|&(round, g)| (g * group..(g + 1) * group).map(move |r| (round, r)))
            .collect();
        let scores: Vec<&RoutedScores> = rounds.iter().map(|r| &r.scores).collect();
        let scores = RoutedScores::gather(&scores, &rows);
        let advantages = group_advantages(&scores.batch.total, group, scale);
        // Item i of round `round`'s `field`, for each (round, i) of `at`.
        fn pick<T: Clone>(
            rounds: &[StepRollouts],
            at: &[(usize, usize)],
            field: impl Fn(&StepRollouts) -> &[T],
        ) -> Vec<T> {
            at.iter()
                .map(|&(round, i)| field(&rounds[round])[i].clone())
                .collect()
        }
        Some(StepRollouts {
            picks: pick(rounds, kept, |r| &r.picks),
            group,
            rows: pick(rounds, &rows, |r| &r.rows),
            completions: pick(rounds, &rows, |r| &r.completions),
            responses: pick(rounds, &rows, |r| &r.responses),
            answers: pick(rounds, kept, |r| &r.answers),
            scores,
            advantages,
            generation_s: rounds.iter().map(|r| r.generation_s).sum(),
            reward_s: rounds.iter().map(|r| r.reward_s).sum(),
        })
    }

    /// Each row as the mechanism metrics read it, graded by `accuracy`.
    pub(super) fn mode_samples<'s>(&'s self, accuracy: &AccuracyVerifier) -> Vec<ModeSample<'s>> {
        self.responses
            .iter()
            .zip(&self.completions)
            .enumerate()
            .map(|(r, (response, completion))| {
                ModeSample::graded(
                    response,
                    self.answers[r / self.group].as_ref(),
                    accuracy,
                    completion.token_ids.len(),
                    completion.finish == FinishReason::Length,
                )
            })
            .collect()
    }

    /// Whether row `r` is trained on: it has a reward, and is not a truncated completion
    /// when those are masked.
    pub(super) fn trained(&self, r: usize, mask_truncated: bool) -> bool {
        self.scores.batch.total[r].is_some()
            && !(mask_truncated && self.completions[r].finish == FinishReason::Length)
    }

    /// The records of this step's completions, logged after step `step`.
    pub(super) fn records(&self, step: u64, records: &[DatasetRecord]) -> Vec<Rollout> {
        let scored = &self.scores.batch;
        self.completions
            .iter()
            .enumerate()
            .map(|(r, completion)| Rollout {
                step,
                prompt_id: records[self.picks[r / self.group]].id.clone(),
                completion: completion.text.clone(),
                reward: scored.total[r],
                rewards: scored
                    .per_reward
                    .iter()
                    .map(|(name, outcomes)| (name.clone(), outcomes[r].score()))
                    .collect(),
                advantage: self.advantages[r],
                tokens: completion.token_ids.len(),
                truncated: completion.finish == FinishReason::Length,
            })
            .collect()
    }
}
