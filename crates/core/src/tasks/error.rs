//! Execute (the `dataset` stage): why a task cannot be generated, a template cannot be
//! rendered, or records cannot be split.

use std::fmt;

/// A task, template or split that cannot be produced, with the setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// A task setting outside what the generator supports.
    Setting {
        task: &'static str,
        field: &'static str,
        message: String,
    },
    /// No item satisfying the settings was found in many attempts.
    Unreachable { task: &'static str, message: String },
    /// A custom template names a field records do not have.
    UnknownField { field: String, known: Vec<String> },
    /// A custom template names a field that would leak the reference answer.
    HiddenField { field: String },
    /// A custom template with a `{` or `}` that is not part of a `{field}` or escape.
    BadTemplate { message: String },
    /// Too few records for the requested test split.
    TooFewRecords { records: usize, test: usize },
    /// A checkpoint's chat template that cannot be read, compiled or rendered.
    ChatTemplate { message: String },
    /// A chat template whose rendering went past the OS limits of the process rendering
    /// it (memory, CPU time, the wall clock): what the in-process bounds do not reach.
    ChatTemplateLimit { message: String },
}

#[cfg(test)]
impl TaskError {
    /// The setting a `check` refused, if it refused one: what the generators' tests ask.
    pub(crate) fn refused_setting(checked: Result<(), Self>) -> Option<&'static str> {
        match checked {
            Err(Self::Setting { field, .. }) => Some(field),
            _ => None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting {
                task,
                field,
                message,
            } => write!(f, "{task} task: `{field}`: {message}"),
            Self::Unreachable { task, message } => write!(f, "{task} task: {message}"),
            Self::UnknownField { field, known } => write!(
                f,
                "template field `{{{field}}}` is not a record field; the fields are: {}",
                known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::HiddenField { field } => write!(
                f,
                "template field `{{{field}}}` is not available in prompts: it would show \
                 the model the reference answer"
            ),
            Self::BadTemplate { message } => write!(f, "template: {message}"),
            Self::TooFewRecords { records, test } => write!(
                f,
                "{records} distinct records cannot be split into a test set of {test} and a \
                 non-empty train set; lower `test_size` or add records"
            ),
            Self::ChatTemplate { message } | Self::ChatTemplateLimit { message } => {
                write!(f, "chat template: {message}")
            }
        }
    }
}

impl std::error::Error for TaskError {}
