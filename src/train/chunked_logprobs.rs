//! Execute (training): the gradient of a loss over per-token log-probs without holding a
//! whole batch's logits — what keeps a GRPO or SFT step at a 49k–152k vocabulary from
//! needing batch × length × vocab floats (twice: the logits and their log-softmax, kept
//! for the backward pass).
//!
//! The loss `L(logp)` is a function of the `[rows, positions]` log-probs. Its gradient is
//! taken in three steps, each holding at most one chunk of logits (`model::logprobs`'s
//! chunks):
//! 1. the decoder runs once with autodiff, up to the final-norm hidden states `H`; the
//!    log-probs are computed from `H`'s values chunk by chunk, without a graph;
//! 2. `L` is built on those log-probs as a leaf and differentiated: `g = ∂L/∂logp`;
//! 3. per chunk, the LM head and log-softmax run again with autodiff on a leaf copy of
//!    the chunk's hidden states, and `Σ g · logp` is differentiated: the head's weight
//!    gradient and `∂L/∂H` for those rows; then `Σ (∂L/∂H) · H` through the decoder gives
//!    the rest. The sum of these gradients is `∂L/∂θ` (the head runs forward twice: about
//!    a tenth more arithmetic at 49k × 576 than one pass).
//!
//! With gradient checkpointing, step 1 runs the decoder without a graph, keeping only each
//! layer's input, and step 3 goes back through the decoder one layer at a time: each layer
//! is run again with autodiff from its kept input and differentiated against the gradient
//! of its output (transformers' `gradient_checkpointing`; activation memory of one layer).
//!
//! In steps 1 and 3 only the positions the loss reads go through the head: the caller
//! says which (`scored`: GRPO's trained completion tokens, SFT's with
//! `completion_only_loss`); the others get a log-prob of 0 and no logits. TRL's
//! `logits_to_keep` does the same for the completion's columns. At a 49k–152k vocabulary the head is a large part of the step
//! (Qwen2.5-0.5B's tied head is 136M of its 494M parameters), and a GSM8K prompt is three
//! times as long as a 32-token completion.
//!
//! A batch whose logits fit in one chunk (every built-in model's) is differentiated in one
//! pass, exactly as it always was, unless checkpointing is asked for.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use super::loss_scale;
use crate::model::batch::StepInput;
use crate::model::kernels::{self, rms_norm};
use crate::model::logprobs::{
    chunked_head_logprobs, head_logprobs, next_token_targets, position_chunks, predicting_states,
    LOGITS_PER_CHUNK,
};
use crate::model::TrainBackend;
use crate::model::{self, ModelError, TokenBatch, Transformer};

/// What [`logprob_gradients`] hands back besides the gradients.
pub(super) struct LogprobPass<B: TrainBackend, T> {
    /// What the loss function returned besides the loss.
    pub value: T,
    /// Per-position entropies (nats), `[rows, seq - 1]`, when asked for; no graph.
    pub entropy: Option<Tensor<B::InnerBackend, 2>>,
}

/// Gradients of `loss(logp)` with respect to `model`'s parameters, where `logp` are the
/// log-probs of `batch`'s next tokens, `[rows, seq - 1]` (see [`model::TokenLogprobs`]).
/// `loss` returns the scalar loss and whatever else its caller wants back.
/// `checkpointing` recomputes each decoder layer in the backward pass. `scored`, when
/// given (`[rows × (seq − 1)]`, row-major), says which positions the loss reads: where it
/// is false `logp` (and the entropy) may be 0 (the chunked and checkpointed passes skip
/// the head there), so the loss must not depend on it.
pub(super) fn logprob_gradients<B, T>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
    with_entropy: bool,
    checkpointing: bool,
    scored: Option<&[bool]>,
    loss: impl FnOnce(Tensor<B, 2>) -> (Tensor<B, 1>, T),
) -> Result<(GradientsParams, LogprobPass<B, T>), ModelError>
where
    B: TrainBackend,
{
    let settings = Settings {
        budget: LOGITS_PER_CHUNK,
        checkpointing,
    };
    gradients_in_chunks(model, batch, device, with_entropy, scored, settings, loss)
}

/// The positions (of `rows × positions`, row-major) that go through the head: those
/// `scored` marks, or all.
struct Scored<B: TrainBackend> {
    /// `None` when every position is scored.
    picked: Option<Picked<B>>,
    total: usize,
}

/// The scored positions' indices, ascending, as a list and as a tensor.
struct Picked<B: TrainBackend> {
    list: Vec<usize>,
    tensor: Tensor<B::InnerBackend, 1, Int>,
}

impl<B: TrainBackend> Scored<B> {
    fn new(scored: Option<&[bool]>, total: usize, device: &B::Device) -> Result<Self, ModelError> {
        let Some(scored) = scored else {
            return Ok(Self {
                picked: None,
                total,
            });
        };
        if scored.len() != total {
            return Err(ModelError::generation(format!(
                "{} scored flags for {total} positions",
                scored.len()
            )));
        }
        let indices: Vec<usize> = (0..total).filter(|&i| scored[i]).collect();
        // Nothing scored (every completion masked out): the loss is 0 whatever the
        // log-probs; they are computed everywhere rather than over no position at all.
        if indices.len() == total || indices.is_empty() {
            return Ok(Self {
                picked: None,
                total,
            });
        }
        let as_ints: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let tensor = Tensor::from_data(TensorData::new(as_ints, [indices.len()]), device);
        Ok(Self {
            picked: Some(Picked {
                list: indices,
                tensor,
            }),
            total,
        })
    }

    /// How many positions go through the head.
    fn len(&self) -> usize {
        self.picked.as_ref().map_or(self.total, |p| p.list.len())
    }

    /// The scored rows of `x` (`[total, …]` → `[len, …]`).
    fn pick<const D: usize>(&self, x: Tensor<B::InnerBackend, D>) -> Tensor<B::InnerBackend, D> {
        match &self.picked {
            Some(picked) => x.select(0, picked.tensor.clone()),
            None => x,
        }
    }

    /// The scored entries of `targets`.
    fn pick_targets(&self, targets: Vec<i32>) -> Vec<i32> {
        match &self.picked {
            Some(picked) => picked.list.iter().map(|&i| targets[i]).collect(),
            None => targets,
        }
    }

    /// `x` (`[len, …]`) back in place among zeros (`[total, …]`).
    fn spread<const D: usize>(&self, x: Tensor<B::InnerBackend, D>) -> Tensor<B::InnerBackend, D> {
        match &self.picked {
            Some(picked) => {
                let mut dims = x.dims();
                dims[0] = self.total;
                Tensor::zeros(dims, &x.device()).select_assign(
                    0,
                    picked.tensor.clone(),
                    x,
                    IndexingUpdateOp::Add,
                )
            }
            None => x,
        }
    }
}

/// How a pass is split: at most `budget` logits at once; the decoder recomputed layer by
/// layer or not.
#[derive(Debug, Clone, Copy)]
struct Settings {
    budget: usize,
    checkpointing: bool,
}

/// The decoder's forward pass, as step 3 goes back through it.
enum Decoder<B: TrainBackend> {
    /// The final-norm hidden states with the whole decoder's graph.
    Graph(Tensor<B, 3>),
    /// Each layer's input (the embeddings first) and the last layer's output, no graph.
    Checkpoints(Vec<Tensor<B::InnerBackend, 3>>),
}

/// [`logprob_gradients`] split as `settings` says.
fn gradients_in_chunks<B, T>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
    with_entropy: bool,
    scored: Option<&[bool]>,
    settings: Settings,
    loss: impl FnOnce(Tensor<B, 2>) -> (Tensor<B, 1>, T),
) -> Result<(GradientsParams, LogprobPass<B, T>), ModelError>
where
    B: TrainBackend,
{
    if batch.seq < 2 {
        return Err(ModelError::generation(
            "log-probs need sequences of at least two tokens",
        ));
    }
    let (rows, positions) = (batch.batch, batch.seq - 1);
    let one_chunk = position_chunks(rows * positions, model.vocab_size, settings.budget).len() == 1;
    if one_chunk && !settings.checkpointing {
        let out = if with_entropy {
            model::token_logprobs_with_entropy(model, batch, device)?
        } else {
            model::token_logprobs(model, batch, device)?
        };
        let (total, value) = loss(out.logprobs);
        let grads = GradientsParams::from_grads(loss_scale::backward(total), model);
        let pass = LogprobPass {
            value,
            entropy: out.entropy.map(|e| e.inner()),
        };
        return Ok((grads, pass));
    }

    // 1. The decoder once (with its graph, or keeping each layer's input); log-probs from
    // its values, chunk by chunk.
    let head = model.valid();
    let (decoder, hidden) = if settings.checkpointing {
        batch.check(model.vocab_size)?;
        let input = StepInput::<B::InnerBackend>::from_batch(batch, device);
        let shared = head.layer_inputs(&input);
        let mut x = head.embed_tokens.forward(input.ids.clone());
        let mut kept = Vec::with_capacity(head.num_layers() + 1);
        for l in 0..head.num_layers() {
            kept.push(x.clone());
            x = head.layer_forward(l, x, &shared);
        }
        kept.push(x.clone());
        (Decoder::Checkpoints(kept), rms_norm(x, &head.norm))
    } else {
        let hidden = model.forward_hidden_batch(batch, device)?; // [rows, seq, hidden]
        let values = hidden.clone().inner();
        (Decoder::Graph(hidden), values)
    };
    let [_, seq, width] = hidden.dims();
    // The scored positions' states, [scored, hidden], and their chunks.
    let scored = Scored::<B>::new(scored, rows * positions, device)?;
    let states = scored.pick(predicting_states(hidden));
    let targets = scored.pick_targets(next_token_targets(batch).0);
    let chunks = position_chunks(scored.len(), model.vocab_size, settings.budget);
    let (logprobs, entropy) =
        chunked_head_logprobs(&head, states.clone(), &targets, &chunks, with_entropy);
    let logprobs = scored.spread(logprobs).reshape([rows, positions]);

    // 2. The loss on the log-probs as a leaf, and its gradient there.
    let leaf = Tensor::<B, 2>::from_inner(logprobs).require_grad();
    let (total, value) = loss(leaf.clone());
    // Scaled here once in f16: every gradient below is `d_logp`'s, and so scaled too.
    let mut grads = loss_scale::backward(total);
    let d_logp = scored.pick(
        leaf.grad_remove(&mut grads)
            .unwrap_or_else(|| Tensor::zeros([rows, positions], device))
            .reshape([rows * positions]),
    );
    let mut accumulator = GradientsAccumulator::<Transformer<B>>::new();
    accumulator.accumulate(model, GradientsParams::from_grads(grads, model));

    // 3. Through the head chunk by chunk, then through the decoder.
    let mut d_states = Vec::with_capacity(chunks.len());
    for range in &chunks {
        let chunk = Tensor::<B, 2>::from_inner(states.clone().narrow(0, range.start, range.len()))
            .require_grad();
        let (picked, _) = head_logprobs(model, chunk.clone(), &targets[range.clone()], false);
        let weight = Tensor::<B, 1>::from_inner(d_logp.clone().narrow(0, range.start, range.len()));
        let mut grads = kernels::sum(picked * weight).backward();
        let hidden_dims = chunk.dims();
        d_states.push(
            chunk
                .grad_remove(&mut grads)
                .unwrap_or_else(|| Tensor::zeros(hidden_dims, device)),
        );
        accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    let d_states = scored.spread(Tensor::cat(d_states, 0));
    let d_hidden = Tensor::cat(
        vec![
            d_states.reshape([rows, positions, width]),
            Tensor::zeros([rows, seq - positions, width], device),
        ],
        1,
    );
    match decoder {
        Decoder::Graph(hidden) => {
            let grads = kernels::sum(hidden * Tensor::from_inner(d_hidden)).backward();
            accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
        }
        Decoder::Checkpoints(mut kept) => {
            let input = StepInput::<B>::from_batch(batch, device);
            let shared = model.layer_inputs(&input);
            // The final norm, then each layer from the top: `∂L/∂(its input)` from
            // `∂L/∂(its output)`.
            let mut back =
                |x: Option<Tensor<B::InnerBackend, 3>>,
                 d_out: Tensor<B::InnerBackend, 3>,
                 forward: &dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>| {
                    let dims = d_out.dims();
                    let leaf = Tensor::<B, 3>::from_inner(x.unwrap_or_else(|| d_out.zeros_like()))
                        .require_grad();
                    let out = forward(leaf.clone());
                    let mut grads = kernels::sum(out * Tensor::from_inner(d_out)).backward();
                    let d_in = leaf
                        .grad_remove(&mut grads)
                        .unwrap_or_else(|| Tensor::zeros(dims, device));
                    accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
                    d_in
                };
            let mut d = back(kept.pop(), d_hidden, &|x| rms_norm(x, &model.norm));
            for l in (0..model.num_layers()).rev() {
                d = back(kept.pop(), d, &|x| model.layer_forward(l, x, &shared));
            }
            let embedded = model.embed_tokens.forward(input.ids.clone());
            let grads = kernels::sum(embedded * Tensor::from_inner(d)).backward();
            accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
        }
    }

    let pass = LogprobPass {
        value,
        entropy: entropy.map(|e| scored.spread(e).reshape([rows, positions])),
    };
    Ok((accumulator.grads(), pass))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CpuBackend, ModelConfig, Preset};
    use burn::backend::Autodiff;
    use burn::module::Module;

    type A = Autodiff<CpuBackend>;

    /// The logits budget of the test: 4 positions of `wide_model`'s vocabulary at once.
    const BUDGET: usize = 4 * 97;

    /// A small model; with [`BUDGET`], a 3 × 6 batch spans four chunks.
    fn wide_model(tied: bool) -> Transformer<A> {
        let config = ModelConfig {
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            intermediate_size: 32,
            vocab_size: 97,
            tie_word_embeddings: tied,
            ..Preset::Tiny.config()
        };
        Transformer::init(&config, 5, &Default::default()).expect("model")
    }

    /// Every parameter's gradient, flattened, in the module's order.
    fn flat(model: &Transformer<A>, grads: &GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'g> {
            grads: &'g GradientsParams,
            out: Vec<Vec<f32>>,
        }
        impl burn::module::ModuleVisitor<A> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<A, D>>) {
                let grad = self
                    .grads
                    .get::<CpuBackend, D>(param.id)
                    .map(|g| g.into_data().to_vec::<f32>().expect("f32"))
                    .unwrap_or_default();
                self.out.push(grad);
            }
        }
        let mut visitor = Collect {
            grads,
            out: Vec::new(),
        };
        model.visit(&mut visitor);
        visitor.out
    }

    /// A tensor's values, in order.
    fn values<const D: usize>(tensor: Tensor<CpuBackend, D>) -> Vec<f32> {
        tensor.into_data().to_vec().expect("f32")
    }

    /// Every parameter's gradient within 1e-4 of the reference's largest value.
    fn assert_same_gradients(got: &[Vec<f32>], reference: &[Vec<f32>], context: &str) {
        assert_eq!(got.len(), reference.len());
        for (ga, gb) in got.iter().zip(reference) {
            assert_eq!(ga.len(), gb.len(), "every parameter has a gradient");
            let scale = gb.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            for (x, y) in ga.iter().zip(gb) {
                assert!(
                    (x - y).abs() <= 1e-4 * scale + 1e-9,
                    "{x} vs {y} (scale {scale}, {context})"
                );
            }
        }
    }

    #[test]
    fn chunked_and_checkpointed_gradients_equal_the_one_pass_gradients() {
        for tied in [true, false] {
            let model = wide_model(tied);
            let device = Default::default();
            let rows = vec![
                vec![5, 9, 90, 7, 31],
                vec![4, 8, 15, 16, 23, 42],
                vec![1, 2],
            ];
            let batch = TokenBatch::right_padded(&rows, 0);
            assert_eq!(position_chunks(3 * 5, model.vocab_size, BUDGET).len(), 4);
            // A loss that is not linear in the log-probs, as GRPO's is not.
            let loss = |logp: Tensor<A, 2>| {
                let l = (logp.clone().exp() * 3.0 - logp.powi_scalar(2)).mean();
                (l.clone(), l.into_scalar())
            };
            let out =
                model::token_logprobs_with_entropy(&model, &batch, &device).expect("one pass");
            let (reference_loss, reference_value) = loss(out.logprobs);
            let reference = flat(
                &model,
                &GradientsParams::from_grads(reference_loss.backward(), &model),
            );
            let expected = values(out.entropy.expect("entropy").inner());
            // Chunked; chunked and checkpointed; checkpointed in one chunk.
            for (budget, checkpointing) in [(BUDGET, false), (BUDGET, true), (1 << 20, true)] {
                let settings = Settings {
                    budget,
                    checkpointing,
                };
                let (grads, pass) =
                    gradients_in_chunks(&model, &batch, &device, true, None, settings, loss)
                        .expect("gradients");
                assert!((pass.value - reference_value).abs() < 1e-5);
                let entropy = values(pass.entropy.expect("entropy"));
                for (a, b) in entropy.iter().zip(&expected) {
                    assert!((a - b).abs() < 1e-4, "entropy {a} vs {b}");
                }
                let context = format!("budget {budget}, checkpointing {checkpointing}");
                assert_same_gradients(&flat(&model, &grads), &reference, &context);
            }
        }
    }

    /// With `scored`, the head sees only the scored positions: a loss that reads only
    /// those gets the same gradients and the same log-probs there as the one-pass
    /// computation over every position, and 0 elsewhere.
    #[test]
    fn scoring_some_positions_gives_the_gradients_of_scoring_all() {
        let model = wide_model(true);
        let device = Default::default();
        let rows = vec![
            vec![5, 9, 90, 7, 31, 2],
            vec![4, 8, 15, 16, 23, 42],
            vec![1, 2, 3],
        ];
        let batch = TokenBatch::right_padded(&rows, 0);
        // The completions: the last two tokens of each row (of its 5 positions).
        let scored: Vec<bool> = [3, 3, 0]
            .iter()
            .flat_map(|&from: &usize| (0..5).map(move |t| t >= from && t < from + 2))
            .collect();
        let mask_values: Vec<f32> = scored.iter().map(|&s| if s { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::<A, 2>::from_data(TensorData::new(mask_values.clone(), [3, 5]), &device);
        let loss = |logp: Tensor<A, 2>| {
            let l = ((logp.clone().exp() * 3.0 - logp.powi_scalar(2)) * mask.clone()).sum();
            (l.clone(), l.into_scalar())
        };
        let out = model::token_logprobs(&model, &batch, &device).expect("one pass");
        let expected_logp = values(out.logprobs.clone().inner());
        let (reference_loss, reference_value) = loss(out.logprobs);
        let reference = flat(
            &model,
            &GradientsParams::from_grads(reference_loss.backward(), &model),
        );
        for (budget, checkpointing) in [(BUDGET, false), (BUDGET, true), (1 << 20, true)] {
            let settings = Settings {
                budget,
                checkpointing,
            };
            let mut seen = Vec::new();
            let (grads, pass) = gradients_in_chunks(
                &model,
                &batch,
                &device,
                true,
                Some(&scored),
                settings,
                |logp: Tensor<A, 2>| {
                    seen = values(logp.clone().inner());
                    loss(logp)
                },
            )
            .expect("gradients");
            assert!((pass.value - reference_value).abs() < 1e-5);
            for (i, (got, want)) in seen.iter().zip(&expected_logp).enumerate() {
                let want = if scored[i] { *want } else { 0.0 };
                assert!((got - want).abs() < 1e-5, "logp at {i}: {got} vs {want}");
            }
            let entropy = values(pass.entropy.expect("entropy"));
            for (i, e) in entropy.iter().enumerate() {
                assert_eq!(*e == 0.0, !scored[i], "entropy at {i}: {e}");
            }
            let context = format!("budget {budget}, checkpointing {checkpointing}");
            assert_same_gradients(&flat(&model, &grads), &reference, &context);
        }
    }
}
