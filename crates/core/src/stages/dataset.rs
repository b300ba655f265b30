//! Stage kind `dataset`: materialises an entry of `datasets:` (a task generator or a JSONL
//! file) into prompts with a fixed train/test split and a prompt template.

use super::kind_config::{default_true, kind_config};
use super::{FieldChecks, InputField, KindChecks, Need, Output};
use crate::manifest::{PromptTemplate, RecordShape, TemplateName, TestSize};

kind_config! {
    kind = "dataset", implementation = 1, output_of = Self::shape;

    /// `kind: dataset` — the prompts (and answers, solutions or preference pairs) of one
    /// declared dataset, shuffled by seed and split into train and test sets that never overlap.
    pub struct DatasetStage {
        /// The entry of `datasets:` to read.
        #[input(InputField::Source, Need::Source)]
        pub source: String,
        /// Prompt template. Default `r1_zero`.
        #[serde(default = "DatasetStage::default_template")]
        pub template: PromptTemplate,
        /// With `template: chat`: the checkpoint under `models:` whose own chat template
        /// (tokenizer_config.json's `chat_template`, or chat_template.jinja) renders the
        /// prompts. Without it, `chat` writes r1flow's built-in turns, which only models
        /// trained with the built-in tokenizer know.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[input(InputField::ChatTemplate, Need::ChatTemplate)]
        pub chat_template: Option<String>,
        /// Held-out records: an integer count, or a fraction in (0, 1). Default 0.1.
        #[serde(default = "DatasetStage::default_test_size")]
        pub test_size: TestSize,
        /// Keep at most this many records (before splitting).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<usize>,
        /// Shuffle before splitting. Default true.
        #[serde(default = "default_true")]
        pub shuffle: bool,
        /// Seed of generation and shuffling; defaults to the manifest's `seed`. Set it to keep
        /// the data fixed across a seed ablation.
        seed,
    }
    [resources]

    /// A checked `dataset` stage; its source is input `source`.
    resolved pub struct Dataset;
}

impl DatasetStage {
    fn default_template() -> PromptTemplate {
        PromptTemplate::Named(TemplateName::R1Zero)
    }
    fn default_test_size() -> TestSize {
        TestSize::Number(0.1)
    }

    /// Its records' shape: the source's (a JSONL file's), else prompts (a generator's).
    fn shape(&self, inputs: &[Output]) -> Output {
        match inputs.first() {
            Some(Output::Dataset(shape)) => Output::Dataset(*shape),
            _ => Output::Dataset(RecordShape::Prompts),
        }
    }
}

impl KindChecks for DatasetStage {
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
        checks.ensure(
            self.chat_template.is_none()
                || self.template == PromptTemplate::Named(TemplateName::Chat),
            "chat_template",
            "`chat_template` renders `template: chat`, but this stage's template is another",
            "set `template: chat`, or remove `chat_template:`",
        );
        checks.limit_at_least_one(self.limit, "remove `limit` to keep every record");
    }
}
