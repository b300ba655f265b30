//! Check → plan → execute: the config fields by which a stage names another declaration
//! (`from:`, `prompts:` …), as one type. Kinds declare their inputs with it, the plan keys
//! a stage's inputs by it, and runners ask for an input with it, so that a misspelt or
//! renamed input is a compile error instead of a look-up that finds nothing at run time.

use std::fmt;

/// A field of a stage that names its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputField {
    /// The model a stage starts from, samples or exports.
    From,
    /// The dataset stage whose prompts a stage samples.
    Prompts,
    /// The dataset stage a stage trains on.
    Data,
    /// The entry of `datasets:` a dataset stage reads.
    Source,
    /// The checkpoint whose chat template renders a dataset stage's prompts.
    ChatTemplate,
    /// The frozen model of GRPO's and RLHF's KL term.
    Reference,
    /// Distillation's student.
    Student,
    /// Distillation's teacher (logits mode).
    Teacher,
    /// RLHF's reward model.
    RewardModel,
}

impl InputField {
    /// The field's name, as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::From => "from",
            Self::Prompts => "prompts",
            Self::Data => "data",
            Self::Source => "source",
            Self::ChatTemplate => "chat_template",
            Self::Reference => "reference",
            Self::Student => "student",
            Self::Teacher => "teacher",
            Self::RewardModel => "reward_model",
        }
    }
}

impl fmt::Display for InputField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
