//! Parse: a reward declaration under `rewards:`. Stages reference rewards by name with a
//! weight; the names `accuracy`, `format`, `tag_count`, `language` and `length` work
//! without a declaration and mean the built-in reward with its default settings.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reward function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RewardDecl {
    Accuracy(AccuracyReward),
    Format(FormatReward),
    Language(LanguageReward),
    Length(LengthReward),
    Command(CommandReward),
    Model(ModelReward),
}

impl RewardDecl {
    pub const KINDS: &'static [&'static str] = &[
        "accuracy", "format", "language", "length", "command", "model",
    ];

    /// The reward a bare name means when the manifest does not declare it.
    pub fn builtin(name: &str) -> Option<Self> {
        Some(match name {
            "accuracy" => Self::Accuracy(AccuracyReward::default()),
            "format" => Self::Format(FormatReward::default()),
            "tag_count" => Self::Format(FormatReward {
                mode: FormatMode::TagCount,
            }),
            "language" => Self::Language(LanguageReward::default()),
            "length" => Self::Length(LengthReward::default()),
            _ => return None,
        })
    }

    pub const BUILTIN_NAMES: &'static [&'static str] =
        &["accuracy", "format", "tag_count", "language", "length"];
}

/// How an answer is compared with the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccuracyMode {
    /// The task's own verifier: Countdown equations for `countdown`, numbers otherwise.
    #[default]
    Auto,
    /// Parse both as numbers (`1/2`, `0.5`, `5e-1`, `1,000`).
    Numeric,
    /// Compare the trimmed strings exactly.
    Exact,
}

/// Correctness of the answer inside `<answer>…</answer>` (TinyZero's scheme: 0 without an
/// answer, `format_score` for a well-formed but wrong or invalid one, `correct_score` for a
/// right one). A sample whose reference answer cannot be parsed is skipped, not rewarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccuracyReward {
    /// How answers are compared. Default `auto`.
    #[serde(default)]
    pub mode: AccuracyMode,
    /// Score of a right answer. Default 1.0.
    #[serde(default = "AccuracyReward::default_correct_score")]
    pub correct_score: f64,
    /// Score of an answer that is present but wrong or invalid. Default 0.1.
    #[serde(default = "AccuracyReward::default_format_score")]
    pub format_score: f64,
}

impl AccuracyReward {
    fn default_correct_score() -> f64 {
        1.0
    }
    fn default_format_score() -> f64 {
        0.1
    }
}

impl Default for AccuracyReward {
    fn default() -> Self {
        Self {
            mode: AccuracyMode::default(),
            correct_score: Self::default_correct_score(),
            format_score: Self::default_format_score(),
        }
    }
}

/// Which format check to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormatMode {
    /// 1 when the completion is exactly `<think>…</think>` then `<answer>…</answer>`,
    /// each once, nothing after; else 0.
    #[default]
    Strict,
    /// 0.25 for each of the four tags present exactly once (partial credit).
    TagCount,
}

/// The R1 output format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatReward {
    /// `strict` or `tag_count`. Default `strict`.
    #[serde(default)]
    pub mode: FormatMode,
}

/// How words are assigned to a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LanguageDetection {
    /// By script: Latin letters are English, CJK ideographs are Chinese.
    #[default]
    Script,
    /// By membership in a word list (`words` or `word_list`).
    WordList,
}

/// Language consistency: the share of the words inside `<think>` that belong to the target
/// language (the reward R1 added against language mixing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageReward {
    /// Target language: `en` or `zh` with script detection, any name with a word list.
    #[serde(default = "LanguageReward::default_language")]
    pub language: String,
    /// `script` or `word_list`. Default `script`.
    #[serde(default)]
    pub detection: LanguageDetection,
    /// Words of the target language, inline (word_list detection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
    /// A file of target-language words, one per line, relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_list: Option<PathBuf>,
}

impl LanguageReward {
    fn default_language() -> String {
        "en".to_string()
    }
}

impl Default for LanguageReward {
    fn default() -> Self {
        Self {
            language: Self::default_language(),
            detection: LanguageDetection::default(),
            words: Vec::new(),
            word_list: None,
        }
    }
}

/// Soft overlong punishment (DAPO): 0 up to `max_length − buffer` tokens, falling linearly
/// to `−penalty` at `max_length` and beyond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LengthReward {
    /// Completion length (tokens) at which the full penalty applies. Default 512.
    #[serde(default = "LengthReward::default_max_length")]
    pub max_length: usize,
    /// Tokens before `max_length` where the penalty starts. Default 128.
    #[serde(default = "LengthReward::default_buffer")]
    pub buffer: usize,
    /// Size of the full penalty. Default 1.0.
    #[serde(default = "LengthReward::default_penalty")]
    pub penalty: f64,
}

impl LengthReward {
    fn default_max_length() -> usize {
        512
    }
    fn default_buffer() -> usize {
        128
    }
    fn default_penalty() -> f64 {
        1.0
    }
}

impl Default for LengthReward {
    fn default() -> Self {
        Self {
            max_length: Self::default_max_length(),
            buffer: Self::default_buffer(),
            penalty: Self::default_penalty(),
        }
    }
}

/// An external verifier program, run without a shell: it reads JSON lines
/// `{"prompt", "completion", "answer"}` on stdin and writes one number per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandReward {
    /// The program and its arguments, e.g. `[python3, examples/verify.py]`.
    pub command: Vec<String>,
    /// Seconds allowed per call before the call is an error. Default 60.
    #[serde(default = "CommandReward::default_timeout_s")]
    pub timeout_s: f64,
}

impl CommandReward {
    fn default_timeout_s() -> f64 {
        60.0
    }
}

/// The score of a trained reward model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelReward {
    /// The `reward_model` stage whose model scores completions.
    pub model: String,
}
