//! Execute (training): the reward-model trainer behind `reward_model` — a backbone from
//! any model artifact plus a scalar head, trained on preference pairs in a seeded order
//! with the Bradley–Terry loss by the shared training loop (`training_loop`), and scored
//! on the held-out pairs (pair accuracy, mean margin) before and after training. Also
//! reads a stored reward model back and scores text with it.

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use super::bradley_terry::{bradley_terry_loss, pair_stats, PairStats};
use super::loss_scale;
use super::models::{failed, load_input, TOKENIZER_FILE};
use super::stage_job::{JobResult, StageJob};
use super::supervised::micro_batch;
use super::training_loop::{accumulated_step, train, AdamW, Learner, StepAt, StepReport};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::metric_names as names;
use crate::model::{self, RewardModel, TextTokenizer, TokenBatch};
use crate::model::{KernelBackend, TrainBackend};
use crate::stages::InputField;
use crate::stages::TrainingSettings;

/// Output names of a reward-model artifact: the model (backbone + head) and the tokenizer
/// it reads text with; `metrics.json` holds the held-out pair statistics.
pub const REWARD_MODEL_FILE: &str = "reward_model.safetensors";
pub const REWARD_METRICS_FILE: &str = "metrics.json";

/// One preference pair: the prompt and its better and worse completion.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferencePair {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

/// A reward-model training job.
pub struct RewardModelJob {
    /// Training pairs (the data's train split).
    pub pairs: Vec<PreferencePair>,
    /// Held-out pairs (the data's test split), scored after training.
    pub held_out: Vec<PreferencePair>,
    pub max_seq_length: usize,
    /// TRL's `center_rewards_coefficient`; 0 turns the term off.
    pub center_rewards_coefficient: f64,
    pub hyper: TrainingSettings,
    pub seed: u64,
}

/// The token ids a reward model scores for `prompt` followed by `completion`: both
/// encoded, then EOS; a sequence over `max_length` loses tokens from its start, so the
/// completion's end, where the score is read, is always kept.
pub fn scored_sequence(
    tokenizer: &TextTokenizer,
    prompt: &str,
    completion: &str,
    max_length: usize,
) -> Result<Vec<u32>, StageError> {
    let mut ids = tokenizer.encode(prompt, false).map_err(failed)?;
    ids.extend(tokenizer.encode(completion, false).map_err(failed)?);
    ids.push(
        tokenizer
            .eos_ids()
            .first()
            .copied()
            .unwrap_or_else(|| tokenizer.pad_id()),
    );
    if ids.len() > max_length {
        ids.drain(..ids.len() - max_length);
    }
    Ok(ids)
}

/// Encoded (chosen, rejected) sequences of `pairs`.
type EncodedPair = (Vec<u32>, Vec<u32>);

fn encode_pairs(
    pairs: &[PreferencePair],
    tokenizer: &TextTokenizer,
    max_length: usize,
) -> Result<Vec<EncodedPair>, StageError> {
    pairs
        .iter()
        .map(|p| {
            Ok((
                scored_sequence(tokenizer, &p.prompt, &p.chosen, max_length)?,
                scored_sequence(tokenizer, &p.prompt, &p.rejected, max_length)?,
            ))
        })
        .collect()
}

/// Scores of chosen and rejected sequences of `pairs`, in one batch: `([k], [k])`.
fn pair_scores<B: KernelBackend>(
    model: &RewardModel<B>,
    pairs: &[&EncodedPair],
    pad: u32,
    device: &B::Device,
) -> Result<(Tensor<B, 1>, Tensor<B, 1>), StageError> {
    let rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(c, _)| c.clone())
        .chain(pairs.iter().map(|(_, r)| r.clone()))
        .collect();
    let batch = TokenBatch::right_padded(&rows, pad);
    let scores = model.scores(&batch, device).map_err(failed)?;
    let k = pairs.len();
    Ok((scores.clone().narrow(0, 0, k), scores.narrow(0, k, k)))
}

fn host(t: Tensor<impl Backend, 1>) -> Result<Vec<f64>, StageError> {
    let values: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| failed(format!("reading scores back: {e:?}")))?;
    Ok(values.into_iter().map(f64::from).collect())
}

/// Pair statistics of `model` on `pairs`, forward only, `batch` pairs at a time.
fn held_out_stats<B: KernelBackend>(
    model: &RewardModel<B>,
    pairs: &[EncodedPair],
    batch: usize,
    pad: u32,
    device: &B::Device,
) -> Result<PairStats, StageError> {
    let mut chosen = Vec::with_capacity(pairs.len());
    let mut rejected = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(batch.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().collect();
        let (c, r) = pair_scores(model, &refs, pad, device)?;
        chosen.extend(host(c)?);
        rejected.extend(host(r)?);
    }
    Ok(pair_stats(&chosen, &rejected))
}

impl StageJob for RewardModelJob {
    /// Runs a reward-model job on backend `B`.
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult {
        let loaded = load_input::<B>(context, InputField::From, self.seed, &device)?;
        let tokenizer = loaded.tokenizer;
        let config = loaded.config;
        let train_pairs = encode_pairs(&self.pairs, &tokenizer, self.max_seq_length)?;
        if train_pairs.is_empty() {
            return Err(failed(
                "no preference pairs: the data's train split is empty",
            ));
        }
        let held_out = encode_pairs(&self.held_out, &tokenizer, self.max_seq_length)?;
        if held_out.is_empty() {
            tracing::warn!(
                stage = %context.spec().name,
                "the preference data has no test split: pair accuracy cannot be reported"
            );
        }
        let hyper = &self.hyper;
        let total = hyper.total_steps(train_pairs.len(), hyper.sequences_per_step());
        let model = RewardModel::new(loaded.model, config.hidden_size, self.seed, &device);
        let mut learner = RewardModelLearner {
            job: &self,
            train: &train_pairs,
            held_out: &held_out,
            pad: tokenizer.pad_id(),
            device: &device,
            last_loss: f64::NAN,
            final_metrics: BTreeMap::new(),
        };
        let model = train(context, model, &mut learner, hyper, total, &device)?;
        let mut final_metrics = learner.final_metrics;
        final_metrics.insert(names::FINAL_LOSS.to_string(), learner.last_loss);
        final_metrics.insert(names::STEPS.to_string(), total as f64);
        final_metrics.insert(names::TRAIN_PAIRS.to_string(), train_pairs.len() as f64);
        let metrics_json = serde_json::to_vec_pretty(&final_metrics).map_err(failed)?;
        let files = vec![
            (
                REWARD_MODEL_FILE.to_string(),
                model::reward_model_to_bytes(&model, &config, self.max_seq_length)
                    .map_err(failed)?,
            ),
            (
                TOKENIZER_FILE.to_string(),
                tokenizer.to_json().map_err(failed)?.into_bytes(),
            ),
            (REWARD_METRICS_FILE.to_string(), metrics_json),
        ];
        Ok(StageOutput {
            files,
            metrics: final_metrics,
        })
    }
}

/// A reward-model job's step: Bradley–Terry on its micro-batches of pairs in the seeded
/// order; the held-out pairs scored before the first step and after the last.
struct RewardModelLearner<'j, B: TrainBackend> {
    job: &'j RewardModelJob,
    train: &'j [EncodedPair],
    held_out: &'j [EncodedPair],
    pad: u32,
    device: &'j B::Device,
    /// The loss of the last step taken.
    last_loss: f64,
    /// The held-out statistics after the last step.
    final_metrics: BTreeMap<String, f64>,
}

impl<B: TrainBackend> RewardModelLearner<'_, B> {
    /// Pair statistics of `model` on the held-out pairs.
    fn held_out_stats(&self, model: &RewardModel<B>) -> Result<PairStats, StageError> {
        held_out_stats(
            &model.valid(),
            self.held_out,
            self.job.hyper.batch_size,
            self.pad,
            self.device,
        )
    }
}

impl<B: TrainBackend> Learner<B> for RewardModelLearner<'_, B> {
    type Model = RewardModel<B>;

    fn before_training(
        &mut self,
        context: &StageContext<'_>,
        model: &RewardModel<B>,
    ) -> Result<(), StageError> {
        if self.held_out.is_empty() {
            return Ok(());
        }
        // The untrained head's held-out statistics: the baseline the final ones are read
        // against (logged at step 0).
        let stats = self.held_out_stats(model)?;
        context.log_metrics(
            0,
            BTreeMap::from([
                (names::EVAL_ACCURACY.to_string(), stats.accuracy),
                (names::EVAL_MARGIN.to_string(), stats.margin),
            ]),
        )
    }

    fn step(
        &mut self,
        model: RewardModel<B>,
        optimizer: &mut AdamW<B, RewardModel<B>>,
        at: StepAt,
    ) -> Result<(RewardModel<B>, StepReport), StageError> {
        let hyper = &self.job.hyper;
        let (mut chosen_scores, mut rejected_scores) = (Vec::new(), Vec::new());
        let (model, loss, grad_norm) =
            accumulated_step(model, optimizer, hyper, at, |model, index| {
                let picks = micro_batch(self.job.seed, self.train.len(), hyper.batch_size, index);
                let pairs: Vec<&EncodedPair> = picks.iter().map(|&i| &self.train[i]).collect();
                let (chosen, rejected) = pair_scores(model, &pairs, self.pad, self.device)?;
                chosen_scores.extend(host(chosen.clone().detach())?);
                rejected_scores.extend(host(rejected.clone().detach())?);
                let loss =
                    bradley_terry_loss(chosen, rejected, self.job.center_rewards_coefficient)
                        .div_scalar(hyper.accumulation as f64);
                let value = f64::from(loss.clone().into_scalar().elem::<f32>());
                let grads = loss_scale::backward(loss);
                Ok((GradientsParams::from_grads(grads, model), value))
            })?;
        self.last_loss = loss;
        let stats = pair_stats(&chosen_scores, &rejected_scores);
        let mut report = StepReport::of_update(loss, grad_norm, at);
        report
            .averaged
            .extend([("accuracy", stats.accuracy), ("margin", stats.margin)]);
        Ok((model, report))
    }

    fn final_metrics(
        &mut self,
        model: &RewardModel<B>,
    ) -> Result<BTreeMap<String, f64>, StageError> {
        self.final_metrics
            .insert(names::EVAL_PAIRS.to_string(), self.held_out.len() as f64);
        if !self.held_out.is_empty() {
            let stats = self.held_out_stats(model)?;
            self.final_metrics
                .insert(names::EVAL_ACCURACY.to_string(), stats.accuracy);
            self.final_metrics
                .insert(names::EVAL_MARGIN.to_string(), stats.margin);
        }
        Ok(self.final_metrics.clone())
    }
}

/// A stored reward model, ready to score text.
pub struct StoredRewardModel<B: Backend> {
    pub model: RewardModel<B>,
    pub tokenizer: TextTokenizer,
    /// The sequence length it was trained at (longer texts lose their start).
    pub max_length: usize,
}

/// Reads the reward model upstream stage `stage` trained.
pub fn load_reward_model<B: KernelBackend>(
    context: &StageContext<'_>,
    stage: &str,
    device: &B::Device,
) -> Result<StoredRewardModel<B>, StageError> {
    let bytes = context.read_stage_output(stage, REWARD_MODEL_FILE)?;
    let (_, model, max_length) =
        model::reward_model_from_bytes::<B>(&bytes, device).map_err(failed)?;
    let json = context.read_stage_output(stage, TOKENIZER_FILE)?;
    let tokenizer = TextTokenizer::from_json(&String::from_utf8_lossy(&json)).map_err(failed)?;
    Ok(StoredRewardModel {
        model,
        tokenizer,
        max_length,
    })
}

impl<B: KernelBackend> StoredRewardModel<B> {
    /// The score of each `(prompt, completion)`, `batch` texts at a time.
    pub fn score_texts(
        &self,
        texts: &[(&str, &str)],
        batch: usize,
        device: &B::Device,
    ) -> Result<Vec<f64>, StageError> {
        let mut scores = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            let rows = chunk
                .iter()
                .map(|(p, c)| scored_sequence(&self.tokenizer, p, c, self.max_length))
                .collect::<Result<Vec<_>, _>>()?;
            let tokens = TokenBatch::right_padded(&rows, self.tokenizer.pad_id());
            scores.extend(host(self.model.scores(&tokens, device).map_err(failed)?)?);
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_keep_their_end() {
        let tokenizer = TextTokenizer::builtin();
        let full = scored_sequence(&tokenizer, "a long prompt", " the answer", 1000).expect("ids");
        let cut = scored_sequence(&tokenizer, "a long prompt", " the answer", 5).expect("ids");
        assert_eq!(cut.len(), 5);
        assert_eq!(&full[full.len() - 5..], cut.as_slice());
        assert_eq!(
            full.last().copied(),
            tokenizer.eos_ids().first().copied(),
            "ends with EOS"
        );
    }
}
