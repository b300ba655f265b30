//! Model layer (used by execute): per-token log-probabilities of given sequences in one
//! forward pass — the quantity GRPO ratios, KL terms and SFT losses are built from.
//!
//! On an autodiff backend the result carries gradients; for rollouts, old-policy and
//! reference passes call it on `model.valid()` (the inner backend) so no graph is kept.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::batch::PromptCompletionBatch;
use super::{ModelError, TokenBatch, Transformer};

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

/// Log-probs of every next token of `batch` (see [`TokenLogprobs`]); no entropy.
pub fn token_logprobs<B: Backend>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<TokenLogprobs<B>, ModelError> {
    logprobs_inner(model, batch, device, false)
}

/// Like [`token_logprobs`], also returning per-position entropies (for RL metrics).
pub fn token_logprobs_with_entropy<B: Backend>(
    model: &Transformer<B>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<TokenLogprobs<B>, ModelError> {
    logprobs_inner(model, batch, device, true)
}

fn logprobs_inner<B: Backend>(
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
    let logits = model.forward(batch, device)?; // [batch, seq, vocab]
    let logp = log_softmax(logits.narrow(1, 0, s - 1), 2); // [batch, seq-1, vocab]
    let mut targets = Vec::with_capacity(b * (s - 1));
    let mut mask = Vec::with_capacity(b * (s - 1));
    for r in 0..b {
        for t in 0..s - 1 {
            targets.push(batch.ids[r * s + t + 1] as i32);
            let real = batch.valid[r * s + t] && batch.valid[r * s + t + 1];
            mask.push(if real { 1.0f32 } else { 0.0 });
        }
    }
    let targets: Tensor<B, 3, Int> =
        Tensor::from_data(TensorData::new(targets, [b, s - 1, 1]), device);
    let logprobs = logp.clone().gather(2, targets).reshape([b, s - 1]);
    let entropy = with_entropy.then(|| {
        (logp.clone().exp() * logp)
            .sum_dim(2)
            .reshape([b, s - 1])
            .neg()
    });
    Ok(TokenLogprobs {
        logprobs,
        entropy,
        target_mask: Tensor::from_data(TensorData::new(mask, [b, s - 1]), device),
    })
}

/// Log-probs of the completion tokens only, `[batch, completion_len]`, aligned with the
/// completion ids (column `j` is completion token `j`), with their mask (and entropies
/// when asked). What GRPO's ratios and KL terms are computed from.
pub fn completion_logprobs<B: Backend>(
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
