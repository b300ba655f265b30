//! Check: an `export` with `merge: false` writes the LoRA adapter of what it exports, so
//! that must carry one — a stage with `lora:`, or a model declared with `adapter:` —
//! and, when `base_model` is left out, the adapter's base is named for PEFT: the
//! checkpoint directory the adapter was trained on, as the manifest names it.

use indexmap::IndexMap;

use super::pipeline::{CheckedStage, Target};
use crate::diag::Diagnostic;
use crate::manifest::ModelDecl;
use crate::stages::{FieldChecks, InputField, ResolvedStage, StageDecl};
use crate::syntax::{Document, YamlPath};

/// The input fields a training stage's own model comes from (the model its adapter
/// is trained on).
const TRAINED_MODEL_FIELDS: [InputField; 2] = [InputField::From, InputField::Student];

fn target_of(stage: &CheckedStage, field: InputField) -> Option<&Target> {
    stage
        .bindings
        .iter()
        .find(|b| b.field == field.as_str())
        .map(|b| &b.target)
}

/// Whether a stage trains with adapters (`lora:` written on it or under `defaults:`).
fn has_lora(stage: &CheckedStage) -> bool {
    stage
        .decl
        .to_json()
        .get("lora")
        .is_some_and(|value| !value.is_null())
}

/// A checkpoint declaration's directory as the manifest writes it, when it is a plain
/// checkpoint (no adapter of its own: then the base is that checkpoint and the adapter
/// merged, which no directory holds).
fn checkpoint_name(models: &IndexMap<String, ModelDecl>, name: &str) -> Option<String> {
    let model = models.get(name)?;
    match (&model.path, &model.adapter) {
        (Some(path), None) => Some(path.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Reports `merge: false` on what has no adapter, and fills each such export's
/// `base_model` when it is left out and the base is a declared checkpoint.
pub(crate) fn check(
    doc: &Document,
    stages: &mut IndexMap<String, CheckedStage>,
    models: &IndexMap<String, ModelDecl>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut bases: Vec<(String, String)> = Vec::new();
    for (name, stage) in stages.iter() {
        let StageDecl::Export(export) = &stage.decl else {
            continue;
        };
        if export.merge {
            continue;
        }
        let path = YamlPath::root().key("stages").key(name.as_str());
        let mut checks = FieldChecks::new(doc, path, diagnostics);
        let base = match target_of(stage, InputField::From) {
            Some(Target::Stage(upstream)) => {
                let Some(upstream_stage) = stages.get(upstream) else {
                    continue;
                };
                if !has_lora(upstream_stage) {
                    checks.error(
                        "merge",
                        format!(
                            "`merge: false` exports a LoRA adapter, and stage `{upstream}` trains without `lora:`"
                        ),
                        format!(
                            "add `lora:` to stage `{upstream}` to train an adapter, or remove `merge: false` to export its whole model"
                        ),
                    );
                    continue;
                }
                TRAINED_MODEL_FIELDS
                    .iter()
                    .find_map(|field| target_of(upstream_stage, *field))
                    .and_then(|target| match target {
                        Target::Model(model) => checkpoint_name(models, model),
                        _ => None,
                    })
            }
            Some(Target::Model(model)) => {
                let Some(decl) = models.get(model) else {
                    continue;
                };
                if decl.adapter.is_none() {
                    checks.error(
                        "merge",
                        format!(
                            "`merge: false` exports a LoRA adapter, and model `{model}` is declared without `adapter:`"
                        ),
                        "export a stage that trains with `lora:`, or remove `merge: false` to export the whole model",
                    );
                    continue;
                }
                decl.path.as_ref().map(|p| p.to_string_lossy().into_owned())
            }
            _ => continue,
        };
        if let (None, Some(base)) = (&export.base_model, base) {
            bases.push((name.clone(), base));
        }
    }
    for (name, base) in bases {
        let Some(stage) = stages.get_mut(&name) else {
            continue;
        };
        if let StageDecl::Export(export) = &mut stage.decl {
            export.base_model = Some(base.clone());
        }
        if let ResolvedStage::Export(settings) = &mut stage.resolved {
            settings.base_model = Some(base);
        }
    }
}
