//! Execute (stage kind `dataset`): materialises an entry of `datasets:` (a task generator
//! or a JSONL file) into prompts rendered with the stage's template and split into train
//! and test sets that never overlap. `template: chat` with `chat_template: MODEL` renders
//! with that checkpoint's own chat template.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exec::{StageContext, StageError, StageOutput};
use crate::manifest::DatasetDecl;
use crate::plan::InputSpec;
use crate::records::{self, DatasetRecord};
use crate::stages::Dataset;
use crate::stages::InputField;
use crate::tasks::{self, ChatTemplate};

/// Generates or reads the records, renders their prompts, and splits them; outputs
/// `train.jsonl` and `test.jsonl` of `DatasetRecord`s.
pub(super) fn run(
    settings: &Dataset,
    context: &mut StageContext<'_>,
) -> Result<StageOutput, StageError> {
    let spec = context.spec();
    let seed = settings.seed;
    let Some(InputSpec::Source { decl, .. }) = spec.input(InputField::Source) else {
        return Err(StageError::Failed("the dataset stage has no source".into()));
    };
    let failed = |e: &dyn std::fmt::Display| StageError::Failed(e.to_string());
    let chat = match spec.input(InputField::ChatTemplate) {
        Some(InputSpec::Model { name, decl }) => {
            let dir = spec
                .base_dir
                .join(decl.path.as_deref().unwrap_or(Path::new("")));
            Some(
                ChatTemplate::from_checkpoint(&dir)
                    .map_err(|e| failed(&e))?
                    .ok_or_else(|| {
                        StageError::Failed(format!("checkpoint `{name}` has no chat template"))
                    })?,
            )
        }
        _ => None,
    };
    // Every record's prompt in one batch: one child process for a chat template.
    let rendered: Vec<DatasetRecord> = match decl {
        DatasetDecl::Jsonl(source) => {
            let path = spec.base_dir.join(&source.path);
            let mut read = records::read_file(&path, source.format, &source.fields)
                .map_err(StageError::Failed)?;
            let mut fields = Vec::with_capacity(read.len());
            for (i, r) in read.iter_mut().enumerate() {
                if let (Some(extractor), Some(answer)) = (source.extract_answer, &r.answer) {
                    let reference = tasks::extract_reference(extractor, answer).map_err(|e| {
                        StageError::Failed(format!("{}: record {} {e}", path.display(), i + 1))
                    })?;
                    r.answer = Some(reference);
                }
                let mut own = vec![("question", r.prompt.clone())];
                if let Some(system) = r.system.clone().or_else(|| source.system_prompt.clone()) {
                    own.push(("system", system));
                }
                fields.push(own);
            }
            let prompts =
                tasks::render_all(&settings.template, chat.as_ref(), &fields).map_err(|f| {
                    StageError::Failed(format!(
                        "{}: record {}: {}",
                        path.display(),
                        f.index + 1,
                        f.error
                    ))
                })?;
            read.into_iter()
                .zip(prompts)
                .map(|(r, prompt)| DatasetRecord {
                    id: DatasetRecord::id_of(&r.prompt),
                    task: None,
                    completion: r
                        .completion
                        .as_deref()
                        .map(|c| prompt.sft_target(c).to_string()),
                    question: r.prompt,
                    prompt: prompt.text,
                    response_prefix: prompt.response_prefix,
                    answer: r.answer,
                    chosen: r.chosen,
                    rejected: r.rejected,
                    tests: r.tests,
                    entry_point: r.entry_point,
                })
                .collect()
        }
        generated => {
            let examples = tasks::generate(generated, seed)
                .ok_or_else(|| StageError::Failed("not a generated dataset".into()))?
                .map_err(|e| failed(&e))?;
            let fields: Vec<_> = examples.iter().map(|e| e.template_fields()).collect();
            let prompts =
                tasks::render_all(&settings.template, chat.as_ref(), &fields).map_err(|f| {
                    StageError::Failed(format!("generated example {}: {}", f.index + 1, f.error))
                })?;
            examples
                .into_iter()
                .zip(prompts)
                .map(|(example, prompt)| DatasetRecord {
                    id: DatasetRecord::id_of(&example.question),
                    task: Some(example.task.clone()),
                    completion: Some(prompt.sft_target(&example.solution).to_string()),
                    question: example.question,
                    prompt: prompt.text,
                    response_prefix: prompt.response_prefix,
                    answer: Some(example.answer),
                    chosen: None,
                    rejected: None,
                    tests: None,
                    entry_point: None,
                })
                .collect()
        }
    };
    let split = tasks::split(
        rendered,
        |r| r.question.as_str(),
        settings.test_size,
        settings.shuffle,
        seed,
        settings.limit,
    )
    .map_err(|e| failed(&e))?;
    let metrics = BTreeMap::from([
        ("records_train".to_string(), split.train.len() as f64),
        ("records_test".to_string(), split.test.len() as f64),
        (
            "duplicates_dropped".to_string(),
            split.duplicates_dropped as f64,
        ),
    ]);
    context.progress(
        1,
        1,
        &format!("{} train / {} test", split.train.len(), split.test.len()),
    );
    Ok(StageOutput {
        files: vec![
            (
                "train.jsonl".to_string(),
                records::to_jsonl(&split.train).map_err(|e| failed(&e))?,
            ),
            (
                "test.jsonl".to_string(),
                records::to_jsonl(&split.test).map_err(|e| failed(&e))?,
            ),
        ],
        metrics,
    })
}
