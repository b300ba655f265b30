//! What the model-layer test binaries share (`mod common;` in each): the tiny
//! architecture they build their models with.

use r1flow::model::ModelConfig;

/// Two decoder layers 32 wide, grouped-query attention (4 heads over 2 key/value heads),
/// the byte tokenizer's vocabulary: a model the CPU runs in milliseconds.
pub(crate) fn config(tied: bool, bias: bool) -> ModelConfig {
    ModelConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 64,
        rope_theta: 10_000.0,
        tie_word_embeddings: tied,
        vocab_size: 263,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 128,
        attention_bias: bias,
    }
}
