//! Parse → check: the stage kinds. Each kind is one file holding its config type (what a
//! manifest writes under `kind: …`), its inputs and output, its built-in defaults, its
//! checks, and its resolved settings (what `check` hands to execution, every default
//! applied). How a kind runs lives above the executor (`r1flow::runners`), registered by
//! kind. Adding a kind means one file here, one variant, and one runner.

mod dataset;
mod distill;
mod eval;
mod export;
mod field_checks;
mod grpo;
mod input_field;
mod kind_config;
mod pretrain;
mod rejection_sampling;
mod reward_model;
mod rlhf;
mod settings;
mod sft;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use dataset::{Dataset, DatasetStage};
pub use distill::{Distill, DistillMode, DistillObjective, DistillStage, KlDirection};
pub use eval::{Eval, EvalSplit, EvalStage};
pub use export::{Export, ExportStage};
pub use field_checks::FieldChecks;
pub use grpo::{Grpo, GrpoStage};
pub use input_field::InputField;
pub use pretrain::{Pretrain, PretrainStage};
pub use rejection_sampling::{RejectionEmit, RejectionSampling, RejectionSamplingStage};
pub use reward_model::{RewardModel, RewardModelStage};
pub use rlhf::{Rlhf, RlhfStage};
pub use settings::{
    required, GenerationSettings, PolicySettings, TrainingLength, TrainingSettings, Unset,
};
pub use sft::{Sft, SftStage};

use crate::manifest::{Defaults, RecordShape};

/// The most completions a stage samples per prompt (`num_generations`, and `num_samples`
/// of `eval` and `rejection_sampling`): DeepSeek-R1 samples 16 to 64; past a few thousand
/// a step's completions no longer fit in memory, so `validate` bounds it.
pub const MAX_SAMPLES_PER_PROMPT: usize = 4096;

/// What a stage leaves in the store for the stages after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Model,
    RewardModel,
    Dataset(RecordShape),
    Metrics,
    Export,
}

impl Output {
    pub fn describe(self) -> String {
        match self {
            Self::Model => "a model".to_string(),
            Self::RewardModel => "a reward model".to_string(),
            Self::Dataset(shape) => format!("a dataset of {}", shape.describe()),
            Self::Metrics => "evaluation metrics".to_string(),
            Self::Export => "an exported checkpoint directory".to_string(),
        }
    }
}

/// What an input field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A model with weights: a model-producing stage or a checkpoint under `models:`.
    Model,
    /// Where a model starts: any entry of `models:` (a preset starts from fresh weights)
    /// or a model-producing stage.
    ModelInit,
    /// A `reward_model` stage.
    RewardModel,
    /// An entry of `datasets:` (only the `dataset` stage reads those directly).
    Source,
    /// A dataset with prompts.
    Prompts,
    /// A dataset with completions to imitate.
    Completions,
    /// A dataset of preference pairs.
    Preferences,
    /// A checkpoint under `models:`, for its tokenizer's chat template.
    ChatTemplate,
}

impl Need {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Model => "a model (a model-producing stage or a checkpoint `path` under `models:`)",
            Self::ModelInit => "a model (an entry of `models:` or a model-producing stage)",
            Self::RewardModel => "a reward model (a `reward_model` stage)",
            Self::Source => "an entry of `datasets:`",
            Self::Prompts => "a dataset with prompts",
            Self::Completions => "a dataset with completions (SFT pairs, generated tasks or a rejection_sampling stage emitting completions)",
            Self::Preferences => "a dataset of preference pairs (a JSONL `preferences` file or a `rejection_sampling` stage with `emit: preferences`)",
            Self::ChatTemplate => "a checkpoint under `models:` (a `path:` whose tokenizer has a chat template)",
        }
    }

    /// Whether a stage output satisfies this need.
    pub fn accepts(self, output: Output) -> bool {
        match (self, output) {
            (Self::Model | Self::ModelInit, Output::Model) => true,
            (Self::RewardModel, Output::RewardModel) => true,
            (Self::Prompts, Output::Dataset(s)) => s.has_prompts(),
            (Self::Completions, Output::Dataset(s)) => s.has_completions(),
            (Self::Preferences, Output::Dataset(s)) => s.has_preferences(),
            _ => false,
        }
    }
}

/// One reference from a stage to another stage or declaration.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The config field that holds the reference.
    pub field: InputField,
    pub name: &'a str,
    pub need: Need,
}

impl<'a> Input<'a> {
    /// The reference held by `field` (`kind_config!`'s `#[input]`), if it holds one: a
    /// required field always does, an optional one when it is set.
    pub fn declared(field: InputField, name: &'a impl InputName, need: Need) -> Option<Self> {
        name.input_name().map(|name| Self { field, name, need })
    }
}

/// The type of a config field that names an input: `String`, or `Option<String>` for an
/// optional input.
pub trait InputName {
    /// The name it holds, if any.
    fn input_name(&self) -> Option<&str>;
}

impl InputName for String {
    fn input_name(&self) -> Option<&str> {
        Some(self)
    }
}

impl InputName for Option<String> {
    fn input_name(&self) -> Option<&str> {
        self.as_deref()
    }
}

/// A map of reward names to weights (or thresholds) held by a stage.
#[derive(Debug, Clone)]
pub struct RewardRefs<'a> {
    pub field: &'static str,
    pub rewards: &'a IndexMap<String, f64>,
    pub role: RewardRole,
}

impl<'a> RewardRefs<'a> {
    /// The reward map held by `field`, its numbers meaning `role`.
    pub fn new(field: &'static str, rewards: &'a IndexMap<String, f64>, role: RewardRole) -> Self {
        Self {
            field,
            rewards,
            role,
        }
    }
}

/// What the numbers of a reward map mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardRole {
    /// Weights of a weighted sum: non-negative and not all zero.
    Weights,
    /// Weights that may be left empty (an optional extra term).
    OptionalWeights,
    /// Minimum scores a sample must reach: any number.
    Thresholds,
}

/// What `kind_config!` generates from a kind's field declarations: its resolved settings,
/// its inputs, its reward maps and the sequences it feeds its model.
pub trait StageFields {
    /// What execution reads: plain values, every default applied.
    type Resolved;

    /// The references this stage makes, in field order.
    fn inputs(&self) -> Vec<Input<'_>>;

    /// Reward references (name → weight or threshold).
    fn rewards(&self) -> Vec<RewardRefs<'_>>;

    /// What a stage of this kind feeds its model, if it feeds one sequences (check bounds
    /// them by the model's context): prompts and completions if it has the generation
    /// settings, windows of its `#[sequences(window)]` length if it has one.
    fn sequences(resolved: &Self::Resolved) -> Option<Sequences<'_>>;

    /// The settings a run reads: this config (defaults filled by check) with every
    /// remaining default applied. `Unset` names a field that still has no value.
    fn resolve(&self) -> Result<Self::Resolved, Unset>;
}

/// What every stage kind's config says of itself beyond its fields (`kind_config!`'s first
/// line generates it).
pub trait StageConfig:
    StageFields + KindChecks + Serialize + DeserializeOwned + JsonSchema + Clone
{
    /// The `kind:` a manifest writes.
    const KIND: &'static str;
    /// Bumped whenever the kind's implementation changes its output for the same config;
    /// part of the cache key.
    const IMPLEMENTATION: u32;
    /// Whether the kind trains a model (and logs a metric series worth plotting).
    const TRAINS: bool = false;
    /// Whether the kind computes with a model (trains it, generates or scores with it):
    /// its output then depends on the numeric profile, which enters its key.
    const RUNS_MODEL: bool = Self::TRAINS;
    /// The kind's own fields that do not change its output, left out of its cache key
    /// (the shared parameters' key rules are declared with them, in `manifest::params`).
    const NOT_IN_KEY: &'static [&'static str] = &[];

    /// What this stage produces, given what its inputs produce (in `inputs()` order).
    fn output(&self, inputs: &[Output]) -> Output;

    /// Values of the shared parameters when neither the stage nor `defaults:` sets them,
    /// where the kind's differ from the declared ones (`Defaults::declared`).
    fn builtin_defaults() -> Defaults {
        Defaults::default()
    }
}

/// The rules of a kind's own fields, written beside its `kind_config!`.
pub trait KindChecks {
    /// Checks that concern this kind alone (shared fields are checked elsewhere).
    fn check(&self, checks: &mut FieldChecks<'_>);
}

macro_rules! stage_kinds {
    ($($variant:ident($config:ty)),* $(,)?) => {
        /// A stage as `check` resolved it, by kind: what execution reads.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum ResolvedStage {
            $($variant(<$config as StageFields>::Resolved),)*
        }

        impl ResolvedStage {
            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$config as StageConfig>::KIND,)* }
            }

            /// What this stage feeds its model, if it feeds one sequences.
            pub fn sequences(&self) -> Option<Sequences<'_>> {
                match self { $(Self::$variant(s) => <$config as StageFields>::sequences(s),)* }
            }
        }



        /// A stage kind, what `kind:` names: the one place kinds are told apart; code
        /// outside the registry compares these, never the names as strings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum StageKind {
            $($variant,)*
        }

        impl StageKind {
            /// Every kind, in the order of the design table.
            pub const ALL: &'static [StageKind] = &[$(Self::$variant),*];

            /// The name `kind:` writes.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => <$config as StageConfig>::KIND,)* }
            }

            /// The kind called `name` (as written in a manifest or a stored run).
            pub fn named(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
            }

            /// Whether stages of this kind train a model.
            pub fn trains(self) -> bool {
                match self { $(Self::$variant => <$config as StageConfig>::TRAINS,)* }
            }

            /// Whether the kind computes with a model (`StageConfig::RUNS_MODEL`).
            pub fn runs_model(self) -> bool {
                match self { $(Self::$variant => <$config as StageConfig>::RUNS_MODEL,)* }
            }
        }

        impl Serialize for StageKind {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for StageKind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// A stage as written in the manifest, by kind.
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum StageDecl {
            $($variant($config),)*
        }

        impl StageDecl {
            /// Every kind name, in the order of the design table.
            pub const KINDS: &'static [&'static str] = &[$(<$config as StageConfig>::KIND),*];

            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$config as StageConfig>::KIND,)* }
            }

            /// The stage's kind, typed.
            pub fn stage_kind(&self) -> StageKind {
                match self { $(Self::$variant(_) => StageKind::$variant,)* }
            }

            pub fn implementation(&self) -> u32 {
                match self { $(Self::$variant(_) => <$config as StageConfig>::IMPLEMENTATION,)* }
            }

            pub fn inputs(&self) -> Vec<Input<'_>> {
                match self { $(Self::$variant(c) => c.inputs(),)* }
            }

            pub fn output(&self, inputs: &[Output]) -> Output {
                match self { $(Self::$variant(c) => c.output(inputs),)* }
            }

            pub fn rewards(&self) -> Vec<RewardRefs<'_>> {
                match self { $(Self::$variant(c) => c.rewards(),)* }
            }

            pub fn check(&self, checks: &mut FieldChecks<'_>) {
                match self { $(Self::$variant(c) => c.check(checks),)* }
            }

            /// The kind's own fields left out of its cache key.
            pub fn not_in_key(&self) -> &'static [&'static str] {
                match self { $(Self::$variant(_) => <$config as StageConfig>::NOT_IN_KEY,)* }
            }

            /// What the stage's job asks a cluster for.
            pub fn resources(&self) -> Option<&crate::manifest::Resources> {
                match self { $(Self::$variant(c) => c.resources.as_ref(),)* }
            }

            /// The settings a run of this stage reads.
            pub fn resolve(&self) -> Result<ResolvedStage, Unset> {
                Ok(match self { $(Self::$variant(c) => ResolvedStage::$variant(c.resolve()?),)* })
            }

            /// The config as JSON (all fields resolved once checked).
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self { $(Self::$variant(c) => serde_json::to_value(c),)* };
                value.unwrap_or(serde_json::Value::Null)
            }

            /// The built-in defaults of `kind` (its own, then the declared ones), or `None`
            /// for an unknown kind.
            pub fn builtin_defaults(kind: &str) -> Option<Defaults> {
                let own = match kind {
                    $(k if k == <$config as StageConfig>::KIND => <$config as StageConfig>::builtin_defaults(),)*
                    _ => return None,
                };
                Some(own.or(&Defaults::declared()))
            }

            /// The JSON Schema of `kind`'s config, or `None` for an unknown kind.
            pub fn schema_of(kind: &str) -> Option<schemars::Schema> {
                match kind {
                    $(k if k == <$config as StageConfig>::KIND => Some(schemars::schema_for!($config)),)*
                    _ => None,
                }
            }

            /// Deserializes the config of `kind` (the mapping without its `kind` key),
            /// reporting the path of the first error.
            pub fn from_value(
                kind: &str,
                value: serde_yaml::Value,
            ) -> Option<Result<Self, serde_path_to_error::Error<serde_yaml::Error>>> {
                match kind {
                    $(k if k == <$config as StageConfig>::KIND => {
                        Some(serde_path_to_error::deserialize(value).map(Self::$variant))
                    })*
                    _ => None,
                }
            }
        }
    };
}

stage_kinds! {
    Dataset(DatasetStage),
    Pretrain(PretrainStage),
    Sft(SftStage),
    Grpo(GrpoStage),
    RejectionSampling(RejectionSamplingStage),
    RewardModel(RewardModelStage),
    Rlhf(RlhfStage),
    Distill(DistillStage),
    Eval(EvalStage),
    Export(ExportStage),
}

/// The longest sequences a stage feeds its model, bounded by the model's context.
#[derive(Debug, Clone, Copy)]
pub enum Sequences<'a> {
    /// Training windows of `max_seq_length` tokens.
    Window(usize),
    /// Prompts of up to `max_prompt_length` tokens and completions generated after them.
    Generated(&'a GenerationSettings),
}
