//! Model layer (used by execute): batched generation with a KV cache — the rollouts of
//! GRPO and rejection sampling, and `r1flow generate`.
//!
//! The prefix is run once; each new token costs one single-position step. Sampling
//! itself happens on the host over the last position's logits, with one seeded stream
//! per row, so a seed fixes the output whatever the batch's other rows do.

use super::batch::StepInput;
use super::kernels::KernelBackend;
use super::rng::SeededRng;
use super::{KvCache, ModelError, TextTokenizer, TokenBatch, Transformer};

/// How to sample completions.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Upper bound on generated tokens per row.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens with this much mass (1 = off).
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Seed of the per-row random streams.
    pub seed: u64,
    /// A row stops once its text contains one of these (kept in the output).
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// Sampled an end-of-sequence token (kept as the last id).
    Eos,
    /// Its text reached a stop string.
    Stop,
    /// Hit `max_new_tokens`.
    Length,
}

/// One generated completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Generated ids (with the EOS id when it ended on one).
    pub token_ids: Vec<u32>,
    /// Decoded text without special tokens, cut just after a stop string.
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
}

impl SamplingParams {
    fn check(&self) -> Result<(), ModelError> {
        if self.temperature.is_nan() || self.temperature < 0.0 || !self.temperature.is_finite() {
            return Err(ModelError::generation(
                "temperature must be finite and >= 0",
            ));
        }
        if self.top_p.is_nan() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return Err(ModelError::generation("top_p must be in (0, 1]"));
        }
        Ok(())
    }
}

/// Samples one token id from `logits` (one row) according to `params`.
pub(crate) fn sample_row(logits: &[f32], params: &SamplingParams, rng: &mut SeededRng) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if params.temperature == 0.0 {
        return argmax();
    }
    let inv_t = 1.0 / params.temperature;
    if params.top_k == 0 && params.top_p >= 1.0 {
        // Plain temperature sampling needs no sort: one pass over the vocabulary.
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weight = |v: f32| (((v - max) * inv_t) as f64).exp();
        let total: f64 = logits.iter().map(|&v| weight(v)).sum();
        if total.is_nan() || total <= 0.0 || !total.is_finite() {
            return argmax();
        }
        let mut u = rng.next_f64() * total;
        for (i, &v) in logits.iter().enumerate() {
            let w = weight(v);
            if u < w {
                return i as u32;
            }
            u -= w;
        }
        return argmax();
    }
    // Candidates sorted by logit, highest first (ties by id, for determinism).
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let k = if params.top_k == 0 {
        logits.len()
    } else {
        params.top_k.min(logits.len())
    };
    let by_logit = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, by_logit);
        order.truncate(k);
    }
    order.sort_unstable_by(by_logit);
    let max = logits[order[0] as usize];
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| (((logits[i as usize] - max) * inv_t) as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    if params.top_p < 1.0 {
        let mut mass = 0.0;
        let mut keep = probs.len();
        for (n, p) in probs.iter().enumerate() {
            mass += p / total;
            if mass >= params.top_p as f64 {
                keep = n + 1;
                break;
            }
        }
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    if total.is_nan() || total <= 0.0 || !total.is_finite() {
        return argmax();
    }
    let mut u = rng.next_f64() * total;
    for (n, p) in probs.iter().enumerate() {
        if u < *p {
            return order[n];
        }
        u -= p;
    }
    order[probs.len() - 1]
}

/// Generates one completion per prompt (token ids, unpadded), all in one batch.
///
/// Rows stop on any of `eos_ids`, on a stop string, or at `max_new_tokens`.
pub fn generate<B: KernelBackend>(
    model: &Transformer<B>,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    device: &B::Device,
) -> Result<Vec<Completion>, ModelError> {
    params.check()?;
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::generation(
            "every prompt needs at least one token",
        ));
    }
    let eos = tokenizer.eos_ids();
    let pad = tokenizer.pad_id();
    let prompt = TokenBatch::left_padded(prompts, pad);
    prompt.check(model.vocab_size)?;
    let b = prompt.batch;

    let mut cache = KvCache::new(model.num_layers(), prompt.seq + params.max_new_tokens);
    let mut key_valid = prompt.valid.clone();
    let mut next_pos: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut rngs: Vec<SeededRng> = (0..b as u64)
        .map(|r| SeededRng::stream(params.seed, r))
        .collect();
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finish: Vec<Option<FinishReason>> = vec![None; b];
    let mut texts: Vec<Option<String>> = vec![None; b];

    let mut input = StepInput::from_batch(&prompt, device);
    let mut step_seq = prompt.seq;
    for _ in 0..params.max_new_tokens {
        let hidden = model.forward_hidden(&input, Some(&mut cache));
        // Only the last position predicts the next token: [batch, 1, hidden].
        let last = hidden.narrow(1, step_seq - 1, 1);
        let logits = model.logits(last).into_data();
        let logits = logits
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| ModelError::generation(format!("reading logits: {e:?}")))?;
        let vocab = model.vocab_size;
        let mut next = vec![pad; b];
        for r in 0..b {
            if finish[r].is_some() {
                continue;
            }
            let tok = sample_row(&logits[r * vocab..(r + 1) * vocab], params, &mut rngs[r]);
            next[r] = tok;
            out[r].push(tok);
            if eos.contains(&tok) {
                finish[r] = Some(FinishReason::Eos);
            } else if !params.stop.is_empty() {
                let text = tokenizer.decode(&out[r], true)?;
                if let Some(end) = first_stop_end(&text, &params.stop) {
                    finish[r] = Some(FinishReason::Stop);
                    texts[r] = Some(text[..end].to_string());
                }
            }
        }
        if finish.iter().all(Option::is_some) {
            break;
        }
        // Finished rows keep feeding padding; their outputs are ignored.
        key_valid = append_column(&key_valid, b, &vec![true; b]);
        let positions: Vec<usize> = next_pos.clone();
        for p in &mut next_pos {
            *p += 1;
        }
        input = StepInput::new(&next, positions, &key_valid, b, 1, device);
        step_seq = 1;
    }

    let mut completions = Vec::with_capacity(b);
    for r in 0..b {
        let text = match texts[r].take() {
            Some(t) => t,
            None => tokenizer.decode(&out[r], true)?,
        };
        completions.push(Completion {
            token_ids: std::mem::take(&mut out[r]),
            text,
            finish: finish[r].unwrap_or(FinishReason::Length),
        });
    }
    Ok(completions)
}

fn first_stop_end(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|i| i + s.len()))
        .min()
}

fn append_column(valid: &[bool], batch: usize, column: &[bool]) -> Vec<bool> {
    let keys = valid.len() / batch;
    let mut out = Vec::with_capacity(valid.len() + batch);
    for r in 0..batch {
        out.extend_from_slice(&valid[r * keys..(r + 1) * keys]);
        out.push(column[r]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_first_maximum() {
        let p = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        let mut rng = SeededRng::new(1);
        assert_eq!(sample_row(&[0.1, 2.0, 2.0, -1.0], &p, &mut rng), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_head() {
        let logits = [0.0, 5.0, 1.0, 4.9];
        let mut rng = SeededRng::new(7);
        let k1 = SamplingParams {
            top_k: 1,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(sample_row(&logits, &k1, &mut rng), 1);
        }
        let p = SamplingParams {
            top_p: 0.9,
            ..Default::default()
        };
        for _ in 0..50 {
            let t = sample_row(&logits, &p, &mut rng);
            assert!(t == 1 || t == 3, "sampled {t}");
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut rng = SeededRng::new(3);
        let p = SamplingParams::default();
        let ones = (0..4000)
            .filter(|_| sample_row(&logits, &p, &mut rng) == 1)
            .count();
        assert!((2800..3200).contains(&ones), "{ones}");
    }

    #[test]
    fn stop_strings_cut_after_the_earliest() {
        let stops = vec!["</answer>".to_string(), "x".to_string()];
        assert_eq!(first_stop_end("a</answer>bx", &stops), Some(10));
    }
}
