//! Model layer (used by execute): padded token batches on the host, and the tensors a
//! forward pass needs from them (ids, rotary positions, additive attention mask).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::ModelError;

/// A rectangular batch of token ids with a validity mask (false = padding).
///
/// Rows may be padded on either side; positions count valid tokens only, so a
/// left-padded prompt sees the same rotary positions as it would alone.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// Row-major ids, `[batch, seq]`; padding slots hold `pad_id`.
    pub ids: Vec<u32>,
    /// Row-major validity, `[batch, seq]`.
    pub valid: Vec<bool>,
    /// Number of rows.
    pub batch: usize,
    /// Number of columns.
    pub seq: usize,
}

impl TokenBatch {
    /// Pads every row on the left to the longest row (prompts for generation).
    pub fn left_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        Self::padded(rows, pad_id, true)
    }

    /// Pads every row on the right to the longest row (training sequences).
    pub fn right_padded(rows: &[Vec<u32>], pad_id: u32) -> Self {
        Self::padded(rows, pad_id, false)
    }

    fn padded(rows: &[Vec<u32>], pad_id: u32, left: bool) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut valid = Vec::with_capacity(rows.len() * seq);
        for row in rows {
            let pad = seq - row.len();
            if left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                valid.extend(std::iter::repeat_n(false, pad));
            }
            ids.extend_from_slice(row);
            valid.extend(std::iter::repeat_n(true, row.len()));
            if !left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                valid.extend(std::iter::repeat_n(false, pad));
            }
        }
        Self {
            ids,
            valid,
            batch: rows.len(),
            seq,
        }
    }

    /// Rotary position of every slot: the number of valid tokens before it in its row
    /// (padding slots get 0; their outputs are never used).
    pub fn positions(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.ids.len());
        for r in 0..self.batch {
            let mut n = 0;
            for c in 0..self.seq {
                let v = self.valid[r * self.seq + c];
                out.push(if v { n } else { 0 });
                n += usize::from(v);
            }
        }
        out
    }

    pub(crate) fn check(&self, vocab_size: usize) -> Result<(), ModelError> {
        if self.ids.len() != self.batch * self.seq || self.valid.len() != self.ids.len() {
            return Err(ModelError::generation("token batch has inconsistent sizes"));
        }
        if let Some(bad) = self.ids.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::generation(format!(
                "token id {bad} is outside the model's vocabulary of {vocab_size}"
            )));
        }
        Ok(())
    }
}

/// Prompts followed by their completions, laid out for one log-prob pass: prompts
/// left-padded to a common length `prompt_len`, completions right-padded after them to
/// `completion_len`. Column `prompt_len + j` holds completion token `j` of every row.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptCompletionBatch {
    /// `[batch, prompt_len + completion_len]`
    pub tokens: TokenBatch,
    /// Columns of the (left-padded) prompt part.
    pub prompt_len: usize,
    /// Columns of the (right-padded) completion part.
    pub completion_len: usize,
    /// 1.0 where row `r` has a completion token `j`, `[batch, completion_len]` flattened.
    pub completion_mask: Vec<f32>,
}

impl PromptCompletionBatch {
    /// Lays out `prompts[i]` + `completions[i]` (same number of each; prompts non-empty).
    pub fn new(
        prompts: &[Vec<u32>],
        completions: &[Vec<u32>],
        pad_id: u32,
    ) -> Result<Self, ModelError> {
        if prompts.len() != completions.len() {
            return Err(ModelError::generation(format!(
                "{} prompts but {} completions",
                prompts.len(),
                completions.len()
            )));
        }
        if prompts.iter().any(Vec::is_empty) {
            return Err(ModelError::generation(
                "every prompt needs at least one token",
            ));
        }
        let prompt = TokenBatch::left_padded(prompts, pad_id);
        let completion = TokenBatch::right_padded(completions, pad_id);
        let (p, c, b) = (prompt.seq, completion.seq, prompts.len());
        let mut ids = Vec::with_capacity(b * (p + c));
        let mut valid = Vec::with_capacity(b * (p + c));
        for r in 0..b {
            ids.extend_from_slice(&prompt.ids[r * p..(r + 1) * p]);
            ids.extend_from_slice(&completion.ids[r * c..(r + 1) * c]);
            valid.extend_from_slice(&prompt.valid[r * p..(r + 1) * p]);
            valid.extend_from_slice(&completion.valid[r * c..(r + 1) * c]);
        }
        let completion_mask = completion
            .valid
            .iter()
            .map(|&v| if v { 1.0 } else { 0.0 })
            .collect();
        Ok(Self {
            tokens: TokenBatch {
                ids,
                valid,
                batch: b,
                seq: p + c,
            },
            prompt_len: p,
            completion_len: c,
            completion_mask,
        })
    }
}

/// Everything one forward step needs: ids on the device, positions and visibility on
/// the host (the model lays them out for its head counts).
#[derive(Debug, Clone)]
pub struct StepInput<B: Backend> {
    /// `[batch, seq]`
    pub ids: Tensor<B, 2, Int>,
    /// Rotary positions of the new tokens, `[batch, seq]` flattened.
    pub positions: Vec<usize>,
    /// Whether query `q` of row `r` sees key `k`, `[batch, seq, keys]` flattened.
    pub visible: Vec<bool>,
    /// Keys per row (cached + new).
    pub keys: usize,
}

/// Masked scores get this instead of -inf so that rows with no visible key stay finite.
const MASKED: f32 = -1.0e9;

impl<B: Backend> StepInput<B> {
    /// Builds the input for `seq` new tokens per row whose keys are the last `seq` of
    /// `key_valid` (`[batch, keys]`, cached keys first). A query sees a key when the
    /// key is valid and not after it (causal).
    pub fn new(
        ids: &[u32],
        positions: Vec<usize>,
        key_valid: &[bool],
        batch: usize,
        seq: usize,
        device: &B::Device,
    ) -> Self {
        let keys = key_valid.len() / batch.max(1);
        let offset = keys - seq;
        let mut visible = Vec::with_capacity(batch * seq * keys);
        for r in 0..batch {
            for q in 0..seq {
                for k in 0..keys {
                    visible.push(key_valid[r * keys + k] && k <= offset + q);
                }
            }
        }
        let ids: Vec<i32> = ids.iter().map(|&t| t as i32).collect();
        Self {
            ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            positions,
            visible,
            keys,
        }
    }

    /// The input for a whole batch with no cache.
    pub fn from_batch(batch: &TokenBatch, device: &B::Device) -> Self {
        Self::new(
            &batch.ids,
            batch.positions(),
            &batch.valid,
            batch.batch,
            batch.seq,
            device,
        )
    }

    /// The additive attention mask (0 or a large negative), materialised at the full
    /// score shape `[batch, kv_heads, group, seq, keys]` so that adding it is a
    /// same-shape element-wise op (broadcast adds take a slow strided path on CPU).
    pub fn mask(&self, kv_heads: usize, group: usize) -> Tensor<B, 5> {
        let [batch, seq] = self.ids.dims();
        let per_row = (seq * self.keys).max(1);
        let mut mask = Vec::with_capacity(batch * kv_heads * group * per_row);
        for row in self.visible.chunks_exact(per_row) {
            let row: Vec<f32> = row.iter().map(|&v| if v { 0.0 } else { MASKED }).collect();
            for _ in 0..kv_heads * group {
                mask.extend_from_slice(&row);
            }
        }
        let dims = [batch, kv_heads, group, seq, self.keys];
        Tensor::from_data(TensorData::new(mask, dims), &self.ids.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_completion_layout() {
        let b = PromptCompletionBatch::new(&[vec![1, 2, 3], vec![4]], &[vec![5], vec![6, 7]], 0)
            .expect("valid");
        assert_eq!(b.tokens.ids, vec![1, 2, 3, 5, 0, 0, 0, 4, 6, 7]);
        assert_eq!((b.prompt_len, b.completion_len), (3, 2));
        assert_eq!(b.completion_mask, vec![1.0, 0.0, 1.0, 1.0]);
        assert_eq!(b.tokens.positions(), vec![0, 1, 2, 3, 0, 0, 0, 0, 1, 2]);
    }
}
