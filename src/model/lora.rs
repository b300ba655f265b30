//! Model layer (used by execute): a LoRA adapter on one projection — the low-rank update
//! `scale · (x · A) · B` added to `x · W + b`, with PEFT's names for the projections it
//! can sit on and PEFT's default initialisation (A Kaiming-uniform, B zero).
//!
//! r1flow stores a `Linear` weight as `[d_in, d_out]` (`x · W`), so A is `[d_in, r]` and
//! B `[r, d_out]`: the transposes of PEFT's `lora_A.weight` `[r, in]` and `lora_B.weight`
//! `[out, r]` (`peft_adapter` converts). Both products run through the backend's own
//! matrix product, so the portable profile's ordered arithmetic holds for adapters too.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::kernels::{matmul, KernelBackend};
use super::rng::SeededRng;
use super::ModelError;
use crate::manifest::LORA_TARGET_MODULES;

/// The largest rank accepted, from a user or an adapter file (the bound `check` applies to
/// `lora:`), and PEFT's shorthand for every linear layer but the output head.
pub use crate::manifest::{LORA_ALL_LINEAR as ALL_LINEAR, MAX_LORA_RANK};

/// The shape of a set of adapters, in PEFT's terms: `r`, `lora_alpha`, `lora_dropout`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank of the update.
    pub r: usize,
    /// `lora_alpha`: the update is scaled by `alpha / r`.
    pub alpha: f64,
    /// `lora_dropout`: recorded for the adapter file; r1flow's forward applies none, so
    /// [`crate::model::Transformer::with_lora`] accepts only 0.
    pub dropout: f64,
}

impl LoraConfig {
    /// `alpha / r`, what the update is multiplied by (PEFT without rsLoRA).
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// A rank in `1..=MAX_LORA_RANK`, a finite alpha and a dropout in `[0, 1)`.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.r == 0 || self.r > MAX_LORA_RANK {
            return Err(ModelError::adapter(format!(
                "LoRA rank r = {} is out of range (1..={MAX_LORA_RANK})",
                self.r
            )));
        }
        if !self.alpha.is_finite() {
            return Err(ModelError::adapter(format!(
                "lora_alpha = {} is not a finite number",
                self.alpha
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::adapter(format!(
                "lora_dropout = {} is out of range [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// A projection an adapter can sit on, by PEFT's module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoraTarget {
    /// `self_attn.q_proj`
    QProj,
    /// `self_attn.k_proj`
    KProj,
    /// `self_attn.v_proj`
    VProj,
    /// `self_attn.o_proj`
    OProj,
    /// `mlp.gate_proj`
    GateProj,
    /// `mlp.up_proj`
    UpProj,
    /// `mlp.down_proj`
    DownProj,
}

impl LoraTarget {
    /// The seven projections of a decoder layer, in the order r1flow visits them.
    pub const ALL: [LoraTarget; 7] = [
        Self::QProj,
        Self::KProj,
        Self::VProj,
        Self::OProj,
        Self::GateProj,
        Self::UpProj,
        Self::DownProj,
    ];

    /// PEFT's (and transformers') module name, `q_proj` …, as `lora:`'s `target_modules`
    /// lists them (in the order of `ALL`).
    pub fn peft_name(self) -> &'static str {
        LORA_TARGET_MODULES[self as usize]
    }

    /// The module's path inside a decoder layer, `self_attn.q_proj` ….
    pub fn layer_path(self) -> &'static str {
        match self {
            Self::QProj => "self_attn.q_proj",
            Self::KProj => "self_attn.k_proj",
            Self::VProj => "self_attn.v_proj",
            Self::OProj => "self_attn.o_proj",
            Self::GateProj => "mlp.gate_proj",
            Self::UpProj => "mlp.up_proj",
            Self::DownProj => "mlp.down_proj",
        }
    }

    /// The target a PEFT module name means.
    pub fn from_peft_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.peft_name() == name)
    }

    /// PEFT's `target_modules` as a sorted set without repeats: the names above, or
    /// `all-linear` for all seven. An unknown name is an error naming it.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Self>, ModelError> {
        let mut targets = Vec::new();
        for name in names {
            let name = name.as_ref();
            if name == ALL_LINEAR {
                targets.extend(Self::ALL);
                continue;
            }
            match Self::from_peft_name(name) {
                Some(t) => targets.push(t),
                None => {
                    let known: Vec<&str> = Self::ALL.iter().map(|t| t.peft_name()).collect();
                    return Err(ModelError::adapter(format!(
                        "unknown LoRA target module `{}` (known: {}, or {ALL_LINEAR})",
                        excerpt(name),
                        known.join(", ")
                    )));
                }
            }
        }
        if targets.is_empty() {
            return Err(ModelError::adapter(
                "no LoRA target modules: name at least one (or all-linear)",
            ));
        }
        targets.sort();
        targets.dedup();
        Ok(targets)
    }
}

/// At most 80 characters of a name from a file, for an error message.
pub(super) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The low-rank update of one projection: `scale · (x · A) · B`.
#[derive(Module, Debug)]
pub struct Lora<B: Backend> {
    /// `[d_in, r]` (PEFT's `lora_A.weight` transposed).
    pub a: Param<Tensor<B, 2>>,
    /// `[r, d_out]` (PEFT's `lora_B.weight` transposed).
    pub b: Param<Tensor<B, 2>>,
    /// `lora_alpha`; the update is scaled by `alpha / r`.
    pub alpha: f64,
}

impl<B: Backend> Lora<B> {
    /// PEFT's default initialisation for a `d_in → d_out` projection: A as PyTorch's
    /// `kaiming_uniform_(a = √5)` initialises an `nn.Linear(d_in, r)` — uniform in
    /// `±1/√d_in` — drawn from `rng`, and B zero, so a fresh adapter changes nothing.
    pub(super) fn init(
        d_in: usize,
        d_out: usize,
        config: &LoraConfig,
        rng: &mut SeededRng,
        device: &B::Device,
    ) -> Self {
        let r = config.r;
        let bound = 1.0 / (d_in.max(1) as f64).sqrt();
        let a: Vec<f32> = (0..d_in * r)
            .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
            .collect();
        Self::from_values(
            (a, vec![0.0; r * d_out]),
            [d_in, r, d_out],
            config.alpha,
            device,
        )
    }

    /// An adapter from its values in r1flow's layout: A `[d_in, r]`, B `[r, d_out]`,
    /// both row-major; `dims` is `[d_in, r, d_out]`. Both are trainable parameters.
    pub(super) fn from_values(
        (a, b): (Vec<f32>, Vec<f32>),
        [d_in, r, d_out]: [usize; 3],
        alpha: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(a, [d_in, r]), device)),
            b: Param::from_tensor(Tensor::from_data(TensorData::new(b, [r, d_out]), device)),
            alpha,
        }
    }

    /// The rank, `r`.
    pub fn rank(&self) -> usize {
        self.a.dims()[1]
    }

    /// `alpha / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank().max(1) as f64
    }

    /// Trainable numbers in this adapter: `r · (d_in + d_out)`.
    pub fn num_values(&self) -> usize {
        let [d_in, r] = self.a.dims();
        r * (d_in + self.b.dims()[1])
    }
}

impl<B: KernelBackend> Lora<B> {
    /// `[rows, d_in]` → `[rows, d_out]`: `(x · A) · scale · B`. PEFT applies the scale
    /// last, to the `[rows, d_out]` product; here it goes on the rank-wide `[rows, r]` one
    /// (and not at all when it is 1), which saves a pass over every projection's output
    /// in both directions. For a power-of-two scale (`alpha` = `r`, `2r`, …: PEFT's
    /// defaults and the usual choices) the bits are PEFT's order's; otherwise they differ
    /// by rounding.
    pub(super) fn update(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let narrow = matmul(x, self.a.val());
        let scale = self.scale();
        let narrow = if scale == 1.0 {
            narrow
        } else {
            narrow.mul_scalar(scale)
        };
        matmul(narrow, self.b.val())
    }

    /// `W + scale · A · B`, `[d_in, d_out]`: the weight that computes base and update in
    /// one product (equal in value, not in bits: the sums are grouped differently).
    pub(super) fn merged_into(&self, weight: Tensor<B, 2>) -> Tensor<B, 2> {
        weight + matmul(self.a.val(), self.b.val()).mul_scalar(self.scale())
    }
}
