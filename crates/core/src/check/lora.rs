//! Check: `lora:` of the training stages — a rank in range, PEFT module names, and only
//! what r1flow implements (no dropout, PEFT's default initialisation, no synced reference).

use super::suggest;
use crate::manifest::params::reference_is_synced;
use crate::manifest::{LoraInit, LoraSpec, LORA_ALL_LINEAR, LORA_TARGET_MODULES, MAX_LORA_RANK};
use crate::stages::FieldChecks;

/// Checks the `lora:` of a stage's config (as JSON), if it has one.
pub(crate) fn check(config: &serde_json::Value, checks: &mut FieldChecks<'_>) {
    let Some(params) = config.as_object() else {
        return;
    };
    let Some(value) = params.get("lora") else {
        return;
    };
    let Ok(spec) = serde_json::from_value::<LoraSpec>(value.clone()) else {
        return;
    };
    checks.ensure(
        (1..=MAX_LORA_RANK).contains(&spec.r),
        "lora.r",
        format!("`lora.r` must be in 1..={MAX_LORA_RANK}, not {}", spec.r),
        "the adapters' rank: PEFT's default is 8; 4 to 64 are usual",
    );
    checks.ensure(
        spec.alpha > 0.0,
        "lora.alpha",
        format!("`lora.alpha` must be greater than 0, not {}", spec.alpha),
        "the update is scaled by alpha / r: PEFT's default is 8, 2·r is common",
    );
    checks.ensure(
        spec.dropout == 0.0,
        "lora.dropout",
        format!(
            "`lora.dropout` is {}: dropout on the adapters is not implemented",
            spec.dropout
        ),
        "r1flow's adapters apply no dropout, so only `dropout: 0` (PEFT's default) trains as written; remove it",
    );
    if spec.init != LoraInit::Default(true) {
        let written = match &spec.init {
            LoraInit::Default(flag) => flag.to_string(),
            LoraInit::Named(name) => name.clone(),
        };
        checks.error(
            "lora.init",
            format!("`lora.init: {written}` is not implemented"),
            "only PEFT's default `init: true` (A Kaiming-uniform, B zero: the adapted model starts as the base) is; remove `init`",
        );
    }
    if spec.target_modules.is_empty() {
        checks.error(
            "lora.target_modules",
            "`lora.target_modules` is empty: no projection would get an adapter",
            format!("name PEFT modules (e.g. `[q_proj, v_proj]`) or `[{LORA_ALL_LINEAR}]`"),
        );
    }
    let mut known: Vec<&str> = LORA_TARGET_MODULES.to_vec();
    known.push(LORA_ALL_LINEAR);
    for (i, name) in spec.target_modules.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            checks.error(
                &format!("lora.target_modules[{i}]"),
                format!("`{name}` is not a module LoRA can target"),
                suggest::help_for(name, &known, "target module"),
            );
        }
    }
    if reference_is_synced(params) {
        checks.error(
            "sync_ref_model",
            "`sync_ref_model` with `lora:`: the reference model is the frozen base",
            "with LoRA the KL term compares against the base without its adapters, which never changes; remove `sync_ref_model` (or `lora:`)",
        );
    }
}
