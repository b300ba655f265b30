//! Model layer (used by execute): the Qwen2/Llama-style decoder on burn, its tokenizer,
//! sampling, log-probs and HuggingFace checkpoints. The only module that names burn.
//!
//! Code map: the architecture (`ModelConfig`, presets) comes from `r1flow_core::architecture`
//! · `rope`, `attention`, `mlp`, `block`,
//! `transformer` (one model part per file) · `batch` (padded token batches and masks) ·
//! `sampling` (batched KV-cache generation) · `logprobs` (per-token log-probs) ·
//! `scalar_head` (the reward model: backbone + scalar head) · `lora` (a LoRA adapter on a
//! projection), `lora_transformer` (adding, leaving out and merging adapters) ·
//! `tokenizer` (tokenizer.json, the built-in byte tokenizer) · `hf_import`, `hf_export`
//! (HF checkpoint directories in and out) · `peft_adapter` (LoRA adapters as PEFT's
//! files) · `artifact` (a model as stored bytes) ·
//! `safetensors_io` (tensors to and from safetensors) · `kernels` (fused operations with
//! their own backward passes, and the CPU kernels behind them) · `backend` (run-time backend
//! choice) · `cli` (generate/export).

pub mod artifact;
pub mod attention;
pub mod backend;
pub mod batch;
pub mod block;
pub mod cli;
pub mod error;
pub mod hf_export;
pub mod hf_import;
pub mod kernels;
pub mod logprobs;
pub mod lora;
mod lora_transformer;
pub mod mlp;
pub mod peft_adapter;
mod projection;
pub(crate) mod rng;
pub mod rope;
mod safetensors_io;
pub mod sampling;
pub mod scalar_head;
pub mod tokenizer;
pub mod transformer;

pub use crate::architecture::{ModelConfig, ModelOverrides};
pub use crate::manifest::Preset;
pub use artifact::{from_bytes, into_bytes, to_bytes};
pub use backend::{capabilities, trains_in, BackendKind, BackendTask, CpuBackend};
pub use batch::{PromptCompletionBatch, TokenBatch};
pub use error::{ModelError, ModelErrorKind};
pub use hf_export::save_hf_dir;
pub use hf_import::{load_hf_dir, LoadedModel, GENERATION_CONFIG_FILE};
pub use kernels::{KernelBackend, TrainBackend};
pub use logprobs::{
    completion_logprobs, token_logprobs, token_logprobs_with_entropy, TokenLogprobs,
};
pub use lora::{Lora, LoraConfig, LoraTarget};
pub use lora_transformer::LoraAdapters;
pub use peft_adapter::{
    load_peft_adapter, peft_adapter_files, read_peft_config, save_peft_adapter, PeftAdapter,
    ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE,
};
pub use sampling::{generate, Completion, FinishReason, SamplingParams};
pub use scalar_head::{reward_model_from_bytes, reward_model_to_bytes, RewardModel};
pub use tokenizer::TextTokenizer;
pub use transformer::{KvCache, Transformer};

/// burn re-exports the rest of the crate needs for training code (optimizer, autodiff),
/// so that callers do not name burn themselves.
pub mod burn_prelude {
    pub use super::kernels::{KernelBackend, TrainBackend};
    pub use burn::module::{AutodiffModule, Module};
    pub use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    pub use burn::tensor::backend::{AutodiffBackend, Backend};
    pub use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
}
