//! Check and execute (the `dataset` stage): where a checkpoint's chat template is rendered
//! — the seam between the front end, which decides what to render (check's probes, a
//! dataset stage's records), and the binary, which decides where.
//!
//! A chat template is a program a checkpoint brings. [`ChatTemplate::render_in_process`]
//! bounds what it can: a fuel of MiniJinja steps, a budget on the builtins, a cap on the
//! output. MiniJinja's operators (`~`, `+`, `*`) have no hook, so a template that doubles
//! a string in a loop or a recursive macro can still exhaust the memory of the process
//! rendering it, or spin in a loop of huge copies. The `r1flow` binary therefore
//! installs a [`ChatRenderer`] that renders in a child process under OS limits
//! (`r1flow::chat_isolation`), before it runs any command; the in-process renderer is
//! what remains when none is installed — this crate's unit tests and library users who
//! choose it. Every rendering goes through [`render_all`], a batch at a time, so that a
//! dataset stage's records cost one child process, not one per record.

use std::sync::OnceLock;

use super::chat_template::{ChatMessage, ChatTemplate};
use super::error::TaskError;

/// Renders conversations with a chat template.
pub trait ChatRenderer: Send + Sync {
    /// Renders every conversation of `batch`, in order, each with the opening of the
    /// assistant's turn when `batch.add_generation_prompt`; stops at the first that
    /// fails and says which it was.
    fn render_all(&self, batch: &RenderBatch<'_>) -> Result<Vec<String>, RenderFailure>;
}

/// What one call renders: a template and the conversations to render with it.
#[derive(Debug, Clone, Copy)]
pub struct RenderBatch<'a> {
    pub template: &'a ChatTemplate,
    pub conversations: &'a [Vec<ChatMessage>],
    pub add_generation_prompt: bool,
}

/// The conversation of a batch that did not render, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderFailure {
    /// Its position in the batch (from 0).
    pub index: usize,
    pub error: TaskError,
}

/// Renders in this process, bounded by the template's fuel, builtin budget and output
/// cap only: what the core crate's tests use, and what a child process runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl ChatRenderer for InProcess {
    fn render_all(&self, batch: &RenderBatch<'_>) -> Result<Vec<String>, RenderFailure> {
        batch
            .conversations
            .iter()
            .enumerate()
            .map(|(index, messages)| {
                batch
                    .template
                    .render_in_process(messages, batch.add_generation_prompt)
                    .map_err(|error| RenderFailure { index, error })
            })
            .collect()
    }
}

static INSTALLED: OnceLock<Box<dyn ChatRenderer>> = OnceLock::new();

/// Makes `renderer` the one every chat template of this process is rendered by, as
/// `log::set_logger` sets a logger: once, before anything renders. Returns false (and
/// keeps the first) when one was installed already.
pub fn install(renderer: Box<dyn ChatRenderer>) -> bool {
    INSTALLED.set(renderer).is_ok()
}

/// Whether a renderer other than [`InProcess`] was installed.
pub fn is_installed() -> bool {
    INSTALLED.get().is_some()
}

/// Renders `conversations` with `template` through the installed renderer ([`InProcess`]
/// when none is).
pub fn render_all(
    template: &ChatTemplate,
    conversations: &[Vec<ChatMessage>],
    add_generation_prompt: bool,
) -> Result<Vec<String>, RenderFailure> {
    let batch = RenderBatch {
        template,
        conversations,
        add_generation_prompt,
    };
    match INSTALLED.get() {
        Some(renderer) => renderer.render_all(&batch),
        None => InProcess.render_all(&batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_stops_at_the_first_failure_and_names_it() {
        let template = ChatTemplate::new(
            "{% if messages[0].content == 'bad' %}{{ raise_exception('no') }}{% endif %}\
             [{{ messages[0].content }}]",
            Default::default(),
        )
        .expect("compiles");
        let turns = |text: &str| vec![ChatMessage::new("user", text)];
        assert_eq!(
            render_all(&template, &[turns("a"), turns("b")], false),
            Ok(vec!["[a]".to_string(), "[b]".to_string()])
        );
        let failure = render_all(&template, &[turns("a"), turns("bad"), turns("c")], false)
            .expect_err("the second fails");
        assert_eq!(failure.index, 1);
        assert_eq!(failure.error.to_string(), "chat template: no");
    }
}
