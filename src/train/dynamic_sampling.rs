//! Execute (training): DAPO's dynamic sampling (`dynamic_sampling:`) — a step's groups whose
//! `metric` reward is the same for every completion are dropped, and groups of new prompts
//! are sampled in their place, as many as were dropped, until the step's batch is full or
//! `max_rounds` rounds were sampled. The step trains on what it kept; with nothing kept it
//! takes no optimizer step.
//!
//! The prompts come from one stream per stage — the epochs' seeded orders one after
//! another — whose position is part of the checkpointed loop state, so a resumed run
//! draws exactly the prompts the uninterrupted run drew. (DAPO samples a whole batch per
//! round and throws the surplus away; drawing only what is missing spends no sampling on
//! groups that would be discarded.)

use std::collections::BTreeMap;

use super::models::failed;
use super::rollout::{epoch_order, sample_step, RolloutSettings, StepRollouts};
use crate::exec::StageError;
use crate::manifest::DynamicSampling;
use crate::metric_names as names;
use crate::model::{KernelBackend, TextTokenizer, Transformer};
use crate::records::DatasetRecord;
use crate::rewards::{ModelScorer, RewardOutcome, RoutedRewards};

/// The key of the stream's position in the loop state's `extra`.
pub(super) const PROMPTS_DRAWN: &str = "prompts_drawn";

/// The prompts of a stage with dynamic sampling, in the order they are drawn: epoch 0's
/// seeded order, then epoch 1's, … (the orders plain GRPO steps take their slices of).
pub(super) struct PromptStream {
    seed: u64,
    count: usize,
    drawn: u64,
    /// The current epoch and its order.
    order: Option<(u64, Vec<usize>)>,
}

impl PromptStream {
    /// The stream of `count` prompts, `drawn` of them already taken.
    pub(super) fn new(seed: u64, count: usize, drawn: u64) -> Self {
        Self {
            seed,
            count,
            drawn,
            order: None,
        }
    }

    /// Prompts taken so far (what a checkpoint keeps).
    pub(super) fn drawn(&self) -> u64 {
        self.drawn
    }

    /// The next `n` prompt indices.
    pub(super) fn draw(&mut self, n: usize) -> Vec<usize> {
        let count = self.count.max(1) as u64;
        let mut picks = Vec::with_capacity(n);
        for _ in 0..n {
            let epoch = self.drawn / count;
            let order = match &self.order {
                Some((e, order)) if *e == epoch => order,
                _ => {
                    let order = epoch_order(self.seed, self.count, epoch);
                    &self.order.insert((epoch, order)).1
                }
            };
            if let Some(&pick) = order.get((self.drawn % count) as usize) {
                picks.push(pick);
            }
            self.drawn += 1;
        }
        picks
    }
}

/// For each group of `group` consecutive outcomes: whether it is kept — unless `metric`
/// scored every completion of it with the same value. A group the metric skipped anywhere
/// (an `rlhf` general prompt, a record without a reference) is kept: the filter cannot
/// judge it.
pub(super) fn informative_groups(metric: &[RewardOutcome], group: usize) -> Vec<bool> {
    metric
        .chunks(group.max(1))
        .map(|outcomes| {
            let scores: Option<Vec<f64>> = outcomes.iter().map(RewardOutcome::score).collect();
            match scores {
                Some(scores) => scores.windows(2).any(|w| w[0] != w[1]),
                None => true,
            }
        })
        .collect()
}

/// What a step's dynamic sampling did, logged beside `frac_reward_zero_std`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refill {
    /// Prompts drawn this step (each sampled as one group).
    pub prompts_drawn: usize,
    /// Groups dropped because the metric did not tell their completions apart.
    pub groups_dropped: usize,
    /// Groups the step trains on.
    pub groups_kept: usize,
    /// Sampling rounds, the first included.
    pub rounds: u32,
}

impl Refill {
    /// The step's metrics, `dynamic_sampling/*`.
    pub(super) fn metrics(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            (
                names::DYNAMIC_SAMPLING_PROMPTS_DRAWN.to_string(),
                self.prompts_drawn as f64,
            ),
            (
                names::DYNAMIC_SAMPLING_GROUPS_DROPPED.to_string(),
                self.groups_dropped as f64,
            ),
            (
                names::DYNAMIC_SAMPLING_GROUPS_KEPT.to_string(),
                self.groups_kept as f64,
            ),
            (
                names::DYNAMIC_SAMPLING_ROUNDS.to_string(),
                f64::from(self.rounds),
            ),
        ])
    }
}

/// What [`fill`] sampled: every round, the groups kept as (round, group) in the order
/// they were drawn, and the counts the step logs.
pub(super) struct Filled<R> {
    pub rounds: Vec<R>,
    pub kept: Vec<(usize, usize)>,
    pub refill: Refill,
}

/// Rounds of drawing and dropping until a batch of `per_step` groups is kept, or
/// `max_rounds` rounds were sampled: the first round draws `per_step` prompts, each later
/// one as many as are missing. `draw_round(prompts, round)` samples and scores one round;
/// `keep` says which of its groups stay.
pub(super) fn fill<R>(
    per_step: usize,
    max_rounds: u32,
    mut draw_round: impl FnMut(usize, u32) -> Result<R, StageError>,
    keep: impl Fn(&R) -> Result<Vec<bool>, StageError>,
) -> Result<Filled<R>, StageError> {
    let mut rounds = Vec::new();
    let mut kept = Vec::new();
    let mut refill = Refill {
        prompts_drawn: 0,
        groups_dropped: 0,
        groups_kept: 0,
        rounds: 0,
    };
    while refill.rounds < max_rounds.max(1) && kept.len() < per_step {
        let missing = per_step - kept.len();
        let sampled = draw_round(missing, refill.rounds)?;
        for (g, informative) in keep(&sampled)?.into_iter().enumerate() {
            if informative {
                kept.push((rounds.len(), g));
            } else {
                refill.groups_dropped += 1;
            }
        }
        refill.prompts_drawn += missing;
        refill.rounds += 1;
        rounds.push(sampled);
    }
    refill.groups_kept = kept.len();
    Ok(Filled {
        rounds,
        kept,
        refill,
    })
}

/// One step of a stage with dynamic sampling: its groups drawn from `stream` and filtered
/// by `config.metric`. `None` when every group drawn was dropped.
#[allow(clippy::too_many_arguments)]
pub(super) fn sample_filled<B: KernelBackend>(
    model: &Transformer<B>,
    tokenizer: &TextTokenizer,
    records: &[DatasetRecord],
    stream: &mut PromptStream,
    (per_step, step): (usize, u64),
    settings: &RolloutSettings<'_>,
    config: &DynamicSampling,
    rewards: &RoutedRewards,
    scorer: &mut dyn ModelScorer,
    device: &B::Device,
) -> Result<(Option<StepRollouts>, Refill), StageError> {
    let group = settings.policy.num_generations;
    // `rlhf` names its reasoning prompts' rewards `reasoning/NAME`.
    let routed_name = format!("reasoning/{}", config.metric);
    let Filled {
        rounds,
        kept,
        refill,
    } = fill(
        per_step,
        config.max_rounds,
        |missing, round| {
            sample_step(
                model,
                tokenizer,
                records,
                stream.draw(missing),
                (step, round),
                settings,
                rewards,
                &mut *scorer,
                device,
            )
        },
        |sampled: &StepRollouts| {
            let per_reward = &sampled.scores.batch.per_reward;
            let outcomes = per_reward
                .get(&config.metric)
                .or_else(|| per_reward.get(&routed_name))
                .ok_or_else(|| {
                    failed(format!(
                        "dynamic sampling's metric `{}` is not among the rewards this stage scored",
                        config.metric
                    ))
                })?;
            Ok(informative_groups(outcomes, group))
        },
    )?;
    let batch = StepRollouts::gather(&rounds, &kept, settings.policy.scale_rewards);
    Ok((batch, refill))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[f64]) -> Vec<RewardOutcome> {
        values.iter().map(|&v| RewardOutcome::Score(v)).collect()
    }

    #[test]
    fn constant_groups_are_dropped_and_the_others_kept() {
        // Groups of 3: all wrong, mixed, all right, mixed by a small amount.
        let metric = scores(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]);
        assert_eq!(
            informative_groups(&metric, 3),
            vec![false, true, false, true]
        );
        // A group the metric skipped anywhere cannot be judged: it is kept.
        let mut skipped = scores(&[1.0, 1.0]);
        skipped[1] = RewardOutcome::Skipped("not a reasoning prompt".into());
        assert_eq!(informative_groups(&skipped, 2), vec![true]);
    }

    #[test]
    fn the_stream_continues_across_epochs_and_resumes_where_it_stopped() {
        let mut stream = PromptStream::new(7, 5, 0);
        let first = stream.draw(3);
        let rest = stream.draw(4);
        assert_eq!(stream.drawn(), 7);
        // The first epoch is epoch 0's seeded order, whole; the second starts epoch 1.
        assert_eq!(
            [first.clone(), rest[..2].to_vec()].concat(),
            epoch_order(7, 5, 0)
        );
        assert_eq!(rest[2..], epoch_order(7, 5, 1)[..2]);
        let mut resumed = PromptStream::new(7, 5, 3);
        assert_eq!(resumed.draw(4), rest);
    }

    /// Rounds whose groups are listed as kept (true) or dropped (false), each round
    /// drawing `missing` prompts numbered on from the last.
    fn run_fill(
        per_step: usize,
        max_rounds: u32,
        verdicts: &[bool],
    ) -> (Vec<(usize, usize)>, Refill, Vec<usize>) {
        let mut next = 0;
        let mut sizes = Vec::new();
        let Filled {
            rounds,
            kept,
            refill,
        } = fill(
            per_step,
            max_rounds,
            |missing, _round| {
                sizes.push(missing);
                let drawn: Vec<usize> = (next..next + missing).collect();
                next += missing;
                Ok(drawn)
            },
            |drawn: &Vec<usize>| {
                Ok(drawn
                    .iter()
                    .map(|&p| verdicts.get(p).copied().unwrap_or(true))
                    .collect())
            },
        )
        .expect("fills");
        assert_eq!(rounds.len() as u32, refill.rounds);
        (kept, refill, sizes)
    }

    #[test]
    fn dropped_groups_are_replaced_in_drawing_order() {
        // Prompts 0..4 in round 0, 1 and 3 dropped; round 1 draws 4 and 5, 4 dropped;
        // round 2 draws 6, kept.
        let (kept, refill, sizes) = run_fill(4, 5, &[true, false, true, false, false, true, true]);
        assert_eq!(sizes, vec![4, 2, 1]);
        assert_eq!(kept, vec![(0, 0), (0, 2), (1, 1), (2, 0)]);
        assert_eq!(
            refill,
            Refill {
                prompts_drawn: 7,
                groups_dropped: 3,
                groups_kept: 4,
                rounds: 3
            }
        );
    }

    #[test]
    fn max_rounds_ends_the_step_with_what_was_kept() {
        let (kept, refill, sizes) = run_fill(2, 2, &[false, true, false, false, true]);
        assert_eq!(sizes, vec![2, 1]);
        assert_eq!(kept, vec![(0, 1)]);
        assert_eq!(
            (refill.rounds, refill.groups_dropped, refill.groups_kept),
            (2, 2, 1)
        );
        // Nothing informative at all: nothing kept, and the step will not update.
        let (kept, refill, _) = run_fill(2, 3, &[false; 6]);
        assert!(kept.is_empty());
        assert_eq!(
            (refill.rounds, refill.prompts_drawn, refill.groups_kept),
            (3, 6, 0)
        );
    }
}
