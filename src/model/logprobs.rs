//! Model layer (used by execute): per-token log-probabilities of given sequences in one
//! forward pass — the quantity GRPO ratios, KL terms and SFT losses are built from.
//!
//! At real vocabulary sizes (49k–152k) the logits of a whole batch (batch × length ×
//! vocab floats) are the largest tensor of a step, so they are never materialised at
//! once beyond [`LOGITS_PER_CHUNK`] values: the decoder runs once, and the LM head, the
//! log-probability of each target (one fused operation, `kernels::target_logprobs`) run
//! over chunks of the batch's next-token positions; a batch that fits in one chunk (every
//! built-in model's does) is one chunk. Training's backward pass through the chunks is
//! `train::chunked_logprobs`.
//!
//! On an autodiff backend the result carries gradients; for rollouts, old-policy and
//! reference passes call it on `model.valid()` (the inner backend) so no graph is kept.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::batch::PromptCompletionBatch;
use super::kernels::{target_logprobs, KernelBackend};
use super::{ModelError, TokenBatch, Transformer};

/// Most logits held at once by a log-prob pass: 2^24 values (64 MiB in f32), about 340
/// positions of a 49k vocabulary, 110 of a 152k one.
pub const LOGITS_PER_CHUNK: usize = 1 << 24;

/// Log-probs and entropies of next tokens, `[batch, seq - 1]` each: column `t` is about
/// the token at `t + 1` given the tokens up to `t`.
#[derive(Debug, Clone)]
pub struct TokenLogprobs<B: Backend> {
    /// `log p(ids[t+1] | ids[..=t])`
    pub logprobs: Tensor<B, 2>,
    /// Entropy of the predicted distribution at `t` (nats), when asked for.
    pub entropy: Option<Tensor<B, 2>>,
    /// 1.0 where both the token `t + 1` and its context are real (not padding).
    pub target_mask: Tensor<B, 2>,
}

/// The ranges of a batch's `positions` next-token positions (rows × columns, flattened
/// row-major) whose logits are computed together for a vocabulary of `vocab`, at most
/// `budget` logits at once (at least one position): one range when they all fit.
pub fn position_chunks(positions: usize, vocab: usize, budget: usize) -> Vec<Range<usize>> {
    let per_chunk = (budget / vocab.max(1)).max(1);
    (0..positions)
        .step_by(per_chunk)
        .map(|start| start..(start + per_chunk).min(positions))
        .collect()
}

/// The next-token targets of `batch`, `[batch, seq - 1]` flattened, and where they are
/// real (token and context not padding).
pub fn next_token_targets(batch: &TokenBatch) -> (Vec<i32>, Vec<f32>) {
    let (b, s) = (batch.batch, batch.seq);
    let mut targets = Vec::with_capacity(b * (s - 1));
    let mut mask = Vec::with_capacity(b * (s - 1));
    for r in 0..b {
        for t in 0..s - 1 {
            targets.push(batch.ids[r * s + t + 1] as i32);
            let real = batch.valid[r * s + t] && batch.valid[r * s + t + 1];
            mask.push(if real { 1.0f32 } else { 0.0 });
        }
    }
    (targets, mask)
}

/// The hidden states that predict next tokens, `[batch × (seq - 1), hidden]` row-major:
/// every position but each row's last.
pub fn predicting_states<B: Backend>(hidden: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    hidden.narrow(1, 0, s - 1).reshape([b * (s - 1), h])
}

/// Log-probs of `targets` (and the entropies, when asked) under the LM head applied to
/// `states`, `[n, hidden]` → `[n]` each.
pub fn head_logprobs<B: KernelBackend>(
    model: &Transformer<B>,
    states: Tensor<B, 2>,
    targets: &[i32],
    with_entropy: bool,
) -> (Tensor<B, 1>, Option<Tensor<B, 1>>) {
    let [n, h] = states.dims();
    let device = states.device();
    let logits = model
        .logits(states.reshape([1, n, h]))
        .reshape([n, model.vocab_size]);
    let targets: Tensor<B, 1, Int> =
        Tensor::from_data(TensorData::new(targets.to_vec(), [n]), &device);
    target_logprobs(logits, targets, with_entropy)
}

/// [`head_logprobs`] over `chunks` of the rows of `states` (each row predicting its entry of
/// `targets`), concatenated: `[n]` each.
pub fn chunked_head_logprobs<B: KernelBackend>(
    model: &Transformer<B>,
    states: Tensor<B, 2>,
    targets: &[i32],
    chunks: &[Range<usize>],
    with_entropy: bool,
) -> (Tensor<B, 1>, Option<Tensor<B, 1>>) {
    let mut logprobs = Vec::with_capacity(chunks.len());
    let mut entropies = Vec::with_capacity(chunks.len());
    for range in chunks {
        let (picked, entropy) = head_logprobs(
            model,
            states.clone().narrow(0, range.start, range.len()),
            &targets[range.clone()],
            with_entropy,
        );
        logprobs.push(picked);
        entropies.extend(entropy);
    }
    (
        Tensor::cat(logprobs, 0),
        with_entropy.then(|| Tensor::cat(entropies, 0)),
    )
}

/// Log-probs of every next token of `batch` (see [`TokenLogprobs`]); no entropy.
pub fn token_logprobs<B: KernelBackend>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<TokenLogprobs<B>, ModelError> {
    logprobs_inner(model, batch, device, false)
}

/// Like [`token_logprobs`], also returning per-position entropies (for RL metrics).
pub fn token_logprobs_with_entropy<B: KernelBackend>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<TokenLogprobs<B>, ModelError> {
    logprobs_inner(model, batch, device, true)
}

fn logprobs_inner<B: KernelBackend>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
    with_entropy: bool,
) -> Result<TokenLogprobs<B>, ModelError> {
    if batch.seq < 2 {
        return Err(ModelError::generation(
            "log-probs need sequences of at least two tokens",
        ));
    }
    let (b, s) = (batch.batch, batch.seq);
    let (targets, mask) = next_token_targets(batch);
    let target_mask = Tensor::from_data(TensorData::new(mask, [b, s - 1]), device);
    let states = predicting_states(model.forward_hidden_batch(batch, device)?);
    let chunks = position_chunks(b * (s - 1), model.vocab_size, LOGITS_PER_CHUNK);
    let (logprobs, entropy) = chunked_head_logprobs(model, states, &targets, &chunks, with_entropy);
    Ok(TokenLogprobs {
        logprobs: logprobs.reshape([b, s - 1]),
        entropy: entropy.map(|e| e.reshape([b, s - 1])),
        target_mask,
    })
}

/// Log-probs of the completion tokens only, `[batch, completion_len]`, aligned with the
/// completion ids (column `j` is completion token `j`), with their mask (and entropies
/// when asked). What GRPO's ratios and KL terms are computed from.
pub fn completion_logprobs<B: KernelBackend>(
    model: &Transformer<B>,
    batch: &PromptCompletionBatch,
    device: &B::Device,
    with_entropy: bool,
) -> Result<TokenLogprobs<B>, ModelError> {
    if batch.completion_len == 0 {
        return Err(ModelError::generation("completions are all empty"));
    }
    let all = logprobs_inner(model, &batch.tokens, device, with_entropy)?;
    // Column t of `all` scores token t + 1, so completion token j is column prompt_len - 1 + j.
    let (start, len) = (batch.prompt_len - 1, batch.completion_len);
    let rows = batch.tokens.batch;
    Ok(TokenLogprobs {
        logprobs: all.logprobs.narrow(1, start, len),
        entropy: all.entropy.map(|e| e.narrow(1, start, len)),
        target_mask: Tensor::from_data(
            TensorData::new(batch.completion_mask.clone(), [rows, len]),
            device,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_position_once_and_fit_the_budget() {
        let chunks_of = |n, vocab| position_chunks(n, vocab, LOGITS_PER_CHUNK);
        assert_eq!(
            chunks_of(5000, 263),
            vec![0..5000],
            "built-in models: one chunk"
        );
        let chunks = chunks_of(1600, 49_152);
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks.first().map(|r| r.start), Some(0));
        assert_eq!(chunks.last().map(|r| r.end), Some(1600));
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        assert!(chunks.iter().all(|r| r.len() * 49_152 <= LOGITS_PER_CHUNK));
        assert_eq!(
            chunks_of(3, usize::MAX).len(),
            3,
            "at least one position each"
        );
    }
}
