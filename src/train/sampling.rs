//! Execute (generation): `n` completions for each prompt of a dataset, in chunks on the
//! inner backend, seeded per chunk — what `eval` and `rejection_sampling` judge.

use super::models::failed;
use crate::exec::{StageContext, StageError};
use crate::model::KernelBackend;
use crate::model::{self, Completion, SamplingParams, TextTokenizer, Transformer};
use crate::records::{Answer, DatasetRecord};
use crate::rewards::Sample;

/// Rows generated at once.
const GENERATION_ROWS: usize = 64;

/// One completion of one prompt.
pub struct PromptSample {
    /// Index of the record.
    pub prompt: usize,
    /// Index of the sample among the record's `n`.
    pub sample: usize,
    pub completion: Completion,
    /// What rewards score: the record's pre-filled response start and the generated text.
    pub response: String,
}

/// Samples `n` completions for every record (prompts cut from the left to
/// `max_prompt_length` tokens). Stops with `Cancelled` between chunks on Ctrl-C.
#[allow(clippy::too_many_arguments)]
pub fn sample_records<B: KernelBackend>(
    context: &mut StageContext<'_>,
    model: &Transformer<B>,
    tokenizer: &TextTokenizer,
    records: &[DatasetRecord],
    n: usize,
    max_prompt_length: usize,
    sampling: &SamplingParams,
    device: &B::Device,
) -> Result<Vec<PromptSample>, StageError> {
    let mut rows: Vec<(usize, usize, Vec<u32>)> = Vec::new();
    for (p, record) in records.iter().enumerate() {
        let mut ids = tokenizer.encode(&record.prompt, false).map_err(failed)?;
        if ids.len() > max_prompt_length {
            ids.drain(..ids.len() - max_prompt_length);
        }
        for s in 0..n {
            rows.push((p, s, ids.clone()));
        }
    }
    let chunks: Vec<&[(usize, usize, Vec<u32>)]> = rows.chunks(GENERATION_ROWS).collect();
    let mut out = Vec::with_capacity(rows.len());
    for (c, chunk) in chunks.iter().enumerate() {
        if context.cancelled() {
            // Sampling is cheap to redo; nothing partial is kept.
            return Err(StageError::Cancelled { step: 0 });
        }
        let prompts: Vec<Vec<u32>> = chunk.iter().map(|(_, _, ids)| ids.clone()).collect();
        let params = SamplingParams {
            seed: sampling.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ..sampling.clone()
        };
        let completions =
            model::generate(model, tokenizer, &prompts, &params, device).map_err(failed)?;
        for ((p, s, _), completion) in chunk.iter().zip(completions) {
            let response = format!("{}{}", records[*p].response_prefix, completion.text);
            out.push(PromptSample {
                prompt: *p,
                sample: *s,
                completion,
                response,
            });
        }
        context.progress(
            (c + 1) as u64,
            chunks.len() as u64,
            &format!("{} of {} samples", out.len(), rows.len()),
        );
    }
    Ok(out)
}

/// The reference answers of `records`, in order, as the rewards read them.
pub(super) fn answers_of(records: &[DatasetRecord]) -> Vec<Option<Answer>> {
    records
        .iter()
        .map(|r| r.answer.clone().map(Answer::Text))
        .collect()
}

/// `generated` as the rewards score it: each sample's whole response (pre-filled start
/// included) with its prompt, its prompt's reference answer (`answers`, from
/// [`answers_of`]) and its completion's token count.
pub(super) fn reward_samples<'s>(
    records: &'s [DatasetRecord],
    answers: &'s [Option<Answer>],
    generated: &'s [PromptSample],
) -> Vec<Sample<'s>> {
    generated
        .iter()
        .map(|g| {
            Sample::new(
                &records[g.prompt].prompt,
                &g.response,
                answers[g.prompt].as_ref(),
            )
            .with_tokens(g.completion.token_ids.len())
            .with_response_prefix(&records[g.prompt].response_prefix)
            .with_tests(
                records[g.prompt].tests.as_ref(),
                records[g.prompt].entry_point.as_deref(),
            )
        })
        .collect()
}
