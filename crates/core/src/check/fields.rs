//! Check: value rules of stage fields — the shared parameters (ranges of probabilities,
//! positive steps, group-size divisibility) and the hooks each kind uses for its own.

use serde_json::Value;

use crate::manifest::Resources;
use crate::stages::FieldChecks;

/// The range a shared numeric field must lie in.
#[derive(Clone, Copy)]
enum Range {
    /// x > 0
    Positive,
    /// x ≥ 0
    NonNegative,
    /// 0 ≤ x ≤ 1
    Unit,
    /// 0 < x ≤ 1
    UnitOpenLow,
    /// 0 ≤ x < 1
    UnitOpenHigh,
    /// 0 < x < 1
    UnitOpen,
    /// x ≥ n
    AtLeast(f64),
}

impl Range {
    fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Self::Positive => x > 0.0,
                Self::NonNegative => x >= 0.0,
                Self::Unit => (0.0..=1.0).contains(&x),
                Self::UnitOpenLow => x > 0.0 && x <= 1.0,
                Self::UnitOpenHigh => (0.0..1.0).contains(&x),
                Self::UnitOpen => x > 0.0 && x < 1.0,
                Self::AtLeast(n) => x >= n,
            }
    }

    fn describe(self) -> String {
        match self {
            Self::Positive => "greater than 0".into(),
            Self::NonNegative => "0 or more".into(),
            Self::Unit => "in [0, 1]".into(),
            Self::UnitOpenLow => "in (0, 1]".into(),
            Self::UnitOpenHigh => "in [0, 1)".into(),
            Self::UnitOpen => "in (0, 1)".into(),
            Self::AtLeast(n) => format!("at least {n}"),
        }
    }
}

/// Shared fields and the range each must lie in, with a hint.
const RULES: &[(&str, Range, &str)] = &[
    (
        "learning_rate",
        Range::Positive,
        "typical values: 1e-6 (large models, RL) to 1e-3 (tiny models from scratch)",
    ),
    (
        "warmup_ratio",
        Range::Unit,
        "a fraction of the training steps, e.g. 0.05",
    ),
    (
        "weight_decay",
        Range::NonNegative,
        "0 disables weight decay",
    ),
    ("adam_beta1", Range::UnitOpenHigh, "the usual value is 0.9"),
    (
        "adam_beta2",
        Range::UnitOpenHigh,
        "usual values are 0.95 to 0.999",
    ),
    ("max_grad_norm", Range::NonNegative, "0 disables clipping"),
    (
        "per_device_train_batch_size",
        Range::AtLeast(1.0),
        "sequences per micro-batch",
    ),
    (
        "gradient_accumulation_steps",
        Range::AtLeast(1.0),
        "1 accumulates nothing",
    ),
    (
        "max_steps",
        Range::AtLeast(1.0),
        "remove `max_steps` to train for `num_train_epochs`",
    ),
    ("num_train_epochs", Range::Positive, "e.g. 1 or 0.5"),
    ("logging_steps", Range::AtLeast(1.0), "1 logs every step"),
    (
        "save_steps",
        Range::AtLeast(1.0),
        "checkpoint interval in steps",
    ),
    (
        "temperature",
        Range::NonNegative,
        "0 samples greedily; 1.0 keeps RL groups diverse",
    ),
    ("top_p", Range::UnitOpenLow, "1.0 disables nucleus sampling"),
    ("max_prompt_length", Range::AtLeast(1.0), "tokens"),
    ("max_completion_length", Range::AtLeast(1.0), "tokens"),
    (
        "num_generations",
        Range::AtLeast(2.0),
        "GRPO compares completions within a group: use 2 or more (TRL's default is 8)",
    ),
    (
        "beta",
        Range::NonNegative,
        "0 disables the KL term (and loads no reference model)",
    ),
    ("epsilon", Range::UnitOpen, "the usual clip range is 0.2"),
    ("epsilon_high", Range::UnitOpen, "DAPO uses 0.28"),
    (
        "ref_model_mixup_alpha",
        Range::Unit,
        "TRL's default is 0.6; 1 copies the policy into the reference model",
    ),
    (
        "num_iterations",
        Range::AtLeast(1.0),
        "policy updates per generated batch; 1 is on-policy",
    ),
];

/// Checks the shared fields of a resolved stage config (as JSON).
pub(crate) fn check_shared(config: &Value, checks: &mut FieldChecks<'_>) {
    let number = |field: &str| config.get(field).and_then(Value::as_f64);
    for (field, range, hint) in RULES {
        // `epsilon_high` left out copies `epsilon`: report the range once, at `epsilon`.
        if *field == "epsilon_high" && number("epsilon_high") == number("epsilon") {
            continue;
        }
        if let Some(x) = number(field) {
            if !range.contains(x) {
                checks.error(
                    field,
                    format!("`{field}` must be {}, not {x}", range.describe()),
                    *hint,
                );
            }
        }
    }
    if let Some(g) = number("num_generations") {
        let most = crate::stages::MAX_SAMPLES_PER_PROMPT as f64;
        if g > most {
            checks.error(
                "num_generations",
                format!("`num_generations` must be at most {most}, not {g}"),
                "DeepSeek-R1 samples 16 completions per prompt (TRL's default is 8)",
            );
        }
    }
    if let (Some(g), Some(batch), Some(accum)) = (
        number("num_generations"),
        number("per_device_train_batch_size"),
        number("gradient_accumulation_steps"),
    ) {
        let completions = batch * accum;
        if g >= 2.0 && completions % g != 0.0 {
            checks.error(
                "per_device_train_batch_size",
                format!(
                    "the batch of {completions} completions (per_device_train_batch_size {batch} × gradient_accumulation_steps {accum}) is not divisible by num_generations = {g}"
                ),
                format!(
                    "each prompt's group of {g} completions must fit whole in a batch: make the batch a multiple of {g}, e.g. per_device_train_batch_size: {}",
                    (batch / g).ceil().max(1.0) * g
                ),
            );
        }
    }
    if let (Some(low), Some(high)) = (number("epsilon"), number("epsilon_high")) {
        if high < low {
            checks.error(
                "epsilon_high",
                format!("`epsilon_high` ({high}) is below `epsilon` ({low})"),
                "clip-higher widens the upper range: epsilon_high ≥ epsilon",
            );
        }
    }
}

/// A stage's `resources:` must be what Slurm accepts, and what it means by them what the
/// user means: `time: 0` and `mem: 0` are Slurm's "no limit" and "the whole node".
pub(crate) fn check_resources(resources: &Resources, checks: &mut FieldChecks<'_>) {
    if let Some(error) = resources.gpus.and_then(Resources::gpus_error) {
        checks.error(
            "resources.gpus",
            error,
            "GPUs on the one node the stage's job runs on, e.g. `gpus: 1`; 0 or no `gpus` asks for none",
        );
    }
    if let Some(error) = resources.cpus.and_then(Resources::cpus_error) {
        checks.error(
            "resources.cpus",
            error,
            "CPU cores on the one node the stage's job runs on, e.g. `cpus: 8`; leave `cpus` out for the partition's default",
        );
    }
    if let Some(error) = resources.mem.as_deref().and_then(Resources::mem_error) {
        checks.error(
            "resources.mem",
            error,
            "write a whole number with an optional K, M, G or T suffix, e.g. `mem: 16G`; leave `mem` out for the partition's default",
        );
    }
    if let Some(error) = resources.time.as_deref().and_then(Resources::time_error) {
        checks.error(
            "resources.time",
            error,
            "write `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`, e.g. `time: 04:00:00`; leave `time` out for the partition's default limit",
        );
    }
}
