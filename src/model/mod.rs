//! Model layer (used by execute): the Qwen2/Llama-style decoder on burn, its tokenizer,
//! sampling, log-probs and HuggingFace checkpoints. The only module that names burn.
//!
//! Code map: `config` (architecture, presets) · `rope`, `attention`, `mlp`, `block`,
//! `transformer` (one model part per file) · `batch` (padded token batches and masks) ·
//! `sampling` (batched KV-cache generation) · `logprobs` (per-token log-probs) ·
//! `scalar_head` (the reward model: backbone + scalar head) ·
//! `tokenizer` (tokenizer.json, the built-in byte tokenizer) · `checkpoint` (HF layout in
//! and out, artifact bytes) · `backend` (run-time backend choice) · `cli` (generate/export).

pub mod attention;
pub mod backend;
pub mod batch;
pub mod block;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod error;
pub mod logprobs;
pub mod mlp;
mod projection;
pub(crate) mod rng;
pub mod rope;
pub mod sampling;
pub mod scalar_head;
pub mod tokenizer;
pub mod transformer;

pub use backend::{BackendKind, BackendTask, CpuBackend};
pub use batch::{PromptCompletionBatch, TokenBatch};
pub use checkpoint::{
    from_bytes, load_hf_dir, save_hf_dir, to_bytes, LoadedModel, GENERATION_CONFIG_FILE,
};
pub use config::{ModelConfig, ModelOverrides, ModelPreset};
pub use error::{ModelError, ModelErrorKind};
pub use logprobs::{
    completion_logprobs, token_logprobs, token_logprobs_with_entropy, TokenLogprobs,
};
pub use sampling::{generate, Completion, FinishReason, SamplingParams};
pub use scalar_head::{reward_model_from_bytes, reward_model_to_bytes, RewardModel};
pub use tokenizer::TextTokenizer;
pub use transformer::{KvCache, Transformer};

/// burn re-exports the rest of the crate needs for training code (optimizer, autodiff),
/// so that callers do not name burn themselves.
pub mod burn_prelude {
    pub use burn::module::{AutodiffModule, Module};
    pub use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    pub use burn::tensor::backend::{AutodiffBackend, Backend};
    pub use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
}
