//! Execute (training): the supervised trainer behind `pretrain`, `sft` and `distill` —
//! next-token cross-entropy on chosen tokens, or (distill's `logits` mode) token-level KL
//! to a frozen teacher's distributions on them — over micro-batches in a seeded order,
//! run by the shared training loop (`training_loop`: schedule, accumulation, clipping,
//! logging, checkpoints and resume).

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::chunked_logprobs::logprob_gradients;
use super::distill_kl::token_kl;
use super::lora::{trained_model_files, with_adapters};
use super::loss_mask::next_token_weights;
use super::loss_scale;
use super::models::{failed, load_input, StageModel};
use super::stage_job::{JobResult, StageJob};
use super::training_loop::{accumulated_step, train, AdamW, Learner, StepAt, StepReport};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::metric_names as names;
use crate::model::kernels;
use crate::model::TrainBackend;
use crate::model::{self, TextTokenizer, TokenBatch, Transformer};
use crate::stages::InputField;
use crate::stages::KlDirection;
use crate::stages::TrainingSettings;
use crate::tasks::SeededRng;

/// How examples become training sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceMode {
    /// Concatenate every text (prompt + completion + EOS) and cut the stream into windows
    /// of `max_seq_length`; every token is a target (pretraining).
    Packed,
    /// One sequence per example (prompt + completion + EOS), cut at `max_seq_length`;
    /// targets are the completion and EOS, or every token when `completion_only` is off.
    Pairs { completion_only: bool },
}

/// What the student is trained to match on the target tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// The data's tokens (next-token cross-entropy).
    CrossEntropy,
    /// The next-token distributions of the teacher model named by input `teacher_field`
    /// (token-level KL in direction `kl`).
    TeacherLogits {
        teacher_field: InputField,
        kl: KlDirection,
    },
}

/// A supervised training job.
pub struct SupervisedJob {
    /// The input field holding the starting model.
    pub init_field: InputField,
    /// (prompt, completion) texts.
    pub examples: Vec<(String, String)>,
    pub mode: SequenceMode,
    pub objective: Objective,
    pub max_seq_length: usize,
    pub hyper: TrainingSettings,
    pub seed: u64,
}

/// A training sequence: ids and, per position, whether that token is a target.
struct Sequence {
    ids: Vec<u32>,
    target: Vec<bool>,
}

fn sequences(job: &SupervisedJob, tokenizer: &TextTokenizer) -> Result<Vec<Sequence>, StageError> {
    let eos = tokenizer
        .eos_ids()
        .first()
        .copied()
        .unwrap_or_else(|| tokenizer.pad_id());
    let encode = |text: &str| tokenizer.encode(text, false).map_err(failed);
    // At least 2: check refuses shorter windows.
    let len = job.max_seq_length;
    match job.mode {
        SequenceMode::Packed => {
            let mut stream = Vec::new();
            for (prompt, completion) in &job.examples {
                stream.extend(encode(&format!("{prompt}{completion}"))?);
                stream.push(eos);
            }
            Ok(stream
                .chunks_exact(len)
                .map(|c| Sequence {
                    ids: c.to_vec(),
                    target: vec![true; len],
                })
                .collect())
        }
        SequenceMode::Pairs { completion_only } => job
            .examples
            .iter()
            .map(|(prompt, completion)| {
                let prompt_ids = encode(prompt)?;
                let mut ids = prompt_ids.clone();
                ids.extend(encode(completion)?);
                ids.push(eos);
                let mut target: Vec<bool> = (0..ids.len())
                    .map(|i| !completion_only || i >= prompt_ids.len())
                    .collect();
                ids.truncate(len);
                target.truncate(len);
                Ok(Sequence { ids, target })
            })
            .collect(),
    }
}

/// The batch of micro-batch number `index` (epochs reshuffle by seed).
pub(super) fn micro_batch(order_seed: u64, count: usize, batch: usize, index: u64) -> Vec<usize> {
    let per_epoch = count.div_ceil(batch).max(1) as u64;
    let epoch = index / per_epoch;
    let within = (index % per_epoch) as usize;
    let mut order: Vec<usize> = (0..count).collect();
    SeededRng::for_purpose(order_seed, &format!("epoch-{epoch}")).shuffle(&mut order);
    order.into_iter().skip(within * batch).take(batch).collect()
}

/// A frozen teacher and the KL direction to it.
struct Teacher<B: TrainBackend> {
    model: Transformer<B::InnerBackend>,
    kl: KlDirection,
}

/// The gradients of the loss of `rows` (scaled by `1 / accumulation`) and its value: the
/// mean negative log-likelihood of their target tokens, or with a teacher the mean KL to
/// its distributions at the positions predicting them.
fn batch_gradients<B: TrainBackend>(
    model: &Transformer<B>,
    teacher: Option<&Teacher<B>>,
    rows: &[&Sequence],
    pad: u32,
    hyper: &TrainingSettings,
    device: &B::Device,
) -> Result<(GradientsParams, f64), StageError> {
    let (accumulation, checkpointing) = (hyper.accumulation, hyper.gradient_checkpointing);
    let ids: Vec<Vec<u32>> = rows.iter().map(|s| s.ids.clone()).collect();
    let batch = TokenBatch::right_padded(&ids, pad);
    if let Some(teacher) = teacher {
        if batch.seq < 2 {
            return Err(failed("a training sequence needs two tokens or more"));
        }
        let positions = batch.seq - 1;
        // A target token that is real (not padding) counts.
        let weights = next_token_weights(batch.batch, batch.seq, |r, token| {
            token < rows[r].ids.len() && rows[r].target.get(token).copied().unwrap_or(false)
        });
        let mask =
            Tensor::<B, 2>::from_data(TensorData::new(weights, [batch.batch, positions]), device);
        let student = model
            .forward(&batch, device)
            .map_err(failed)?
            .narrow(1, 0, positions);
        let frozen = teacher
            .model
            .forward(&batch, device)
            .map_err(failed)?
            .narrow(1, 0, positions);
        let loss = token_kl(student, Tensor::from_inner(frozen), mask, teacher.kl)
            .div_scalar(accumulation as f64);
        let value = f64::from(loss.clone().into_scalar().elem::<f32>());
        let grads = loss_scale::backward(loss);
        return Ok((GradientsParams::from_grads(grads, model), value));
    }
    if batch.seq < 2 {
        return Err(failed("a training sequence needs two tokens or more"));
    }
    // Padding is masked by the batch's own target mask.
    let weights = next_token_weights(batch.batch, batch.seq, |r, token| {
        rows[r].target.get(token).copied().unwrap_or(false)
    });
    let (_, real) = model::logprobs::next_token_targets(&batch);
    let shape = [batch.batch, batch.seq - 1];
    // With a completion-only loss, only the positions it counts go through the head
    // (pretraining counts every real token: nothing to leave out).
    let completion_only = rows.iter().any(|row| row.target.iter().any(|t| !t));
    let scored: Option<Vec<bool>> = completion_only.then(|| {
        weights
            .iter()
            .zip(&real)
            .map(|(w, r)| *w > 0.0 && *r > 0.0)
            .collect()
    });
    let (grads, pass) = logprob_gradients(
        model,
        &batch,
        device,
        false,
        checkpointing,
        scored.as_deref(),
        |logprobs| {
            let mask = Tensor::<B, 2>::from_data(TensorData::new(weights, shape), device)
                * Tensor::from_data(TensorData::new(real, shape), device);
            let count = kernels::sum(mask.clone()).clamp_min(1.0);
            let loss =
                (kernels::sum(logprobs * mask).neg() / count).div_scalar(accumulation as f64);
            let value = f64::from(loss.clone().into_scalar().elem::<f32>());
            (loss, value)
        },
    )
    .map_err(failed)?;
    Ok((grads, pass.value))
}

impl StageJob for SupervisedJob {
    /// Runs a supervised job on backend `B`.
    fn run<B: TrainBackend>(self, context: &mut StageContext<'_>, device: B::Device) -> JobResult {
        let mut loaded: StageModel<B> = load_input(context, self.init_field, self.seed, &device)?;
        // Only the student gets adapters; a teacher stays as it is.
        let lora = self.hyper.lora.as_ref();
        loaded.model = with_adapters(loaded.model, lora, self.seed, &device)?;
        let teacher = match self.objective {
            Objective::CrossEntropy => None,
            Objective::TeacherLogits { teacher_field, kl } => {
                let teacher =
                    load_input::<B::InnerBackend>(context, teacher_field, self.seed, &device)?;
                check_same_vocabulary(&teacher, &loaded)?;
                Some(Teacher::<B> {
                    model: teacher.model,
                    kl,
                })
            }
        };
        let data = sequences(&self, &loaded.tokenizer)?;
        if data.is_empty() {
            return Err(failed("no training sequences: the data is empty or shorter than one `max_seq_length` window"));
        }
        let hyper = &self.hyper;
        let total = hyper.total_steps(data.len(), hyper.sequences_per_step());
        let mut learner = SupervisedLearner {
            job: &self,
            data: &data,
            teacher: teacher.as_ref(),
            pad: loaded.tokenizer.pad_id(),
            device: &device,
            last_loss: f64::NAN,
        };
        loaded.model = train(context, loaded.model, &mut learner, hyper, total, &device)?;
        let metrics = BTreeMap::from([
            (names::FINAL_LOSS.to_string(), learner.last_loss),
            (names::STEPS.to_string(), total as f64),
            ("sequences".to_string(), data.len() as f64),
        ]);
        Ok(StageOutput {
            files: trained_model_files(loaded, lora)?,
            metrics,
        })
    }
}

/// A supervised job's step: its micro-batches in the seeded order, the cross-entropy or
/// the KL to the teacher on their target tokens.
struct SupervisedLearner<'j, B: TrainBackend> {
    job: &'j SupervisedJob,
    data: &'j [Sequence],
    teacher: Option<&'j Teacher<B>>,
    pad: u32,
    device: &'j B::Device,
    /// The loss of the last step taken.
    last_loss: f64,
}

impl<B: TrainBackend> Learner<B> for SupervisedLearner<'_, B> {
    type Model = Transformer<B>;

    fn step(
        &mut self,
        model: Transformer<B>,
        optimizer: &mut AdamW<B, Transformer<B>>,
        at: StepAt,
    ) -> Result<(Transformer<B>, StepReport), StageError> {
        let hyper = &self.job.hyper;
        let (model, loss, grad_norm) =
            accumulated_step(model, optimizer, hyper, at, |model, index| {
                let picks = micro_batch(self.job.seed, self.data.len(), hyper.batch_size, index);
                let rows: Vec<&Sequence> = picks.iter().map(|&i| &self.data[i]).collect();
                batch_gradients(model, self.teacher, &rows, self.pad, hyper, self.device)
            })?;
        self.last_loss = loss;
        Ok((model, StepReport::of_update(loss, grad_norm, at)))
    }
}

/// Logit distillation compares distributions token by token: teacher and student must
/// share the vocabulary and the tokenizer.
fn check_same_vocabulary<T: burn::tensor::backend::Backend, S: burn::tensor::backend::Backend>(
    teacher: &StageModel<T>,
    student: &StageModel<S>,
) -> Result<(), StageError> {
    let (t, s) = (teacher.config.vocab_size, student.config.vocab_size);
    if t != s {
        return Err(failed(format!(
            "`mode: logits` needs the teacher and the student to share a vocabulary, but the \
             teacher's has {t} tokens and the student's {s}: start the student from a model \
             with the teacher's tokenizer and vocabulary size, or distil with `mode: sft`, \
             which learns from text"
        )));
    }
    if teacher.tokenizer.to_json().map_err(failed)?
        != student.tokenizer.to_json().map_err(failed)?
    {
        return Err(failed(
            "`mode: logits` needs the teacher and the student to share a tokenizer, but theirs \
             differ: give the student the teacher's tokenizer (`tokenizer:` under `models:`), \
             or distil with `mode: sft`, which learns from text",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(mode: SequenceMode, max_seq_length: usize) -> SupervisedJob {
        SupervisedJob {
            init_field: InputField::From,
            examples: vec![
                ("Q: 1+1\nA:".to_string(), " 2".to_string()),
                ("Q: 2+2\nA:".to_string(), " 4".to_string()),
            ],
            mode,
            objective: Objective::CrossEntropy,
            max_seq_length,
            hyper: TrainingSettings {
                learning_rate: 1e-3,
                scheduler: crate::manifest::LrScheduler::Constant,
                warmup_ratio: 0.0,
                weight_decay: 0.0,
                adam_beta1: 0.9,
                adam_beta2: 0.99,
                max_grad_norm: 1.0,
                batch_size: 2,
                accumulation: 1,
                length: crate::stages::TrainingLength::MaxSteps(1),
                logging_steps: 1,
                save_steps: 1,
                gradient_checkpointing: false,
                lora: None,
            },
            seed: 0,
        }
    }

    #[test]
    fn sft_targets_only_the_completion_and_eos() {
        let tokenizer = TextTokenizer::builtin();
        let prompt_len = tokenizer.encode("Q: 1+1\nA:", false).expect("encode").len();
        let completion_len = tokenizer.encode(" 2", false).expect("encode").len();
        let seqs = sequences(
            &job(
                SequenceMode::Pairs {
                    completion_only: true,
                },
                64,
            ),
            &tokenizer,
        )
        .expect("sequences");
        let first = &seqs[0];
        assert_eq!(
            first.ids.len(),
            prompt_len + completion_len + 1,
            "prompt, completion, EOS"
        );
        assert!(
            first.target[..prompt_len].iter().all(|t| !t),
            "no loss on prompt tokens"
        );
        assert!(
            first.target[prompt_len..].iter().all(|t| *t),
            "loss on the completion and EOS"
        );
        let everything = sequences(
            &job(
                SequenceMode::Pairs {
                    completion_only: false,
                },
                64,
            ),
            &tokenizer,
        )
        .expect("sequences");
        assert!(everything[0].target.iter().all(|t| *t));
    }

    #[test]
    fn packing_cuts_the_stream_into_full_windows() {
        let tokenizer = TextTokenizer::builtin();
        let seqs = sequences(&job(SequenceMode::Packed, 4), &tokenizer).expect("sequences");
        assert!(!seqs.is_empty());
        assert!(seqs
            .iter()
            .all(|s| s.ids.len() == 4 && s.target.iter().all(|t| *t)));
    }

    #[test]
    fn logit_distillation_needs_one_vocabulary() {
        let device = Default::default();
        let mut config = crate::manifest::Preset::Tiny.config();
        config.hidden_size = 16;
        config.num_hidden_layers = 1;
        config.num_attention_heads = 2;
        config.num_key_value_heads = 1;
        config.intermediate_size = 32;
        let model = |config: &crate::model::ModelConfig| StageModel::<crate::model::CpuBackend> {
            config: config.clone(),
            model: Transformer::init(config, 0, &device).expect("init"),
            tokenizer: TextTokenizer::builtin(),
        };
        let student = model(&config);
        let mut wider = config.clone();
        wider.vocab_size += 16;
        let teacher = model(&wider);
        assert!(check_same_vocabulary(&student, &student).is_ok());
        let error = check_same_vocabulary(&teacher, &student).expect_err("vocabularies differ");
        insta::assert_snapshot!(error.to_string());
    }

    #[test]
    fn micro_batches_cover_each_epoch_once_in_a_seeded_order() {
        let mut seen: Vec<usize> = (0..5).flat_map(|i| micro_batch(7, 10, 2, i)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(micro_batch(7, 10, 2, 3), micro_batch(7, 10, 2, 3));
        assert_ne!(
            micro_batch(7, 10, 2, 0),
            micro_batch(7, 10, 2, 5),
            "epochs reshuffle"
        );
    }
}
