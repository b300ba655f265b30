//! Check: chat templates — a `dataset` stage's `chat_template:` must name a checkpoint
//! whose template reads and renders, and a stage that feeds a checkpoint with a chat
//! template prompts written in another format (r1flow's built-in turns, or another
//! checkpoint's template) is refused: an Instruct model prompted in the wrong format is a
//! silently broken experiment.

use std::path::Path;

use indexmap::IndexMap;

use super::context::{model_fields, model_of, Models};
use super::pipeline::{CheckedStage, Target};
use crate::diag::Diagnostic;
use crate::manifest::{DatasetDecl, PromptTemplate, TemplateName};
use crate::records;
use crate::stages::StageDecl;
use crate::syntax::{Document, YamlPath};
use crate::tasks::{chat_render, ChatMessage, ChatTemplate, TaskError};

/// A checkpoint's chat template, read once per check.
type Templates = IndexMap<String, Option<ChatTemplate>>;

/// A rendering a dataset stage's chat template is tried on: its turns, and what they
/// are when that matters to the message.
struct Probe {
    turns: Vec<ChatMessage>,
    context: Option<String>,
}

/// The renderings a dataset stage's chat template is tried on, as the stage will render
/// its records: the first record (with the source's `system_prompt`, if any), then the
/// first record with a `system` field of its own — templates that refuse a system message
/// (`raise_exception('System role not supported')`) fail only on those. A generated task
/// is tried on a question of its own.
fn probes(base_dir: &Path, source: Option<&DatasetDecl>) -> Vec<Probe> {
    let turns = |system: Option<&str>, question: &str| {
        let mut turns = Vec::new();
        if let Some(system) = system {
            turns.push(ChatMessage::new("system", system));
        }
        turns.push(ChatMessage::new("user", question));
        turns
    };
    let question = "What is 2 + 3?";
    let Some(DatasetDecl::Jsonl(source)) = source else {
        return vec![Probe {
            turns: turns(None, question),
            context: None,
        }];
    };
    let system_prompt = source.system_prompt.as_deref();
    let file = base_dir.join(&source.path);
    // Unreadable records are reported where the source is declared.
    let records = records::read_file(&file, source.format, &source.fields).unwrap_or_default();
    let mut probes = vec![Probe {
        turns: turns(
            system_prompt,
            records.first().map_or(question, |r| r.prompt.as_str()),
        ),
        context: None,
    }];
    if let Some((index, record, system)) = records
        .iter()
        .enumerate()
        .find_map(|(i, r)| Some((i, r, r.system.as_deref()?)))
    {
        probes.push(Probe {
            turns: turns(Some(system), &record.prompt),
            context: Some(format!(
                "record {} of `{}`, whose `system` field is a system message",
                index + 1,
                file.display()
            )),
        });
    }
    probes
}

/// Reads the chat template of every checkpoint a stage's prompts are rendered for or fed
/// to, and reports what would render wrongly.
pub(crate) fn check_chat_templates(
    doc: &Document,
    base_dir: &Path,
    stages: &IndexMap<String, CheckedStage>,
    datasets: &IndexMap<String, DatasetDecl>,
    models: &Models<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut templates: Templates = IndexMap::new();
    let mut template_of = |name: &str| -> Result<Option<ChatTemplate>, String> {
        if let Some(known) = templates.get(name) {
            return Ok(known.clone());
        }
        let Some(path) = models.decls.get(name).and_then(|m| m.path.as_ref()) else {
            return Ok(None);
        };
        let dir = base_dir.join(path);
        if !dir.is_dir() {
            // Reported where the model is declared.
            return Err(String::new());
        }
        let read = ChatTemplate::from_checkpoint(&dir).map_err(|e| e.to_string());
        if let Ok(template) = &read {
            templates.insert(name.to_string(), template.clone());
        }
        read
    };

    // Each dataset stage's own template: it must exist and render a prompt.
    for stage in stages.values() {
        let StageDecl::Dataset(config) = &stage.decl else {
            continue;
        };
        let Some(model) = &config.chat_template else {
            continue;
        };
        if !stage.bindings.iter().any(|b| b.field == "chat_template") {
            continue; // an unresolved name, reported where it was resolved
        }
        let at = doc.value_location(
            &YamlPath::root()
                .key("stages")
                .key(stage.name.as_str())
                .key("chat_template"),
        );
        let mut limit_hit = false;
        let problem = match template_of(model) {
            Err(error) if error.is_empty() => None,
            Err(error) => Some(format!("checkpoint `{model}`'s {error}")),
            Ok(None) => Some(format!(
                "checkpoint `{model}` has no chat template (neither chat_template.jinja nor \
                 `chat_template` in its tokenizer_config.json)"
            )),
            Ok(Some(template)) => {
                // One batch for the stage's probes: one child process in the binary.
                let probes = probes(base_dir, datasets.get(&config.source));
                let turns: Vec<Vec<ChatMessage>> = probes.iter().map(|p| p.turns.clone()).collect();
                chat_render::render_all(&template, &turns, true)
                    .err()
                    .map(|failure| {
                        if matches!(failure.error, TaskError::ChatTemplateLimit { .. }) {
                            limit_hit = true;
                        }
                        let error = failure.error;
                        match probes.get(failure.index).and_then(|p| p.context.as_ref()) {
                            None => format!("checkpoint `{model}`'s {error}"),
                            Some(context) => {
                                format!("checkpoint `{model}`'s {error}, rendering {context}")
                            }
                        }
                    })
            }
        };
        if let Some(problem) = problem {
            let help = if limit_hit {
                "the template is rendered in a process of its own whose memory and CPU time are \
                 limited, which stops what MiniJinja's operators build with no bound of their \
                 own: fix the template, or name a checkpoint whose template renders"
            } else if problem.contains("whose `system` field") {
                "the template refuses that system message: drop the `system` field from those \
                 records, or name a checkpoint whose template takes one"
            } else {
                "name a checkpoint whose tokenizer has a chat template, or use another \
                 `template:` (r1_zero, plain, or your own `{user: …}`)"
            };
            diagnostics.push(
                Diagnostic::error(format!("stage `{}`: {problem}", stage.name))
                    .at(Some(at))
                    .with_help(help),
            );
        }
    }

    // Each stage that feeds rendered prompts to a checkpoint with a chat template.
    for stage in stages.values() {
        let Some(&model_field) = model_fields(stage).first() else {
            continue;
        };
        let Some(model) = model_of(stages, models, stage, model_field, 0) else {
            continue;
        };
        if model.preset {
            continue;
        }
        let Ok(Some(wanted)) = template_of(model.name) else {
            continue;
        };
        for binding in &stage.bindings {
            let Target::Stage(data) = &binding.target else {
                continue;
            };
            let Some(data_stage) = stages.get(data) else {
                continue;
            };
            let StageDecl::Dataset(config) = &data_stage.decl else {
                continue;
            };
            if config.template != PromptTemplate::Named(TemplateName::Chat) {
                continue;
            }
            let rendered_for = config.chat_template.as_deref();
            let same = match rendered_for {
                None => false,
                Some(other) => {
                    other == model.name || matches!(template_of(other), Ok(Some(t)) if t == wanted)
                }
            };
            if same {
                continue;
            }
            let wrote = match rendered_for {
                None => "r1flow's built-in chat turns".to_string(),
                Some(other) => format!("checkpoint `{other}`'s chat template"),
            };
            diagnostics.push(
                Diagnostic::error(format!(
                    "stage `{}` gives checkpoint `{}` prompts written in {wrote}, not its own \
                     chat template",
                    stage.name, model.name
                ))
                .at(Some(
                    doc.value_location(
                        &YamlPath::root()
                            .key("stages")
                            .key(stage.name.as_str())
                            .key(binding.field.as_str()),
                    ),
                ))
                .with_related(
                    "the prompts are rendered here",
                    Some(
                        doc.value_location(
                            &YamlPath::root()
                                .key("stages")
                                .key(data.as_str())
                                .key("template"),
                        ),
                    ),
                )
                .with_help(format!(
                    "add `chat_template: {}` to stage `{data}`, so that `template: chat` \
                     renders the checkpoint's own template",
                    model.name
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::check::Capabilities;
    use crate::diag::{render_all, SourceFile};

    /// validate's path: a checkpoint whose template's builtins would walk a huge lazy
    /// sequence is refused at the stage's `chat_template:`, naming the builtin and its line.
    #[test]
    fn a_template_past_the_builtin_budget_is_refused_where_it_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/invalid/bounds/loops/config.json");
        std::fs::copy(fixture, dir.path().join("config.json")).expect("config");
        std::fs::write(
            dir.path()
                .join(crate::tasks::chat_template::CHAT_TEMPLATE_FILE),
            "{% for m in messages %}{{ m.content }}{% endfor %}\n\
             {{ (range(100000) * 100000)|join(', ') }}",
        )
        .expect("template");
        let manifest = format!(
            "name: budget\nmodels:\n  hostile: {{path: {}}}\n\
             datasets:\n  arith: {{kind: arithmetic}}\n\
             stages:\n  prompts: {{kind: dataset, source: arith, template: chat, \
             chat_template: hostile}}\n",
            dir.path().display()
        );
        let doc = crate::syntax::parse(SourceFile::new("m.yaml", manifest))
            .unwrap_or_else(|d| panic!("{}", render_all(&d)));
        let started = std::time::Instant::now();
        let text =
            render_all(&crate::check::check_document(&doc, &Capabilities::any()).diagnostics);
        assert!(
            started.elapsed().as_secs() < 5,
            "took {:?}",
            started.elapsed()
        );
        assert!(
            text.contains(
                "error: stage `prompts`: checkpoint `hostile`'s chat template: the template \
                 did too much work: `|join` on line 2 (at `join(', ')`)"
            ) && text.contains(" --> m.yaml:7:"),
            "{text}"
        );
    }
}
