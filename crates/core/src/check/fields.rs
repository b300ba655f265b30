//! Check: value rules of stage fields — the shared parameters (ranges of probabilities,
//! positive steps, group-size divisibility) and the hooks each kind uses for its own.

use serde_json::Value;

use crate::manifest::params::declared_parameters;
use crate::manifest::Resources;
use crate::stages::FieldChecks;

/// Checks the shared fields of a resolved stage config (as JSON).
pub(crate) fn check_shared(config: &Value, checks: &mut FieldChecks<'_>) {
    let number = |field: &str| config.get(field).and_then(Value::as_f64);
    for declared in declared_parameters() {
        let (field, Some((range, hint))) = (declared.name, declared.range) else {
            continue;
        };
        // `epsilon_high` left out copies `epsilon`: report the range once, at `epsilon`.
        if field == "epsilon_high" && number("epsilon_high") == number("epsilon") {
            continue;
        }
        if let Some(x) = number(field) {
            if !range.contains(x) {
                checks.error(
                    field,
                    format!("`{field}` must be {}, not {x}", range.describe()),
                    hint,
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
