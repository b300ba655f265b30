//! Check (resolved settings): the parameter groups several stage kinds share — training,
//! generation, policy optimisation — as `check` hands them to execution: plain values
//! with every default applied, no `Option` where the manifest had a default. A stage kind
//! resolves its config into these once, at check time; nothing below re-reads the
//! manifest's optional fields.

use serde::{Deserialize, Serialize};

use crate::manifest::params::{generation_params, policy_params, training_params};
use crate::manifest::Defaults;

/// A field that has no value after defaults were applied: neither the stage, nor
/// `defaults:`, nor the kind's built-in defaults set it. `check` reports it at the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unset {
    pub field: &'static str,
}

/// `value`, or the field it belongs to as `Unset`.
pub fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Unset> {
    value.ok_or(Unset { field })
}

/// How long a training stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingLength {
    /// `max_steps`: exactly this many optimizer steps.
    MaxSteps(u64),
    /// `num_train_epochs` passes over the training data.
    Epochs(f64),
}

/// The type a declared parameter resolves to: its own, or `Option` of it when it is
/// declared `as optional`.
macro_rules! resolved_type {
    ($ty:ty) => { $ty };
    ($ty:ty, optional) => { Option<$ty> };
}

/// What a declared parameter resolves to: its value, which must be set, or (`as
/// optional`) whatever is set.
macro_rules! resolved_value {
    ($value:expr, $field:expr) => {
        required($value, $field)?
    };
    ($value:expr, $field:expr, optional) => {
        $value
    };
}

/// Generates a group's resolved settings struct from its declarations (generator of the
/// group macros in `manifest::params`) — a field for each declaration with a `resolved`
/// name, plus the fields written here, each resolved by a function of the parameters —
/// and the `Defaults` method that resolves it, naming the first parameter left unset.
macro_rules! resolved_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, resolved by $method:ident {
            $( $(#[$extra_meta:meta])* $extra:ident : $extra_ty:ty = $extra_fn:expr, )*
        }
        $( $(#[doc = $doc:literal])* $field:ident : $ty:ty {
            default: $default:tt,
            range: $range:tt,
            key: $key:expr,
            resolved: [$($(#[$resolved_meta:meta])* $resolved:ident $(as $resolved_kind:ident)?)?],
        } )*
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(
                #[doc = concat!("`", stringify!($field), "`.")]
                $(#[$resolved_meta])*
                pub $resolved: resolved_type!($ty $(, $resolved_kind)?),
            )?)*
            $(
                $(#[$extra_meta])*
                pub $extra: $extra_ty,
            )*
        }

        impl Defaults {
            #[doc = concat!("The `", stringify!($name), "` these parameters resolve to.")]
            pub fn $method(&self) -> Result<$name, Unset> {
                Ok($name {
                    $($(
                        $resolved: resolved_value!(
                            self.$field.clone(), stringify!($field) $(, $resolved_kind)?
                        ),
                    )?)*
                    $( $extra: ($extra_fn)(self)?, )*
                })
            }
        }
    };
}

training_params!(resolved_settings {
    /// AdamW, schedule, batch and length settings of a training stage (TRL's
    /// `TrainingArguments` names in the manifest; short names here). Ranges are checked:
    /// batch sizes, accumulation, logging and save intervals are at least 1.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct TrainingSettings, resolved by training {
        /// `max_steps` when set, else `num_train_epochs`.
        length: TrainingLength = training_length,
    }
});

/// How long a training stage runs: `max_steps` wins over `num_train_epochs`.
fn training_length(params: &Defaults) -> Result<TrainingLength, Unset> {
    Ok(match params.max_steps {
        Some(steps) => TrainingLength::MaxSteps(steps),
        None => TrainingLength::Epochs(required(params.num_train_epochs, "num_train_epochs")?),
    })
}

impl TrainingSettings {
    /// Optimizer steps for `units` training units (examples, or prompts for GRPO) of which
    /// a step consumes `per_step`: `max_steps`, else epochs over the units, at least 1.
    pub fn total_steps(&self, units: usize, per_step: usize) -> u64 {
        match self.length {
            TrainingLength::MaxSteps(steps) => steps,
            TrainingLength::Epochs(epochs) => ((units as f64 * epochs) / per_step.max(1) as f64)
                .ceil()
                .max(1.0) as u64,
        }
    }

    /// Sequences per optimizer step.
    pub fn sequences_per_step(&self) -> usize {
        self.batch_size * self.accumulation
    }
}

generation_params!(resolved_settings {
    /// Sampling settings of a stage that generates.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct GenerationSettings, resolved by generation {}
});

policy_params!(resolved_settings {
    /// Policy-optimisation settings of `grpo` and `rlhf` (TRL's `GRPOConfig` names).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PolicySettings, resolved by policy {}
});

#[cfg(test)]
mod tests {
    use crate::check::{check_document, Capabilities};
    use crate::diag::{render_all, SourceFile};
    use crate::stages::ResolvedStage;
    use crate::syntax::parse;

    /// Every kind, written with only its required fields: the built-in defaults must
    /// leave no setting unresolved.
    const EVERY_KIND: &str = r#"
name: every-kind
models:
  tiny: {preset: tiny}
datasets:
  arith: {kind: arithmetic}
  prefs: {kind: jsonl, path: prefs.jsonl, format: preferences}
stages:
  tasks: {kind: dataset, source: arith}
  base: {kind: pretrain, from: tiny, data: tasks}
  tuned: {kind: sft, from: base, data: tasks}
  rl: {kind: grpo, from: tuned, prompts: tasks, rewards: {accuracy: 1.0}}
  kept: {kind: rejection_sampling, from: rl, prompts: tasks, thresholds: {accuracy: 1.0}}
  judge: {kind: reward_model, from: base, data: prefs}
  human: {kind: rlhf, from: rl, prompts: tasks, rewards: {accuracy: 1.0}, reward_model: judge}
  student: {kind: distill, student: tiny, data: kept}
  scores: {kind: eval, from: human, prompts: tasks}
  out: {kind: export, from: student}
"#;

    #[test]
    fn every_kind_resolves_from_its_built_in_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("prefs.jsonl"),
            "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n",
        )
        .expect("write");
        let path = dir.path().join("m.yaml");
        let doc = parse(SourceFile::new(path.display().to_string(), EVERY_KIND))
            .unwrap_or_else(|d| panic!("{}", render_all(&d)));
        let checked = check_document(&doc, &Capabilities::any());
        assert!(
            !checked.has_errors(),
            "{}",
            render_all(&checked.diagnostics)
        );
        let stages = &checked.pipelines[0].stages;
        // Ten declared, and the implicit dataset stage of `prefs`.
        assert_eq!(stages.len(), 11);
        let ResolvedStage::Grpo(rl) = &stages["rl"].resolved else {
            panic!("rl is a grpo stage");
        };
        // TRL's GRPOConfig defaults, and clip-higher defaulting to a symmetric range.
        assert_eq!(rl.policy.num_generations, 8);
        assert_eq!(rl.policy.epsilon_high, rl.policy.epsilon);
        assert_eq!(rl.policy.sync_ref_model, 0);
        assert_eq!(rl.generation.top_k, 0);
    }
}
