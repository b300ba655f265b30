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
    Code(CodeReward),
}

impl RewardDecl {
    pub const KINDS: &'static [&'static str] = &[
        "accuracy", "format", "language", "length", "command", "model", "code",
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
    /// The task's own verifier: numbers compared as numbers, Countdown equations as
    /// Countdown solutions, any other reference that reads as a math answer as `math`.
    #[default]
    Auto,
    /// Parse both as numbers (`1/2`, `0.5`, `5e-1`, `1,000`).
    Numeric,
    /// Compare the trimmed strings exactly.
    Exact,
    /// Parse both as mathematical answers (LaTeX or plain text: numbers, fractions, roots,
    /// expressions, equations, intervals, sets, tuples, matrices) and compare their
    /// values; the rules are in `docs/src/grading.md`.
    Math,
}

/// Where the accuracy reward looks for the answer in a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerIn {
    /// The one `<answer>…</answer>` block (R1's format).
    #[default]
    Tags,
    /// The last `\boxed{…}` or `\fbox{…}`, braces balanced.
    Boxed,
    /// A boxed answer, else the last math span (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`), else the
    /// last number or expression in the text.
    Anywhere,
}

impl AnswerIn {
    /// Whether this is the default, which is left out of the declaration's serialised form
    /// so that the cache keys of rewards declared before `answer_in` existed stay the same.
    pub fn is_tags(&self) -> bool {
        matches!(self, Self::Tags)
    }
}

/// Correctness of the answer — inside `<answer>…</answer>`, or where `answer_in` says —
/// on TinyZero's scale: 0 without an answer, `format_score` for a well-formed but wrong or
/// invalid one, `correct_score` for a right one. A sample whose reference answer cannot be
/// parsed is skipped, not rewarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyReward {
    /// How answers are compared. Default `auto`.
    pub mode: AccuracyMode,
    /// Where the answer is: `tags` (default), `boxed` or `anywhere`.
    #[serde(skip_serializing_if = "AnswerIn::is_tags")]
    pub answer_in: AnswerIn,
    /// Score of a right answer. Default 1.0.
    pub correct_score: f64,
    /// Score of an answer that is present but wrong or invalid. Default 0.1.
    pub format_score: f64,
}

/// What a field left out takes.
impl Default for AccuracyReward {
    fn default() -> Self {
        Self {
            mode: AccuracyMode::default(),
            answer_in: AnswerIn::default(),
            correct_score: 1.0,
            format_score: 0.1,
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
#[serde(deny_unknown_fields, default)]
pub struct LanguageReward {
    /// Target language: `en` or `zh` with script detection, any name with a word list.
    pub language: String,
    /// `script` or `word_list`. Default `script`.
    pub detection: LanguageDetection,
    /// Words of the target language, inline (word_list detection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
    /// A file of target-language words, one per line, relative to the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub word_list: Option<PathBuf>,
}

/// What a field left out takes.
impl Default for LanguageReward {
    fn default() -> Self {
        Self {
            language: "en".to_string(),
            detection: LanguageDetection::default(),
            words: Vec::new(),
            word_list: None,
        }
    }
}

/// Soft overlong punishment (DAPO): 0 up to `max_length − buffer` tokens, falling linearly
/// to `−penalty` at `max_length` and beyond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LengthReward {
    /// Completion length (tokens) at which the full penalty applies. Default 512.
    pub max_length: usize,
    /// Tokens before `max_length` where the penalty starts. Default 128.
    pub buffer: usize,
    /// Size of the full penalty. Default 1.0.
    pub penalty: f64,
}

/// What a field left out takes.
impl Default for LengthReward {
    fn default() -> Self {
        Self {
            max_length: 512,
            buffer: 128,
            penalty: 1.0,
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
    /// Seconds allowed per call before the call is an error; at most 86400 (a day).
    /// Default 60.
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

/// The language of the programs a `code` reward runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeLanguage {
    /// Python 3, run by the `python3` on PATH.
    #[default]
    Python,
}

/// How a `code` reward turns passed tests into a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeScoring {
    /// The fraction of the tests that pass.
    #[default]
    Fraction,
    /// 1 when every test passes, else 0.
    All,
}

/// Where a `code` reward runs programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeSandbox {
    /// In a bubblewrap sandbox (`bwrap`): no network, a read-only system, a fresh tmpfs
    /// as the only writable place, its own PID namespace. `validate` refuses the reward
    /// where `bwrap` does not work.
    #[default]
    Bwrap,
    /// Directly, with the same resource limits but no isolation: the program can read and
    /// write what r1flow can, and reach the network. Only for code you trust.
    None,
}

/// Runs the program in a completion (its last fenced code block, else its `<answer>`
/// block) against the prompt record's `tests`, in a sandbox, and scores the tests passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CodeReward {
    /// The programs' language. Default (and only) `python`.
    pub language: CodeLanguage,
    /// `fraction` (default) or `all`.
    pub scoring: CodeScoring,
    /// `bwrap` (default) or `none`.
    pub sandbox: CodeSandbox,
    /// Wall-clock seconds one completion's program and tests may run; its CPU time is
    /// limited to the same, rounded up. At most 3600. Default 10.
    pub timeout_s: f64,
    /// Address space of each of the program's processes, in MiB (64 to 65536).
    /// Default 512.
    pub memory_mb: u64,
    /// Processes and threads the program may run at once (1 to 4096). Default 8.
    pub max_processes: u64,
    /// Completions run at once (1 to 1024). Default: the number of CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
}

impl CodeReward {
    /// The longest `timeout_s`: an hour.
    pub const MAX_TIMEOUT_S: f64 = 3600.0;
    /// The bounds of `memory_mb`.
    pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 64..=65536;
    /// The bounds of `max_processes`.
    pub const MAX_PROCESSES: std::ops::RangeInclusive<u64> = 1..=4096;
    /// The bounds of `max_parallel`.
    pub const MAX_PARALLEL: std::ops::RangeInclusive<usize> = 1..=1024;

    /// Every field out of its bounds, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.timeout_s.is_finite()
            && self.timeout_s > 0.0
            && self.timeout_s <= Self::MAX_TIMEOUT_S)
        {
            problems.push((
                "timeout_s",
                format!(
                    "`timeout_s` must be greater than 0 and at most {} (an hour), not {}",
                    Self::MAX_TIMEOUT_S,
                    // `1e300` as written, not three hundred digits.
                    match self.timeout_s.abs() >= 1e15 {
                        true => format!("{:e}", self.timeout_s),
                        false => self.timeout_s.to_string(),
                    }
                ),
            ));
        }
        problems.extend(outside("memory_mb", &Self::MEMORY_MB, self.memory_mb));
        problems.extend(outside(
            "max_processes",
            &Self::MAX_PROCESSES,
            self.max_processes,
        ));
        if let Some(parallel) = self.max_parallel {
            problems.extend(outside("max_parallel", &Self::MAX_PARALLEL, parallel));
        }
        problems
    }
}

/// `field`'s problem when its `value` lies outside `bounds`.
fn outside<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    bounds: &std::ops::RangeInclusive<T>,
    value: T,
) -> Option<(&'static str, String)> {
    (!bounds.contains(&value)).then(|| {
        (
            field,
            format!(
                "`{field}` must be from {} to {}, not {value}",
                bounds.start(),
                bounds.end()
            ),
        )
    })
}

/// What a field left out takes.
impl Default for CodeReward {
    fn default() -> Self {
        Self {
            language: CodeLanguage::default(),
            scoring: CodeScoring::default(),
            sandbox: CodeSandbox::default(),
            timeout_s: 10.0,
            memory_mb: 512,
            max_processes: 8,
            max_parallel: None,
        }
    }
}
