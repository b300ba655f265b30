//! Diagnostics level (below every layer: shared by execute, which logs, and report, which
//! reads): the names of the metrics stages log and eval stages
//! report, written once for the code that logs them and the reports that read them, so a
//! rename is a compile error instead of a plot that silently disappears. They follow TRL's
//! names where TRL logs the same thing.

// Every training stage.
pub const LOSS: &str = "loss";
pub const LEARNING_RATE: &str = "learning_rate";
pub const GRAD_NORM: &str = "grad_norm";
/// Optimizer steps taken (a final metric).
pub const STEPS: &str = "steps";
/// The last step's loss (a final metric).
pub const FINAL_LOSS: &str = "final_loss";
/// `dtype: f16`: the loss scale at the logged step, and the steps skipped so far for a
/// gradient that overflowed f16.
pub const LOSS_SCALE: &str = "loss_scale";
pub const SKIPPED_STEPS: &str = "skipped_steps";

// GRPO and RLHF.
pub const KL: &str = "kl";
pub const ENTROPY: &str = "entropy";
pub const CLIP_RATIO: &str = "clip_ratio";
/// Mean of the weighted reward over a step's completions.
pub const REWARD: &str = "reward";
pub const REWARD_STD: &str = "reward_std";
pub const FRAC_REWARD_ZERO_STD: &str = "frac_reward_zero_std";
pub const COMPLETION_LENGTH: &str = "completion_length";
pub const COMPLETION_LENGTH_MIN: &str = "completion_length_min";
pub const COMPLETION_LENGTH_MAX: &str = "completion_length_max";
pub const TIME_GENERATION: &str = "time/generation_s";
pub const TIME_REWARD: &str = "time/reward_s";
pub const TIME_UPDATE: &str = "time/update_s";
pub const DYNAMIC_SAMPLING_PROMPTS_DRAWN: &str = "dynamic_sampling/prompts_drawn";
pub const DYNAMIC_SAMPLING_GROUPS_DROPPED: &str = "dynamic_sampling/groups_dropped";
pub const DYNAMIC_SAMPLING_GROUPS_KEPT: &str = "dynamic_sampling/groups_kept";
pub const DYNAMIC_SAMPLING_ROUNDS: &str = "dynamic_sampling/rounds";

/// What each reward of a step (or an eval) scored: `reward/NAME`.
pub const REWARD_PREFIX: &str = "reward/";

/// `reward/NAME`: the mean of reward `name`.
pub fn reward_of(name: &str) -> String {
    format!("{REWARD_PREFIX}{name}")
}

// The reward model.
pub const EVAL_ACCURACY: &str = "eval_accuracy";
pub const EVAL_MARGIN: &str = "eval_margin";
pub const EVAL_PAIRS: &str = "eval_pairs";
pub const TRAIN_PAIRS: &str = "train_pairs";

// Evaluations.
pub const FORMAT_RATE: &str = "format_rate";
pub const LANGUAGE_CONSISTENCY: &str = "language_consistency";
pub const COMPLETION_LEN_MEAN: &str = "completion_len_mean";
pub const COMPLETION_LEN_MEDIAN: &str = "completion_len_median";
pub const COMPLETION_LEN_MAX: &str = "completion_len_max";

pub const PASS_AT_PREFIX: &str = "pass@";
pub const CONS_AT_PREFIX: &str = "cons@";

/// `pass@K`: the unbiased estimate that one of K samples is right.
pub fn pass_at(k: usize) -> String {
    format!("{PASS_AT_PREFIX}{k}")
}

/// `cons@K`: the majority answer of K samples is right.
pub fn cons_at(k: usize) -> String {
    format!("{CONS_AT_PREFIX}{k}")
}

// The mechanism metrics (eval and GRPO).
pub const WORKED_SHARE: &str = "worked_share";
pub const ACCURACY_WORKED: &str = "accuracy_worked";
pub const ACCURACY_SHORTCUT: &str = "accuracy_shortcut";
pub const COMPLETION_LEN_CORRECT: &str = "completion_len_correct";
pub const COMPLETION_LEN_INCORRECT: &str = "completion_len_incorrect";

/// Every fixed name above (the `reward/`, `pass@` and `cons@` families are built).
pub const ALL: &[&str] = &[
    LOSS,
    LEARNING_RATE,
    GRAD_NORM,
    STEPS,
    FINAL_LOSS,
    KL,
    ENTROPY,
    CLIP_RATIO,
    REWARD,
    REWARD_STD,
    FRAC_REWARD_ZERO_STD,
    COMPLETION_LENGTH,
    COMPLETION_LENGTH_MIN,
    COMPLETION_LENGTH_MAX,
    TIME_GENERATION,
    TIME_REWARD,
    TIME_UPDATE,
    DYNAMIC_SAMPLING_PROMPTS_DRAWN,
    DYNAMIC_SAMPLING_GROUPS_DROPPED,
    DYNAMIC_SAMPLING_GROUPS_KEPT,
    DYNAMIC_SAMPLING_ROUNDS,
    EVAL_ACCURACY,
    EVAL_MARGIN,
    EVAL_PAIRS,
    TRAIN_PAIRS,
    FORMAT_RATE,
    LANGUAGE_CONSISTENCY,
    COMPLETION_LEN_MEAN,
    COMPLETION_LEN_MEDIAN,
    COMPLETION_LEN_MAX,
    WORKED_SHARE,
    ACCURACY_WORKED,
    ACCURACY_SHORTCUT,
    COMPLETION_LEN_CORRECT,
    COMPLETION_LEN_INCORRECT,
];
