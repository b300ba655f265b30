//! Check: lengths against the model's context — every sequence a stage builds (prompt and
//! completion, or a training window) must fit in the positions its model was built for
//! (`max_position_embeddings`), so that no stage fails or silently degrades mid-run.

use indexmap::IndexMap;

use super::pipeline::{CheckedStage, Target};
use crate::architecture::ModelConfig;
use crate::diag::Diagnostic;
use crate::manifest::ModelDecl;
use crate::stages::{GenerationSettings, Need, Sequences};
use crate::syntax::{Document, YamlPath};

/// A model a stage reads: where it was declared and its architecture.
#[derive(Clone)]
pub(crate) struct ModelOf<'a> {
    pub name: &'a str,
    pub config: &'a ModelConfig,
    /// A preset (its context can be raised) rather than a checkpoint (fixed).
    pub preset: bool,
}

/// The input fields that name a stage's models, as its kind declares them (the first one
/// is what it trains or samples; a model-producing stage's output has that model's
/// architecture).
pub(crate) fn model_fields(stage: &CheckedStage) -> Vec<&'static str> {
    stage
        .decl
        .inputs()
        .into_iter()
        .filter(|input| matches!(input.need, Need::Model | Need::ModelInit))
        .map(|input| input.field.as_str())
        .collect()
}

/// The model behind input `field` of `stage`, following model-producing stages back to
/// the declaration under `models:`.
pub(crate) fn model_of<'a>(
    stages: &'a IndexMap<String, CheckedStage>,
    models: &'a Models<'a>,
    stage: &'a CheckedStage,
    field: &str,
    depth: usize,
) -> Option<ModelOf<'a>> {
    let binding = stage.bindings.iter().find(|b| b.field == field)?;
    match &binding.target {
        Target::Model(name) => Some(ModelOf {
            name,
            config: models.architectures.get(name)?,
            preset: models.decls.get(name).is_some_and(|m| m.path.is_none()),
        }),
        // Check has rejected cycles; the depth bound only guards this walk.
        Target::Stage(name) if depth < stages.len() => {
            let upstream = stages.get(name)?;
            let first = *model_fields(upstream).first()?;
            model_of(stages, models, upstream, first, depth + 1)
        }
        _ => None,
    }
}

/// The declared models and the architectures that resolved.
pub(crate) struct Models<'a> {
    pub decls: &'a IndexMap<String, ModelDecl>,
    pub architectures: &'a IndexMap<String, ModelConfig>,
}

/// Reports every stage whose sequences can outgrow a model it reads.
pub(crate) fn check_lengths(
    doc: &Document,
    stages: &IndexMap<String, CheckedStage>,
    models: &Models<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for stage in stages.values().filter(|s| !s.implicit) {
        let path = YamlPath::root().key("stages").key(stage.name.as_str());
        for field in model_fields(stage) {
            let Some(model) = model_of(stages, models, stage, field, 0) else {
                continue;
            };
            let positions = model.config.max_position_embeddings;
            let too_long = |length: usize| length > positions;
            let raise = if model.preset {
                format!(
                    "or raise `max_position_embeddings` of model `{}`",
                    model.name
                )
            } else {
                format!("as checkpoint `{}` was trained for no more", model.name)
            };
            match stage.resolved.sequences() {
                Some(Sequences::Window(length)) if too_long(length) => {
                    window_error(doc, &path, stage, &model, length, &raise, diagnostics)
                }
                Some(Sequences::Generated(generation)) => {
                    generation_error(doc, &path, stage, &model, generation, &raise, diagnostics)
                }
                _ => {}
            }
        }
    }
}

/// A stage whose job asks Slurm for memory (`resources.mem`) must get enough for the
/// weights of each model it loads: under `--executor slurm` that request, not the
/// submitting machine's memory, is what the stage has, and a job short of it is killed
/// after its wait in the queue. `resources` only matter to Slurm, but a request that
/// cannot hold the stage's own model is wrong wherever the manifest runs.
pub(crate) fn check_job_memory(
    doc: &Document,
    stages: &IndexMap<String, CheckedStage>,
    models: &Models<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    use super::declarations::{count, size};
    use crate::architecture::{TRAINING_BYTES, WEIGHT_BYTES};
    use crate::manifest::Resources;
    for stage in stages.values().filter(|s| !s.implicit) {
        let Some(mem) = stage.decl.resources().and_then(|r| r.mem.as_deref()) else {
            continue;
        };
        // A malformed `mem` is reported by the field checks.
        let Ok(job) = Resources::mem_bytes(mem) else {
            continue;
        };
        let largest = model_fields(stage)
            .iter()
            .filter_map(|field| model_of(stages, models, stage, field, 0))
            .max_by_key(|model| model.config.param_count());
        let Some(model) = largest else {
            continue;
        };
        let params = model.config.param_count();
        let weights = params.saturating_mul(WEIGHT_BYTES);
        if weights <= u128::from(job) {
            continue;
        }
        let path = YamlPath::root()
            .key("stages")
            .key(stage.name.as_str())
            .key("resources")
            .key("mem");
        diagnostics.push(
            Diagnostic::error(format!(
                "stage `{}`: its Slurm job asks for {} (`mem: {mem}`), less than the f32 \
                 weights alone of model `{}` ({} parameters: {}); training it takes about \
                 {} (weights, gradients and AdamW's two moments: 16 bytes a parameter)",
                stage.name,
                size(u128::from(job)),
                model.name,
                count(params),
                size(weights),
                size(params.saturating_mul(TRAINING_BYTES)),
            ))
            .at(Some(doc.value_location(&path)))
            .with_help(format!(
                "ask for more memory (`mem: {}G` or more), or choose a smaller model",
                weights.div_ceil(1 << 30)
            )),
        );
    }
}

/// A training window longer than the model's context.
fn window_error(
    doc: &Document,
    path: &YamlPath,
    stage: &CheckedStage,
    model: &ModelOf<'_>,
    length: usize,
    raise: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let positions = model.config.max_position_embeddings;
    diagnostics.push(
        Diagnostic::error(format!(
            "stage `{}`: `max_seq_length` {length} is longer than model `{}`'s context of \
             {positions} positions (max_position_embeddings)",
            stage.name, model.name
        ))
        .at(Some(doc.value_location(&path.key("max_seq_length"))))
        .with_help(format!(
            "set `max_seq_length: {positions}` or less, {raise}"
        )),
    );
}

/// A prompt plus completion that can outgrow the model's context.
fn generation_error(
    doc: &Document,
    path: &YamlPath,
    stage: &CheckedStage,
    model: &ModelOf<'_>,
    generation: &GenerationSettings,
    raise: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let positions = model.config.max_position_embeddings;
    let total = generation
        .max_prompt_length
        .saturating_add(generation.max_completion_length);
    if total <= positions {
        return;
    }
    let room = positions.saturating_sub(generation.max_prompt_length);
    diagnostics.push(
        Diagnostic::error(format!(
            "stage `{}`: a prompt and its completion can reach {total} tokens \
             (max_prompt_length {} + max_completion_length {}), more than model `{}`'s \
             context of {positions} positions (max_position_embeddings)",
            stage.name, generation.max_prompt_length, generation.max_completion_length, model.name
        ))
        .at(Some(doc.value_location(&path.key("max_completion_length"))))
        .with_help(if room > 0 {
            format!(
                "lower `max_completion_length` to {room} or less (or `max_prompt_length`), {raise}"
            )
        } else {
            format!("lower `max_prompt_length` below {positions} first, {raise}")
        }),
    );
}
