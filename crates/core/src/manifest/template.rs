//! Parse: how a dataset's records become the text a model sees — a built-in prompt
//! template (`r1_zero`, `chat`, `plain`) or the user's own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A built-in prompt template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateName {
    /// The R1-Zero template: the user asks, the assistant reasons in `<think>` and answers
    /// in `<answer>`; the response starts pre-filled with "Let me solve this step by
    /// step.\n<think>".
    R1Zero,
    /// A chat conversation: the system prompt (if any) and the question as the user's
    /// turn, then the opening of the assistant's. Rendered with the chat template of the
    /// checkpoint the stage names in `chat_template:` (its HuggingFace `chat_template`),
    /// else as r1flow's built-in `<|user|>`/`<|assistant|>` turns (built-in tokenizers).
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
