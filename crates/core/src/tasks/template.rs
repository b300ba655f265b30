//! Execute (the `dataset` stage): rendering a record into the text the model sees, per the
//! stage's `template` — `r1_zero`, `chat`, `plain`, or a custom `{user: "…{question}…"}`.
//! `chat` renders the checkpoint's own chat template when the stage names one
//! (`chat_template: MODEL`), else r1flow's built-in `<|user|>`/`<|assistant|>` turns.
//!
//! A rendered prompt may end with the start of the response (R1-Zero pre-fills "Let me
//! solve this step by step.\n<think>"); that text is also returned as `response_prefix`,
//! because rewards must score the whole response — prefix plus generated text — to see
//! the `<think>` the model continued from.

use crate::manifest::{PromptTemplate, TemplateName};

use super::chat_render::{self, RenderFailure};
use super::chat_template::{ChatMessage, ChatTemplate};
use super::error::TaskError;

/// The instruction of DeepSeek-R1-Zero's template (R1 report, table 1).
pub const R1_ZERO_INSTRUCTION: &str = "A conversation between User and Assistant. The user \
asks a question, and the Assistant solves it. The assistant first thinks about the reasoning \
process in the mind and then provides the user with the answer. The reasoning process and \
answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., \
<think> reasoning process here </think> <answer> answer here </answer>.";

/// The response start R1-Zero-style prompts pre-fill (TinyZero's).
pub const R1_ZERO_PREFILL: &str = "Let me solve this step by step.\n<think>";

/// Fields a custom template may not use: they would show the model the answer.
const HIDDEN_FIELDS: &[&str] = &["answer", "solution", "completion", "chosen", "rejected"];

/// A record rendered for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The full prompt text, ending with `response_prefix`.
    pub text: String,
    /// The start of the response already written into the prompt ("" when none).
    pub response_prefix: String,
}

impl RenderedPrompt {
    /// The whole response to score: the pre-filled start and what the model generated.
    pub fn full_response(&self, generated: &str) -> String {
        format!("{}{generated}", self.response_prefix)
    }

    /// The part of a full worked solution (`<think>…</think> <answer>…</answer>`) that
    /// follows this prompt, for SFT: the solution minus the `<think>` the prompt already
    /// opened, when it did.
    pub fn sft_target<'s>(&self, solution: &'s str) -> &'s str {
        if self.response_prefix.ends_with("<think>") {
            solution.strip_prefix("<think>").unwrap_or(solution)
        } else {
            solution
        }
    }
}

/// Renders a record, given as its named fields (`question` first; `system` when the
/// record has a system prompt), with `template` (`chat` as r1flow's built-in turns).
pub fn render(
    template: &PromptTemplate,
    fields: &[(&str, String)],
) -> Result<RenderedPrompt, TaskError> {
    let question = question_of(fields)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    let system = field("system");
    let (text, response_prefix) = match template {
        PromptTemplate::Named(TemplateName::R1Zero) => (
            format!(
                "{}\nUser: {question}\nAssistant: {R1_ZERO_PREFILL}",
                system.unwrap_or(R1_ZERO_INSTRUCTION)
            ),
            R1_ZERO_PREFILL.to_string(),
        ),
        PromptTemplate::Named(TemplateName::Chat) => {
            let mut text = String::new();
            if let Some(system) = system {
                text.push_str(&format!("<|system|>\n{system}\n"));
            }
            text.push_str(&format!("<|user|>\n{question}\n<|assistant|>\n"));
            (text, String::new())
        }
        PromptTemplate::Named(TemplateName::Plain) => match system {
            Some(system) => (format!("{system}\n\n{question}"), String::new()),
            None => (question.to_string(), String::new()),
        },
        PromptTemplate::Custom { user } => {
            let (text, tail) = substitute(user, fields)?;
            (text, custom_prefix(tail))
        }
    };
    Ok(RenderedPrompt {
        text,
        response_prefix,
    })
}

/// Renders records, each given as its named fields, like [`render`]; `template: chat`
/// renders with `chat` when given — the system prompt (when any) as the system message,
/// the question as the user's, and the opening of the assistant's turn
/// (`add_generation_prompt`) — all records in one call of the chat renderer
/// ([`chat_render::render_all`]: in the binary, one child process under OS limits).
/// Stops at the first record that fails, and says which.
pub fn render_all(
    template: &PromptTemplate,
    chat: Option<&ChatTemplate>,
    records: &[Vec<(&str, String)>],
) -> Result<Vec<RenderedPrompt>, RenderFailure> {
    let (PromptTemplate::Named(TemplateName::Chat), Some(chat)) = (template, chat) else {
        return records
            .iter()
            .enumerate()
            .map(|(index, fields)| {
                render(template, fields).map_err(|error| RenderFailure { index, error })
            })
            .collect();
    };
    let conversations = records
        .iter()
        .enumerate()
        .map(|(index, fields)| {
            let question = question_of(fields).map_err(|error| RenderFailure { index, error })?;
            let mut messages = Vec::with_capacity(2);
            if let Some((_, system)) = fields.iter().find(|(n, _)| *n == "system") {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage::new("user", question));
            Ok(messages)
        })
        .collect::<Result<Vec<_>, RenderFailure>>()?;
    let texts = chat_render::render_all(chat, &conversations, true)?;
    Ok(texts
        .into_iter()
        .map(|text| RenderedPrompt {
            text,
            response_prefix: String::new(),
        })
        .collect())
}

/// The `question` of a record's fields.
fn question_of<'f>(fields: &'f [(&str, String)]) -> Result<&'f str, TaskError> {
    fields
        .iter()
        .find(|(n, _)| *n == "question")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| TaskError::UnknownField {
            field: "question".into(),
            known: fields.iter().map(|(n, _)| n.to_string()).collect(),
        })
}

/// Checks a custom template against the fields its records will have, before any data is
/// read.
pub fn check_custom(user: &str, known: &[&str]) -> Result<(), TaskError> {
    let fields: Vec<(&str, String)> = known.iter().map(|k| (*k, String::new())).collect();
    substitute(user, &fields).map(|_| ())
}

/// Substitutes `{field}`s (`{{` and `}}` write braces); also returns the template's text
/// after its last field.
fn substitute<'t>(
    template: &'t str,
    fields: &[(&str, String)],
) -> Result<(String, &'t str), TaskError> {
    let mut out = String::with_capacity(template.len());
    let mut tail_start = 0;
    let mut rest = template;
    let mut offset = 0;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let brace = &rest[i..];
        let consumed = if brace.starts_with("{{") {
            out.push('{');
            2
        } else if brace.starts_with("}}") {
            out.push('}');
            2
        } else if brace.starts_with('}') {
            return Err(TaskError::BadTemplate {
                message: format!(
                    "`}}` at {} closes nothing (write `}}}}` for a brace)",
                    offset + i
                ),
            });
        } else {
            let Some(end) = brace.find('}') else {
                return Err(TaskError::BadTemplate {
                    message: format!(
                        "`{{` at {} is never closed (write `{{{{` for a brace)",
                        offset + i
                    ),
                });
            };
            let name = brace[1..end].trim();
            if HIDDEN_FIELDS.contains(&name) {
                return Err(TaskError::HiddenField { field: name.into() });
            }
            let value = fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| TaskError::UnknownField {
                    field: name.into(),
                    known: fields.iter().map(|(n, _)| n.to_string()).collect(),
                })?;
            out.push_str(value);
            tail_start = offset + i + end + 1;
            end + 1
        };
        offset += i + consumed;
        rest = &rest[i + consumed..];
    }
    out.push_str(rest);
    Ok((out, &template[tail_start..]))
}

/// A custom template pre-fills the response when the text after its last field opens
/// `<think>` without closing it: the prefix is that text from `<think>` on.
fn custom_prefix(tail: &str) -> String {
    match tail.rfind("<think>") {
        Some(i) if !tail[i..].contains("</think>") => {
            tail[i..].replace("{{", "{").replace("}}", "}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(&'static str, String)> {
        vec![
            ("question", "What is 2 + 3?".to_string()),
            ("task", "arithmetic".to_string()),
        ]
    }

    fn custom(user: &str) -> PromptTemplate {
        PromptTemplate::Custom { user: user.into() }
    }

    #[test]
    fn r1_zero_prefills_the_response() {
        let rendered =
            render(&PromptTemplate::Named(TemplateName::R1Zero), &fields()).expect("renders");
        assert!(rendered
            .text
            .starts_with("A conversation between User and Assistant."));
        assert!(rendered.text.ends_with(
            "\nUser: What is 2 + 3?\nAssistant: Let me solve this step by step.\n<think>"
        ));
        assert_eq!(rendered.response_prefix, R1_ZERO_PREFILL);
        assert_eq!(
            rendered.full_response(" 5 </think> <answer> 5 </answer>"),
            "Let me solve this step by step.\n<think> 5 </think> <answer> 5 </answer>"
        );
        assert_eq!(rendered.sft_target("<think> x </think>"), " x </think>");
    }

    #[test]
    fn chat_and_plain() {
        let mut with_system = fields();
        with_system.push(("system", "Be brief.".into()));
        let chat = render(&PromptTemplate::Named(TemplateName::Chat), &with_system).expect("ok");
        assert_eq!(
            chat.text,
            "<|system|>\nBe brief.\n<|user|>\nWhat is 2 + 3?\n<|assistant|>\n"
        );
        assert_eq!(chat.response_prefix, "");
        let plain = render(&PromptTemplate::Named(TemplateName::Plain), &fields()).expect("ok");
        assert_eq!(plain.text, "What is 2 + 3?");
    }

    #[test]
    fn chat_renders_a_checkpoint_template_with_the_system_prompt() {
        let template = ChatTemplate::new(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}\
             {% if add_generation_prompt %}<assistant>{% endif %}",
            [("eos_token".to_string(), "</s>".to_string())].into(),
        )
        .expect("compiles");
        let mut with_system = fields();
        with_system.push(("system", "Be brief.".into()));
        let chat = PromptTemplate::Named(TemplateName::Chat);
        let rendered =
            render_all(&chat, Some(&template), &[with_system, fields()]).expect("renders");
        assert_eq!(
            rendered[0].text,
            "<system>Be brief.</s><user>What is 2 + 3?</s><assistant>"
        );
        assert_eq!(rendered[0].response_prefix, "");
        assert_eq!(rendered[1].text, "<user>What is 2 + 3?</s><assistant>");
    }

    #[test]
    fn custom_templates_substitute_fields_and_escape_braces() {
        let rendered = render(
            &custom("[{task}] Q: {question} {{x}}\nA: <think>"),
            &fields(),
        )
        .expect("renders");
        assert_eq!(
            rendered.text,
            "[arithmetic] Q: What is 2 + 3? {x}\nA: <think>"
        );
        assert_eq!(rendered.response_prefix, "<think>");
        let no_prefix = render(&custom("Q: {question}\nA:"), &fields()).expect("renders");
        assert_eq!(no_prefix.response_prefix, "");
    }

    #[test]
    fn custom_template_errors_name_the_problem() {
        assert_eq!(
            render(&custom("{question} {numbr}"), &fields()),
            Err(TaskError::UnknownField {
                field: "numbr".into(),
                known: vec!["question".into(), "task".into()]
            })
        );
        assert_eq!(
            render(&custom("{question} {answer}"), &fields()),
            Err(TaskError::HiddenField {
                field: "answer".into()
            })
        );
        assert!(matches!(
            render(&custom("{question"), &fields()),
            Err(TaskError::BadTemplate { .. })
        ));
        assert!(matches!(
            render(&custom("question}"), &fields()),
            Err(TaskError::BadTemplate { .. })
        ));
        assert!(check_custom("Q: {question} {target}", &["question", "target"]).is_ok());
        let message = check_custom("{qestion}", &["question"])
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            message,
            "template field `{qestion}` is not a record field; the fields are: {question}"
        );
    }
}
