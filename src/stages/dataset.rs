//! Stage kind `dataset`: materialises an entry of `datasets:` (a task generator or a JSONL
//! file) into prompts with a fixed train/test split and a prompt template.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::{Input, Need, Output, StageConfig};
use crate::check::FieldChecks;
use crate::exec::{InputSpec, StageContext, StageError, StageOutput};
use crate::manifest::{DatasetDecl, RecordShape};
use crate::records::{self, DatasetRecord};
use crate::tasks;

/// A built-in prompt template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateName {
    /// The R1-Zero template: the user asks, the assistant reasons in `<think>` and answers
    /// in `<answer>`; the response starts pre-filled with "Let me solve this step by
    /// step.\n<think>".
    R1Zero,
    /// The tokenizer's chat template (a HuggingFace `chat_template`), or r1flow's built-in
    /// `<|user|>`/`<|assistant|>` turns for built-in tokenizers.
    Chat,
    /// The question alone, as written.
    Plain,
}

/// How a record becomes the text the model sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PromptTemplate {
    /// `r1_zero`, `chat` or `plain`.
    Named(TemplateName),
    /// A template of your own with `{question}` (and any other record field in braces).
    Custom {
        /// The prompt text, e.g. "Q: {question}\nA: <think>".
        user: String,
    },
}

/// Size of the held-out test split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TestSize {
    /// A number of records (an integer ≥ 1), or a fraction in (0, 1).
    Number(f64),
}

/// `kind: dataset` — the prompts (and answers, solutions or preference pairs) of one
/// declared dataset, shuffled by seed and split into train and test sets that never overlap.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetStage {
    /// The entry of `datasets:` to read.
    pub source: String,
    /// Prompt template. Default `r1_zero`.
    #[serde(default = "DatasetStage::default_template")]
    pub template: PromptTemplate,
    /// Held-out records: an integer count, or a fraction in (0, 1). Default 0.1.
    #[serde(default = "DatasetStage::default_test_size")]
    pub test_size: TestSize,
    /// Keep at most this many records (before splitting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Shuffle before splitting. Default true.
    #[serde(default = "DatasetStage::default_shuffle")]
    pub shuffle: bool,
    /// Seed of generation and shuffling; defaults to the manifest's `seed`. Set it to keep
    /// the data fixed across a seed ablation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl DatasetStage {
    fn default_template() -> PromptTemplate {
        PromptTemplate::Named(TemplateName::R1Zero)
    }
    fn default_test_size() -> TestSize {
        TestSize::Number(0.1)
    }
    fn default_shuffle() -> bool {
        true
    }
}

impl StageConfig for DatasetStage {
    const KIND: &'static str = "dataset";
    const IMPLEMENTATION: u32 = 1;

    fn inputs(&self) -> Vec<Input<'_>> {
        vec![Input {
            field: "source",
            name: &self.source,
            need: Need::Source,
        }]
    }

    fn output(&self, inputs: &[Output]) -> Output {
        match inputs.first() {
            Some(Output::Dataset(shape)) => Output::Dataset(*shape),
            _ => Output::Dataset(RecordShape::Prompts),
        }
    }

    fn check(&self, checks: &mut FieldChecks<'_>) {
        let TestSize::Number(size) = self.test_size;
        let valid = (size > 0.0 && size < 1.0) || (size >= 1.0 && size.fract() == 0.0);
        checks.ensure(
            valid,
            "test_size",
            format!("`test_size` must be a fraction in (0, 1) or a whole count ≥ 1, not {size}"),
            "write e.g. `test_size: 0.1` (10%) or `test_size: 200` (records)",
        );
        if let PromptTemplate::Custom { user } = &self.template {
            checks.ensure(
                user.contains("{question}"),
                "template.user",
                "a custom template must contain `{question}`",
                "write where the question goes, e.g. `user: \"Q: {question}\\nA:\"`",
            );
        }
        if let Some(limit) = self.limit {
            checks.ensure(
                limit > 0,
                "limit",
                "`limit` must be at least 1",
                "remove `limit` to keep every record",
            );
        }
    }

    fn runnable(&self) -> bool {
        true
    }

    /// Generates or reads the records, renders their prompts, and splits them; outputs
    /// `train.jsonl` and `test.jsonl` of `DatasetRecord`s.
    fn run(&self, context: &mut StageContext<'_>) -> Result<StageOutput, StageError> {
        let spec = context.spec();
        let seed = self.seed.unwrap_or_default();
        let Some(InputSpec::Source { decl, .. }) = spec.inputs.get("source") else {
            return Err(StageError::Failed("the dataset stage has no source".into()));
        };
        let failed = |e: &dyn std::fmt::Display| StageError::Failed(e.to_string());
        let rendered: Vec<DatasetRecord> = match decl {
            DatasetDecl::Jsonl(source) => {
                let path = spec.base_dir.join(&source.path);
                records::read_file(&path, source.format, &source.fields)
                    .map_err(StageError::Failed)?
                    .into_iter()
                    .map(|r| {
                        let mut fields = vec![("question", r.prompt.clone())];
                        if let Some(system) =
                            r.system.clone().or_else(|| source.system_prompt.clone())
                        {
                            fields.push(("system", system));
                        }
                        let prompt =
                            tasks::render(&self.template, &fields).map_err(|e| failed(&e))?;
                        Ok(DatasetRecord {
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
                        })
                    })
                    .collect::<Result<_, StageError>>()?
            }
            generated => tasks::generate(generated, seed)
                .ok_or_else(|| StageError::Failed("not a generated dataset".into()))?
                .map_err(|e| failed(&e))?
                .into_iter()
                .map(|example| {
                    let prompt = tasks::render(&self.template, &example.template_fields())
                        .map_err(|e| failed(&e))?;
                    Ok(DatasetRecord {
                        id: DatasetRecord::id_of(&example.question),
                        task: Some(example.task.clone()),
                        completion: Some(prompt.sft_target(&example.solution).to_string()),
                        question: example.question,
                        prompt: prompt.text,
                        response_prefix: prompt.response_prefix,
                        answer: Some(example.answer),
                        chosen: None,
                        rejected: None,
                    })
                })
                .collect::<Result<_, StageError>>()?,
        };
        let split = tasks::split(
            rendered,
            |r| r.question.as_str(),
            self.test_size,
            self.shuffle,
            seed,
            self.limit,
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
}
