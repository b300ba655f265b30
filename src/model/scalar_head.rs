//! Model layer (used by execute): the reward model — the decoder as a backbone with a
//! linear scalar head on the final hidden state of each sequence's last real token (what
//! transformers' `Qwen2ForSequenceClassification` with one label computes), and its bytes
//! for the artifact store.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;

use super::artifact::CONFIG_METADATA_KEY;
use super::batch::StepInput;
use super::kernels::KernelBackend;
use super::projection::project;
use super::rng::SeededRng;
use super::safetensors_io::{build_from_files, serialize_f32, to_f32};
use super::transformer::TensorSpec;
use super::{ModelConfig, ModelError, TokenBatch, Transformer};

/// HF name of the head's weight (`[1, hidden]`), as in `*ForSequenceClassification`.
const SCORE_TENSOR: &str = "score.weight";
/// safetensors metadata key holding the sequence length the reward model was trained at.
const MAX_LENGTH_METADATA_KEY: &str = "r1flow_reward_max_length";

/// A backbone and a bias-free linear head to one scalar.
#[derive(Module, Debug)]
pub struct RewardModel<B: Backend> {
    pub backbone: Transformer<B>,
    /// `[hidden, 1]`, no bias (a common offset cancels in every preference comparison).
    pub score: Linear<B>,
}

impl<B: KernelBackend> RewardModel<B> {
    /// The backbone with a fresh head: weights N(0, 0.02) from `seed`, as HF initialises
    /// a classification head.
    pub fn new(
        backbone: Transformer<B>,
        hidden_size: usize,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let mut rng = SeededRng::stream(seed, 0x5C0E);
        let weights: Vec<f32> = (0..hidden_size)
            .map(|_| (rng.next_normal() * 0.02) as f32)
            .collect();
        Self {
            backbone,
            score: head(weights, hidden_size, device),
        }
    }

    /// One score per row of a right-padded batch, read at the row's last valid token:
    /// `[batch]`. Rows without a valid token are an error.
    pub fn scores(
        &self,
        batch: &TokenBatch,
        device: &B::Device,
    ) -> Result<Tensor<B, 1>, ModelError> {
        batch.check(self.backbone.vocab_size)?;
        let mut last = Vec::with_capacity(batch.batch);
        for r in 0..batch.batch {
            let row = &batch.valid[r * batch.seq..(r + 1) * batch.seq];
            let index = row
                .iter()
                .rposition(|v| *v)
                .ok_or_else(|| ModelError::generation("a scored sequence is empty"))?;
            last.push(index);
        }
        let hidden = self
            .backbone
            .forward_hidden(&StepInput::from_batch(batch, device), None); // [batch, seq, hidden]
        let [b, _, h] = hidden.dims();
        let index: Vec<i32> = last
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i as i32, h))
            .collect();
        let index: Tensor<B, 3, Int> = Tensor::from_data(TensorData::new(index, [b, 1, h]), device);
        let pooled = hidden.gather(1, index); // [batch, 1, hidden]
                                              // Through the backend's own product (burn's `Linear::forward` would take the
                                              // `gemm` crate's, whose sums follow the CPU's vector width even in the portable
                                              // profile: reward models trained on AVX-512 and AVX2 machines differed).
        Ok(project(&self.score, pooled).reshape([b]))
    }
}

fn head<B: Backend>(weights: Vec<f32>, hidden_size: usize, device: &B::Device) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weights, [hidden_size, 1]),
            device,
        )),
        bias: None,
    }
}

/// The reward model as one safetensors blob: the backbone's tensors in HF naming, the
/// head as `score.weight` `[1, hidden]`, the architecture and training length in the
/// metadata.
pub fn reward_model_to_bytes<B: Backend>(
    model: &RewardModel<B>,
    config: &ModelConfig,
    max_length: usize,
) -> Result<Vec<u8>, ModelError> {
    let config_json = serde_json::to_string(config)
        .map_err(|e| ModelError::checkpoint(format!("serialising config: {e}")))?;
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_METADATA_KEY.to_string(), config_json),
        (MAX_LENGTH_METADATA_KEY.to_string(), max_length.to_string()),
    ]);
    let mut tensors = model.backbone.hf_tensors()?;
    let weights = model
        .score
        .weight
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::checkpoint(format!("reading the score head: {e:?}")))?;
    tensors.push((
        TensorSpec {
            name: SCORE_TENSOR.to_string(),
            shape: vec![1, config.hidden_size],
        },
        weights,
    ));
    serialize_f32(tensors, meta)
}

/// A reward model read back from [`reward_model_to_bytes`]: its architecture, the model,
/// and the sequence length it was trained at. f32 values round-trip bit for bit.
pub fn reward_model_from_bytes<B: Backend>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<(ModelConfig, RewardModel<B>, usize), ModelError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ModelError::checkpoint(format!("reward model bytes: {e}")))?;
    let metadata = meta.metadata().as_ref();
    let field = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .ok_or_else(|| ModelError::checkpoint(format!("reward model bytes carry no `{key}`")))
    };
    let config: ModelConfig = serde_json::from_str(field(CONFIG_METADATA_KEY)?)
        .map_err(|e| ModelError::checkpoint(format!("reward model config: {e}")))?;
    let max_length: usize = field(MAX_LENGTH_METADATA_KEY)?
        .parse()
        .map_err(|e| ModelError::checkpoint(format!("reward model max length: {e}")))?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::checkpoint(format!("reward model bytes: {e}")))?;
    let backbone = build_from_files(&config, std::slice::from_ref(&file), device)?;
    let view = file
        .tensor(SCORE_TENSOR)
        .map_err(|_| ModelError::checkpoint(format!("tensor `{SCORE_TENSOR}` is missing")))?;
    if view.shape() != [1, config.hidden_size] {
        return Err(ModelError::checkpoint(format!(
            "tensor `{SCORE_TENSOR}` has shape {:?}, expected [1, {}]",
            view.shape(),
            config.hidden_size
        )));
    }
    let weights = to_f32(SCORE_TENSOR, &view)?;
    let model = RewardModel {
        backbone,
        score: head(weights, config.hidden_size, device),
    };
    Ok((config, model, max_length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CpuBackend, Preset};

    fn micro() -> ModelConfig {
        let mut config = Preset::Tiny.config();
        config.hidden_size = 16;
        config.num_hidden_layers = 1;
        config.num_attention_heads = 2;
        config.num_key_value_heads = 1;
        config.intermediate_size = 32;
        config
    }

    #[test]
    fn scores_read_the_last_real_token_and_round_trip_through_bytes() {
        let device = Default::default();
        let config = micro();
        let backbone = Transformer::<CpuBackend>::init(&config, 1, &device).expect("init");
        let model = RewardModel::new(backbone, config.hidden_size, 2, &device);
        let alone = TokenBatch::right_padded(&[vec![5, 6, 7]], 0);
        let padded = TokenBatch::right_padded(&[vec![5, 6, 7], vec![5, 6, 7, 8, 9]], 0);
        let scores = |model: &RewardModel<CpuBackend>, batch: &TokenBatch| -> Vec<f32> {
            model
                .scores(batch, &device)
                .expect("scores")
                .into_data()
                .into_vec()
                .expect("f32")
        };
        let one = scores(&model, &alone);
        let two = scores(&model, &padded);
        assert!(
            (one[0] - two[0]).abs() < 1e-6,
            "padding does not change a score: {one:?} {two:?}"
        );
        assert_ne!(two[0], two[1], "different sequences score differently");

        let bytes = reward_model_to_bytes(&model, &config, 64).expect("bytes");
        let (read_config, read, max_length) =
            reward_model_from_bytes::<CpuBackend>(&bytes, &device).expect("read back");
        assert_eq!((read_config, max_length), (config.clone(), 64));
        let again = scores(&read, &padded);
        assert_eq!(again, two, "bit-identical after a round trip");
        assert_eq!(
            reward_model_to_bytes(&read, &config, 64).expect("bytes"),
            bytes
        );
    }
}
