//! Check (models): the architecture of a Qwen2/Llama-style decoder — what `check` reads
//! of a model to bound lengths by its context, and what the model layer builds.
//!
//! Field names follow HuggingFace's `config.json` for Qwen2/Llama so that a value can be
//! copied from a checkpoint into a manifest and back without renaming.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ArchitectureError;

/// Architecture of a Qwen2/Llama-style decoder (RMSNorm, rotary positions,
/// grouped-query attention, SwiGLU MLP). Names match HuggingFace `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width of the residual stream (embedding dimension).
    pub hidden_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads; `hidden_size` must be divisible by it.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); must divide
    /// `num_attention_heads`. Equal to it for plain multi-head attention.
    pub num_key_value_heads: usize,
    /// Inner width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Base of the rotary position embedding frequencies.
    pub rope_theta: f64,
    /// Share the token embedding matrix with the output (LM head) projection.
    pub tie_word_embeddings: bool,
    /// Number of token ids the model can read and predict; at least the tokenizer's size.
    pub vocab_size: usize,
    /// Epsilon added to the mean square in RMSNorm.
    pub rms_norm_eps: f64,
    /// Longest sequence (prompt + completion) the rotary tables are built for.
    pub max_position_embeddings: usize,
    /// Biases on the query, key and value projections (Qwen2 has them, Llama does not).
    pub attention_bias: bool,
}

/// Changes to a preset's architecture; every field is optional and named as in
/// [`ModelConfig`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelOverrides {
    /// Width of the residual stream (embedding dimension).
    pub hidden_size: Option<usize>,
    /// Number of decoder layers.
    pub num_hidden_layers: Option<usize>,
    /// Number of query heads.
    pub num_attention_heads: Option<usize>,
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: Option<usize>,
    /// Inner width of the SwiGLU MLP.
    pub intermediate_size: Option<usize>,
    /// Base of the rotary position embedding frequencies.
    pub rope_theta: Option<f64>,
    /// Share the token embedding matrix with the LM head.
    pub tie_word_embeddings: Option<bool>,
    /// Number of token ids.
    pub vocab_size: Option<usize>,
    /// Epsilon of RMSNorm.
    pub rms_norm_eps: Option<f64>,
    /// Longest sequence the model is meant for.
    pub max_position_embeddings: Option<usize>,
    /// Biases on the query, key and value projections.
    pub attention_bias: Option<bool>,
}

impl ModelConfig {
    /// This configuration with `overrides` applied, validated.
    pub fn with_overrides(&self, o: &ModelOverrides) -> Result<ModelConfig, ArchitectureError> {
        let c = ModelConfig {
            hidden_size: o.hidden_size.unwrap_or(self.hidden_size),
            num_hidden_layers: o.num_hidden_layers.unwrap_or(self.num_hidden_layers),
            num_attention_heads: o.num_attention_heads.unwrap_or(self.num_attention_heads),
            num_key_value_heads: o.num_key_value_heads.unwrap_or(self.num_key_value_heads),
            intermediate_size: o.intermediate_size.unwrap_or(self.intermediate_size),
            rope_theta: o.rope_theta.unwrap_or(self.rope_theta),
            tie_word_embeddings: o.tie_word_embeddings.unwrap_or(self.tie_word_embeddings),
            vocab_size: o.vocab_size.unwrap_or(self.vocab_size),
            rms_norm_eps: o.rms_norm_eps.unwrap_or(self.rms_norm_eps),
            max_position_embeddings: o
                .max_position_embeddings
                .unwrap_or(self.max_position_embeddings),
            attention_bias: o.attention_bias.unwrap_or(self.attention_bias),
        };
        c.validate()?;
        Ok(c)
    }
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Number of trainable parameters this configuration implies.
    pub fn num_params(&self) -> usize {
        let h = self.hidden_size;
        let kv = self.num_key_value_heads * self.head_dim();
        let attn = h * h * 2 + h * kv * 2 + if self.attention_bias { h + 2 * kv } else { 0 };
        let mlp = 3 * h * self.intermediate_size;
        let layer = attn + mlp + 2 * h;
        let embed = self.vocab_size * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + self.num_hidden_layers * layer + h
    }

    /// Checks the shape constraints the model code relies on, and the sanity bounds of
    /// [`DIMENSION_LIMITS`].
    pub fn validate(&self) -> Result<(), ArchitectureError> {
        let fail = |m: String| Err(ArchitectureError(m));
        if self.hidden_size == 0 || self.num_hidden_layers == 0 || self.vocab_size == 0 {
            return fail("hidden_size, num_hidden_layers and vocab_size must be positive".into());
        }
        if let Some((field, value, limit)) = self.beyond_limits().first() {
            return fail(format!(
                "{field} {value} is more than {limit}{BEYOND_LIMIT}"
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return fail(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return fail(format!(
                "head dimension {} must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        if self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return fail(format!(
                "num_attention_heads {} is not divisible by num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.intermediate_size == 0 || self.max_position_embeddings == 0 {
            return fail("intermediate_size and max_position_embeddings must be positive".into());
        }
        if !positive(self.rope_theta) || !positive(self.rms_norm_eps) {
            return fail("rope_theta and rms_norm_eps must be positive".into());
        }
        Ok(())
    }
}

/// The largest value of each dimension r1flow builds a model with. Each is several times
/// the largest published decoder's (Llama 3.1 405B: 126 layers, width 16384, MLP 53248;
/// vocabularies reach about 256k, contexts 10M), so no real checkpoint meets them, while
/// a typo or a hostile config (`num_hidden_layers: 100000000`) is refused before anything
/// is allocated. Together they bound a parameter count well inside `usize`.
pub const DIMENSION_LIMITS: [(&str, usize); 6] = [
    ("hidden_size", 65_536),
    ("num_hidden_layers", 1_024),
    ("num_attention_heads", 1_024),
    ("intermediate_size", 262_144),
    ("vocab_size", 4_194_304),
    ("max_position_embeddings", 16_777_216),
];

/// How the error of a dimension past its limit ends, so that `check` can tell it from an
/// unsupported architecture and say what the bound is for.
pub const BEYOND_LIMIT: &str = ", the most r1flow builds";

/// The limit of `field` in [`DIMENSION_LIMITS`], if it has one.
pub fn dimension_limit(field: &str) -> Option<usize> {
    DIMENSION_LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|&(_, limit)| limit)
}

impl ModelConfig {
    /// Each dimension above its limit, as `(field, value, limit)`.
    pub fn beyond_limits(&self) -> Vec<(&'static str, usize, usize)> {
        let values = [
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.vocab_size,
            self.max_position_embeddings,
        ];
        DIMENSION_LIMITS
            .iter()
            .zip(values)
            .filter(|((_, limit), value)| value > limit)
            .map(|(&(field, limit), value)| (field, value, limit))
            .collect()
    }

    /// Parameters this configuration implies, computed without overflow whatever the
    /// dimensions (`num_params` assumes dimensions within their limits).
    pub fn param_count(&self) -> u128 {
        let [h, layers, heads, kv_heads, mlp, vocab] = [
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.num_key_value_heads,
            self.intermediate_size,
            self.vocab_size,
        ]
        .map(|x| x as u128);
        let kv = kv_heads * (h / heads.max(1));
        let bias = if self.attention_bias { h + 2 * kv } else { 0 };
        let layer = 2 * h * h + 2 * h * kv + bias + 3 * h * mlp + 2 * h;
        let embed = vocab * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + layers * layer + h
    }
}

/// Bytes a parameter takes as an f32 weight.
pub const WEIGHT_BYTES: u128 = 4;
/// Bytes a parameter takes in training with AdamW in f32: weight, gradient and the two
/// moments (activations come on top).
pub const TRAINING_BYTES: u128 = 16;

/// True for finite numbers above zero (false for NaN).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Preset;

    #[test]
    fn presets_have_the_advertised_sizes() {
        let tiny = Preset::Tiny.config().num_params();
        let small = Preset::Small.config().num_params();
        assert!((700_000..1_400_000).contains(&tiny), "tiny has {tiny}");
        assert!(
            (7_000_000..13_000_000).contains(&small),
            "small has {small}"
        );
        Preset::Tiny.config().validate().expect("tiny is valid");
        Preset::Small.config().validate().expect("small is valid");
    }

    #[test]
    fn overrides_change_only_what_they_name() {
        let base = Preset::Tiny.config();
        let o = ModelOverrides {
            num_hidden_layers: Some(2),
            ..Default::default()
        };
        let c = base.with_overrides(&o).expect("valid");
        assert_eq!(c.num_hidden_layers, 2);
        assert_eq!(c.hidden_size, base.hidden_size);
        let bad = ModelOverrides {
            num_attention_heads: Some(3),
            ..Default::default()
        };
        assert!(base.with_overrides(&bad).is_err());
    }

    #[test]
    fn bad_head_split_is_rejected() {
        let mut c = Preset::Tiny.config();
        c.num_key_value_heads = 3;
        assert!(c.validate().is_err());
    }
}
