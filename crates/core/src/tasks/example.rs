//! Execute (the `dataset` stage): one generated task item — the question, the reference
//! answer the `accuracy` reward checks, a worked solution in the R1 format for SFT and
//! checks, and the task's own metadata.

use serde::{Deserialize, Serialize};

use crate::records::{Answer, PromptRecord};

/// A generated task item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The task that made it: `countdown` or `arithmetic`.
    pub task: String,
    /// The question, as the user of the prompt template's `{question}` sees it.
    pub question: String,
    /// The reference answer. For Countdown it is a correct equation (such as
    /// `(44 + 19) + 35`): the accuracy reward reads the numbers and target from it.
    pub answer: String,
    /// A worked completion in the R1 format, `<think>…</think> <answer>…</answer>`.
    pub solution: String,
    /// Countdown's numbers and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countdown: Option<CountdownItem>,
}

/// The numbers and target of a Countdown item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountdownItem {
    pub numbers: Vec<u64>,
    pub target: u64,
}

impl Example {
    /// The fields a prompt template may use: `question`, `task`, and for Countdown
    /// `numbers` and `target`. The answer and solution are deliberately absent.
    pub fn template_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("question", self.question.clone()),
            ("task", self.task.clone()),
        ];
        if let Some(item) = &self.countdown {
            fields.push(("numbers", format_list(&item.numbers)));
            fields.push(("target", item.target.to_string()));
        }
        fields
    }

    /// The item as a prompt record (question and reference answer).
    pub fn to_prompt_record(&self) -> PromptRecord {
        PromptRecord {
            prompt: self.question.clone(),
            answer: Some(Answer::Text(self.answer.clone())),
            system: None,
            tests: None,
            entry_point: None,
        }
    }
}

/// `[44, 19, 35]`, as the Countdown prompt writes its numbers.
pub fn format_list(numbers: &[u64]) -> String {
    let items: Vec<String> = numbers.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}
