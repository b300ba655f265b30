//! Parse: a dataset declaration under `datasets:` — a built-in task generator
//! (`countdown`, `arithmetic`) or a user's JSONL file.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a dataset's records come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetDecl {
    Countdown(CountdownTask),
    Arithmetic(ArithmeticTask),
    Jsonl(JsonlSource),
}

impl DatasetDecl {
    pub const KINDS: &'static [&'static str] = &["countdown", "arithmetic", "jsonl"];

    /// What the records hold, for type-checking the stages that consume them.
    pub fn shape(&self) -> RecordShape {
        match self {
            Self::Countdown(_) | Self::Arithmetic(_) => RecordShape::Tasks,
            Self::Jsonl(jsonl) => match jsonl.format {
                JsonlFormat::Prompts => RecordShape::Prompts,
                JsonlFormat::Sft => RecordShape::Completions,
                JsonlFormat::Preferences => RecordShape::Preferences,
            },
        }
    }
}

/// What the records of a dataset carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordShape {
    /// Generated tasks: prompt, verifiable answer and a worked solution.
    Tasks,
    /// Prompts with reference answers.
    Prompts,
    /// Prompts with completions to imitate (SFT pairs).
    Completions,
    /// Prompts with a chosen and a rejected completion.
    Preferences,
}

impl RecordShape {
    pub fn has_prompts(self) -> bool {
        true
    }
    pub fn has_completions(self) -> bool {
        matches!(self, Self::Tasks | Self::Completions)
    }
    pub fn has_preferences(self) -> bool {
        matches!(self, Self::Preferences)
    }
    pub fn describe(self) -> &'static str {
        match self {
            Self::Tasks => "generated tasks (prompts, answers and solutions)",
            Self::Prompts => "prompts with answers",
            Self::Completions => "prompt/completion pairs",
            Self::Preferences => "preference pairs",
        }
    }
}

/// The most items a generated dataset (`countdown`, `arithmetic`) may have: it is held in
/// memory and stored whole, so `validate` bounds it.
pub const MAX_GENERATED_SAMPLES: usize = 1_000_000;

/// TinyZero's Countdown: combine the given numbers, each exactly once, with + − × ÷ and
/// parentheses to reach the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountdownTask {
    /// Items generated (train and test together). Default 10000.
    #[serde(default = "CountdownTask::default_num_samples")]
    pub num_samples: usize,
    /// Fewest numbers per item. Default 3.
    #[serde(default = "CountdownTask::default_min_numbers")]
    pub min_numbers: usize,
    /// Most numbers per item. Default 4.
    #[serde(default = "CountdownTask::default_max_numbers")]
    pub max_numbers: usize,
    /// Smallest number drawn. Default 1.
    #[serde(default = "CountdownTask::default_min_value")]
    pub min_value: u64,
    /// Largest number drawn. Default 100.
    #[serde(default = "CountdownTask::default_max_value")]
    pub max_value: u64,
    /// Largest target accepted. Default 1000.
    #[serde(default = "CountdownTask::default_max_target")]
    pub max_target: u64,
    /// Flaws written into the worked solutions (the pretraining/SFT corpus), as a web
    /// corpus has them. The reference answers stay exact. Default: none.
    #[serde(default, skip_serializing_if = "SolutionNoise::is_clean")]
    pub noise: SolutionNoise,
}

impl CountdownTask {
    fn default_num_samples() -> usize {
        10_000
    }
    fn default_min_numbers() -> usize {
        3
    }
    fn default_max_numbers() -> usize {
        4
    }
    fn default_min_value() -> u64 {
        1
    }
    fn default_max_value() -> u64 {
        100
    }
    fn default_max_target() -> u64 {
        1000
    }
}

/// Shares of a generated task's worked solutions that are flawed, each drawn
/// independently per item: so that a model pretrained on them is right only sometimes,
/// works its answer out step by step only sometimes, follows the `<think>/<answer>` format
/// only sometimes, or mixes languages in its reasoning — what R1-Zero's RL and the
/// language-consistency reward then fix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SolutionNoise {
    /// Share of solutions that slip (a wrong step, or for Countdown an equation that
    /// misses the target) and so end with a wrong answer. In [0, 1]. Default 0.
    #[serde(default)]
    pub wrong: f64,
    /// Share of solutions that skip the worked steps and state the result at once; a
    /// small model imitating them has to guess. In [0, 1]. Default 0.
    #[serde(default)]
    pub shortcut: f64,
    /// Share of solutions written without the format: the answer outside `<answer>` tags,
    /// or the `<think>` never closed. In [0, 1]. Default 0.
    #[serde(default)]
    pub unformatted: f64,
    /// Share of solutions whose reasoning switches between English and Chinese from
    /// sentence to sentence. In [0, 1]. Default 0.
    #[serde(default)]
    pub mixed_language: f64,
}

impl SolutionNoise {
    /// No flaws at all (the default; such a setting is left out of cache keys).
    pub fn is_clean(&self) -> bool {
        self.wrong == 0.0
            && self.shortcut == 0.0
            && self.unformatted == 0.0
            && self.mixed_language == 0.0
    }
}

/// An arithmetic operation used by the `arithmetic` task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Add,
    Sub,
    Mul,
}

/// Chains of multi-digit additions, subtractions and multiplications: small enough for a
/// tiny model to learn in minutes, with a difficulty knob (`max_digits`, `num_terms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArithmeticTask {
    /// Items generated (train and test together). Default 10000.
    #[serde(default = "ArithmeticTask::default_num_samples")]
    pub num_samples: usize,
    /// Operations drawn from. Default `[add, sub, mul]`.
    #[serde(default = "ArithmeticTask::default_operations")]
    pub operations: Vec<Operation>,
    /// Fewest digits per operand. Default 1.
    #[serde(default = "ArithmeticTask::default_min_digits")]
    pub min_digits: u32,
    /// Most digits per operand. Default 2.
    #[serde(default = "ArithmeticTask::default_max_digits")]
    pub max_digits: u32,
    /// Operands per expression. Default 2.
    #[serde(default = "ArithmeticTask::default_num_terms")]
    pub num_terms: usize,
    /// How the worked solutions are written: `steps` (one sentence per operation; the
    /// default) or `columns` (column-by-column addition with carries; additions only).
    #[serde(default, skip_serializing_if = "Scratchpad::is_steps")]
    pub scratchpad: Scratchpad,
    /// Flaws written into the worked solutions (the pretraining/SFT corpus), as a web
    /// corpus has them. The reference answers stay exact. Default: none.
    #[serde(default, skip_serializing_if = "SolutionNoise::is_clean")]
    pub noise: SolutionNoise,
}

/// How the `arithmetic` task writes a worked solution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scratchpad {
    /// One sentence per operation, in order of precedence (`12 + 30 = 42.`), then the
    /// result restated (`So 12 + 30 = 42.`). A tiny model can only memorise such a
    /// sentence, so it helps on small numbers alone.
    #[default]
    Steps,
    /// Column addition, least significant digit first: the expression restated, then per
    /// column what is left of the operands, the column's digits and the carry in, their
    /// sum, the carry out and the running result (`4567 + 9123: 7+3+0=10 c1 r0. 456 + 912:
    /// 6+2+1=09 c0 r90. … The sum is 13690.`); the answer copies the last running result. Every step is a copy,
    /// a lookup of the last digits just written or a sum of a few digits, which a tiny
    /// model can execute, while a multi-digit sum written at once has to be guessed (Lee
    /// et al. 2023, "Teaching Arithmetic to Small Transformers"). Additions only
    /// (`operations: [add]`).
    Columns,
}

impl Scratchpad {
    /// The default (left out of cache keys, so that manifests written before there was a
    /// choice keep their keys).
    pub fn is_steps(&self) -> bool {
        *self == Self::Steps
    }
}

impl ArithmeticTask {
    fn default_num_samples() -> usize {
        10_000
    }
    fn default_operations() -> Vec<Operation> {
        vec![Operation::Add, Operation::Sub, Operation::Mul]
    }
    fn default_min_digits() -> u32 {
        1
    }
    fn default_max_digits() -> u32 {
        2
    }
    fn default_num_terms() -> usize {
        2
    }
}

/// What each line of a JSONL file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonlFormat {
    /// `prompt` and `answer` (see schemas/prompt.schema.json).
    Prompts,
    /// `prompt` and `completion` (see schemas/sft.schema.json).
    Sft,
    /// `prompt`, `chosen` and `rejected` (see schemas/preference.schema.json).
    Preferences,
}

/// A user's JSONL file, one record per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSource {
    /// The file, relative to the manifest.
    pub path: PathBuf,
    /// What each line holds: `prompts`, `sft` or `preferences`.
    pub format: JsonlFormat,
    /// Field names of the file that differ from r1flow's record fields, as
    /// `{record_field: file_field}`, e.g. `{prompt: question, answer: solution}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fields: IndexMap<String, String>,
    /// A system prompt given with every record (with `template: chat`, the system
    /// message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Where the reference answer is inside the `answer` field, for data in a published
    /// layout: `gsm8k` (the text after the last `####`) or `boxed` (the last `\boxed{…}`,
    /// as MATH's solutions write it). Without it, `answer` is the reference as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_answer: Option<AnswerExtractor>,
}

/// How the reference answer is found in a worked solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerExtractor {
    /// GSM8K: the final number after the last `####` (`… #### 72` → `72`).
    Gsm8k,
    /// MATH: the contents of the last `\boxed{…}`.
    Boxed,
}

/// Size of the held-out test split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TestSize {
    /// A number of records (an integer ≥ 1), or a fraction in (0, 1).
    Number(f64),
}
