//! Execute (rewards): why a reward could not be built or could not score a batch. Every
//! error names the reward, and errors about one sample name its index in the batch.

use std::fmt;
use std::path::PathBuf;

/// A reward that cannot be built or that failed on a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardError {
    reward: String,
    kind: RewardErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardErrorKind {
    /// The declaration cannot work (e.g. script detection for an unknown language).
    Config(String),
    /// A word-list file cannot be read.
    WordList { path: PathBuf, message: String },
    /// The verifier program did not start.
    Spawn { program: String, message: String },
    /// The verifier did not finish within its timeout; samples from `first_unscored` on
    /// have no score.
    Timeout { seconds: f64, first_unscored: usize },
    /// The verifier exited unsuccessfully.
    Crashed {
        status: String,
        stderr: String,
        first_unscored: Option<usize>,
    },
    /// The verifier wrote a different number of scores than there were samples.
    WrongCount { expected: usize, got: usize },
    /// Line `sample` of the verifier's output is not a finite number.
    NotANumber { sample: usize, line: String },
    /// The verifier wrote more than `limit` bytes on stdout (and was stopped).
    OutputTooLarge { limit: u64 },
    /// Reading from or writing to the verifier failed.
    Io(String),
    /// `kind: model` rewards are scored by a trained reward model, which only a running
    /// stage loads.
    NeedsRewardModel { model: String },
    /// The reward model failed to score a batch.
    Model(String),
    /// The `code` reward's sandbox (or, with `sandbox: none`, its interpreter) cannot be
    /// found or did not start.
    Sandbox(String),
}

impl RewardError {
    pub fn new(reward: impl Into<String>, kind: RewardErrorKind) -> Self {
        Self {
            reward: reward.into(),
            kind,
        }
    }

    /// The reward's name in the manifest.
    pub fn reward(&self) -> &str {
        &self.reward
    }

    pub fn kind(&self) -> &RewardErrorKind {
        &self.kind
    }

    /// The index in the batch of the sample the error is about, when there is one.
    pub fn sample(&self) -> Option<usize> {
        match &self.kind {
            RewardErrorKind::Timeout { first_unscored, .. } => Some(*first_unscored),
            RewardErrorKind::Crashed { first_unscored, .. } => *first_unscored,
            RewardErrorKind::WrongCount { expected, got } => Some((*got).min(*expected)),
            RewardErrorKind::NotANumber { sample, .. } => Some(*sample),
            _ => None,
        }
    }
}

impl fmt::Display for RewardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reward `{}`: ", self.reward)?;
        match &self.kind {
            RewardErrorKind::Config(message) => f.write_str(message),
            RewardErrorKind::WordList { path, message } => {
                write!(f, "cannot read word list `{}`: {message}", path.display())
            }
            RewardErrorKind::Spawn { program, message } => {
                write!(f, "cannot start verifier `{program}`: {message}")
            }
            RewardErrorKind::Timeout {
                seconds,
                first_unscored,
            } => write!(
                f,
                "verifier timed out after {seconds}s; sample {first_unscored} and later have no score"
            ),
            RewardErrorKind::Crashed {
                status,
                stderr,
                first_unscored,
            } => {
                write!(f, "verifier exited with {status}")?;
                if let Some(sample) = first_unscored {
                    write!(f, "; sample {sample} and later have no score")?;
                }
                if !stderr.trim().is_empty() {
                    write!(f, "; its stderr ends:\n{}", stderr.trim_end())?;
                }
                Ok(())
            }
            RewardErrorKind::WrongCount { expected, got } if got < expected => write!(
                f,
                "verifier wrote {got} scores for {expected} samples; sample {got} has no score"
            ),
            RewardErrorKind::WrongCount { expected, got } => write!(
                f,
                "verifier wrote {got} scores for {expected} samples; line {} matches no sample",
                expected + 1
            ),
            RewardErrorKind::NotANumber { sample, line } => write!(
                f,
                "verifier's score for sample {sample} is not a finite number: {line:?}"
            ),
            RewardErrorKind::OutputTooLarge { limit } => write!(
                f,
                "verifier wrote more than {} on stdout and was stopped; it should print one score per line, one line per sample",
                crate::user_file::human_bytes(*limit)
            ),
            RewardErrorKind::Io(message) => write!(f, "verifier I/O failed: {message}"),
            RewardErrorKind::NeedsRewardModel { model } => write!(
                f,
                "is scored by the reward model of stage `{model}`, which is not loaded here \
                 (`model` rewards score inside the `grpo`, `rlhf`, `rejection_sampling` and \
                 `eval` stages that name them)"
            ),
            RewardErrorKind::Model(message) => write!(f, "reward model failed: {message}"),
            RewardErrorKind::Sandbox(message) => write!(f, "code sandbox: {message}"),
        }
    }
}

impl std::error::Error for RewardError {}
