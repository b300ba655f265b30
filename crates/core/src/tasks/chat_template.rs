//! Check and execute (the `dataset` stage): a checkpoint's own chat template — the Jinja
//! template a HuggingFace tokenizer carries (`chat_template` in tokenizer_config.json, or
//! `chat_template.jinja` beside it, as newer transformers writes it) — read, compiled and
//! rendered the way transformers' `apply_chat_template(tokenize=False)` renders it.
//!
//! transformers renders in a sandboxed Jinja2 environment with `trim_blocks` and
//! `lstrip_blocks`, the loop-controls extension, a `raise_exception` global and the
//! tokenizer's special tokens (`bos_token`, `eos_token`, …) as variables; MiniJinja is set
//! up the same way, and minijinja-contrib's pycompat supplies the Python string and dict
//! methods templates call (`.strip()`, `.startswith()`, `.items()`). `strftime_now` is
//! deliberately absent: templates that use it when defined (Llama 3.1+) then fall back to
//! their fixed date, so a rendering never depends on the day it runs.
//!
//! A template is a program a checkpoint brings: every rendering is bounded in work (a
//! fuel of MiniJinja steps: nested loops cannot spin `validate` forever; and a budget of
//! what the builtins walk and build, [`super::chat_budget`]: one `|join` or `|sum` of a
//! huge lazy sequence cannot either) and in output (what `{{ … }}` writes, captured or
//! not, and the rendered text), so that a hostile or broken template is an error naming
//! the bound, not a hang or an aborted allocation. MiniJinja's operators (`~`, `+`, `*`,
//! `in`) run without a hook; `*` on a string stops at 100 MB a call, the others only at
//! what their operands hold — so a string doubled in a loop, or by a recursive macro,
//! grows until the process's memory runs out. That is why renderings are asked of
//! [`super::chat_render`], whose renderer in the binary is a child process under OS
//! limits on memory and CPU time; the bounds here stay the first line, which names the
//! loop, the builtin or the output that went too far.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use super::chat_budget::{self, Budget, MAX_BUILTIN_WORK};
use super::error::TaskError;

/// The file newer transformers versions write the template to.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// The tokenizer's settings, where older versions keep the template.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// Special tokens a template may name, as transformers passes them.
const SPECIAL_TOKENS: [&str; 4] = ["bos_token", "eos_token", "pad_token", "unk_token"];
/// Largest template file read (real ones are a few KB; Qwen's with tools ~5 KB).
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;
/// The most MiniJinja steps one rendering may take. Real templates render a system and a
/// user turn in a few hundred (Llama 3's, the longest of the fixtures, under 1000); three
/// nested `range(100000)` loops would take 10^15.
const MAX_FUEL: u64 = 1_000_000;
/// The fewest steps a rendering gets, however long the template.
const MIN_FUEL: u64 = 10_000;
/// Template text a rendering may copy out, in all: each step writes at most the
/// template's length of literal text (captured by `{% set %}` blocks or not), so a long
/// template gets fewer steps — `fuel × length` stays within this.
const MAX_LITERAL_BYTES: u64 = 1 << 30;
/// The most a rendering may write: what `{{ … }}` prints (inside `{% set %}` blocks
/// too), and the rendered prompt. A prompt holds one record (at most 1 MiB) and a system
/// prompt; a template writing more is broken or hostile.
pub const MAX_RENDERED_BYTES: usize = 16 << 20;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A checkpoint's chat template with the special tokens it is rendered with. Everything
/// that changes a rendering is in here, so its [`ChatTemplate::fingerprint`] is what a
/// cache key needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// `bos_token`, `eos_token`, … → their text, as the tokenizer config gives them.
    pub special_tokens: BTreeMap<String, String>,
}

impl ChatTemplate {
    /// A template from its source and special tokens; fails when it does not compile.
    pub fn new(
        source: impl Into<String>,
        special_tokens: BTreeMap<String, String>,
    ) -> Result<Self, TaskError> {
        let template = Self {
            source: source.into(),
            special_tokens,
        };
        let env = environment();
        env.template_from_str(&template.source)
            .map_err(|e| chat_error(&e))?;
        Ok(template)
    }

    /// The chat template of the checkpoint directory `dir`: `chat_template.jinja` when it
    /// exists, else `chat_template` of tokenizer_config.json (a string, or a list of named
    /// templates of which `default` is taken). `Ok(None)` when it has none.
    pub fn from_checkpoint(dir: &Path) -> Result<Option<Self>, TaskError> {
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let config: serde_json::Value = if config_path.is_file() {
            let text = read_limited(&config_path)?;
            serde_json::from_str(&text).map_err(|e| TaskError::ChatTemplate {
                message: format!("{}: {e}", config_path.display()),
            })?
        } else {
            serde_json::Value::Null
        };
        let jinja_path = dir.join(CHAT_TEMPLATE_FILE);
        let source = if jinja_path.is_file() {
            Some(read_limited(&jinja_path)?)
        } else {
            match config.get("chat_template") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            }
        };
        let Some(source) = source else {
            return Ok(None);
        };
        let special_tokens = SPECIAL_TOKENS
            .iter()
            .filter_map(|name| {
                let value = config.get(*name)?;
                // A plain string, or an AddedToken object with its `content`.
                let text = value
                    .as_str()
                    .or_else(|| value.get("content").and_then(|c| c.as_str()))?;
                Some((name.to_string(), text.to_string()))
            })
            .collect();
        Self::new(source, special_tokens).map(Some)
    }

    /// Renders `messages` here, in this process; with `add_generation_prompt`, ends with
    /// the opening of the assistant's turn (what a prompt for sampling needs). Bounded in
    /// work and output: past either bound the rendering stops with an error naming it.
    /// What MiniJinja's operators build is not bounded here: renderings a user asks for
    /// go through [`super::chat_render::render_all`], which the binary runs in a child
    /// process under OS limits.
    pub fn render_in_process(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TaskError> {
        if self.source.trim().is_empty() {
            return Err(TaskError::ChatTemplate {
                message: "the template is empty, so every prompt would render as nothing".into(),
            });
        }
        let printed = Arc::new(AtomicUsize::new(0));
        let mut env = environment();
        let fuel = fuel_for(&self.source);
        env.set_fuel(Some(fuel));
        let budget = Arc::new(Budget::default());
        chat_budget::guard(&mut env, &budget);
        // The template's own `raise_exception("…")`, told apart from MiniJinja's errors of
        // the same kind (`repeated string is too large`), which are located instead.
        let raised = Arc::new(AtomicBool::new(false));
        let raising = Arc::clone(&raised);
        env.add_function(
            "raise_exception",
            move |message: String| -> Result<Value, minijinja::Error> {
                raising.store(true, Ordering::Relaxed);
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        let counter = Arc::clone(&printed);
        env.set_formatter(move |out, state, value| {
            // Counted as it is written, so that printing a huge value stops at the bound
            // (a `{% set %}` block's capture grows too), and written as the default
            // formatter writes it (strings as they are; the rest as Display writes it).
            if let Some(text) = value.as_str() {
                let total = counter
                    .fetch_add(text.len(), Ordering::Relaxed)
                    .saturating_add(text.len());
                if total > MAX_RENDERED_BYTES {
                    return Err(minijinja::Error::new(
                        ErrorKind::WriteFailure,
                        TOO_MUCH_OUTPUT,
                    ));
                }
                return minijinja::escape_formatter(out, state, value);
            }
            let mut counted = CountedOutput {
                out,
                printed: &counter,
            };
            std::fmt::Write::write_fmt(&mut counted, format_args!("{value}"))
                .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, TOO_MUCH_OUTPUT))
        });
        let template = env
            .template_from_str(&self.source)
            .map_err(|e| chat_error(&e))?;
        let mut context: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, text) in &self.special_tokens {
            context.insert(name.as_str(), Value::from(text.as_str()));
        }
        context.insert("messages", Value::from_serialize(messages));
        context.insert("add_generation_prompt", Value::from(add_generation_prompt));
        let mut out = BoundedOutput::default();
        match template.render_captured_to(context, &mut out) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::OutOfFuel => {
                return Err(TaskError::ChatTemplate {
                    message: format!(
                        "the template did too much work: rendering one prompt took more than \
                         {fuel} steps (real chat templates take a few hundred; look for \
                         nested or long loops)"
                    ),
                })
            }
            Err(e) if budget.refused().is_some() => {
                let builtin = budget.refused().unwrap_or_default();
                let line = e.line().map_or(String::new(), |l| format!(" on line {l}"));
                let at = e
                    .range()
                    .and_then(|range| self.source.get(range))
                    .map(str::trim)
                    .filter(|text| !text.is_empty())
                    .map_or(String::new(), |text| format!(" (at `{}`)", excerpt(text)));
                return Err(TaskError::ChatTemplate {
                    message: format!(
                        "the template did too much work: `{builtin}`{line}{at} would take its \
                         filters and methods past {} of values walked or built for one prompt \
                         (real chat templates use a few KB; look for huge ranges, repeated \
                         sequences or strings, and joins or replacements that multiply text)",
                        crate::user_file::human_bytes(MAX_BUILTIN_WORK)
                    ),
                });
            }
            Err(_) if out.overflowed || printed.load(Ordering::Relaxed) > MAX_RENDERED_BYTES => {
                return Err(TaskError::ChatTemplate {
                    message: format!(
                        "the template wrote more than {}, the most one prompt may be",
                        crate::user_file::human_bytes(MAX_RENDERED_BYTES as u64)
                    ),
                })
            }
            Err(e) => {
                return Err(chat_error_in(
                    &e,
                    &self.source,
                    raised.load(Ordering::Relaxed),
                ))
            }
        }
        String::from_utf8(out.bytes).map_err(|e| TaskError::ChatTemplate {
            message: format!("the rendering is not UTF-8 text: {e}"),
        })
    }

    /// What a cache key holds of this template: its source and special tokens, hashed.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!(
            "chat_template:{}",
            blake3::hash(json.as_bytes()).to_hex().as_str()
        )
    }
}

/// An environment configured as transformers configures Jinja2 for chat templates.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env
}

/// The detail of the formatter's error when `{{ … }}` printed too much.
const TOO_MUCH_OUTPUT: &str = "the template printed too much";

/// The steps a rendering of `source` may take: [`MAX_FUEL`], fewer for a long template so
/// that the literal text it can copy out stays within [`MAX_LITERAL_BYTES`].
fn fuel_for(source: &str) -> u64 {
    let len = (source.len() as u64).max(1);
    (MAX_LITERAL_BYTES / len).clamp(MIN_FUEL, MAX_FUEL)
}

/// A template's output that counts what `{{ … }}` prints and fails past
/// [`MAX_RENDERED_BYTES`], which stops the value's `Display` part-way.
struct CountedOutput<'a, 'b> {
    out: &'a mut minijinja::Output<'b>,
    printed: &'a AtomicUsize,
}

impl std::fmt::Write for CountedOutput<'_, '_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let total = self
            .printed
            .fetch_add(text.len(), Ordering::Relaxed)
            .saturating_add(text.len());
        if total > MAX_RENDERED_BYTES {
            return Err(std::fmt::Error);
        }
        self.out.write_str(text)
    }
}

/// Where a rendering writes: an in-memory buffer that refuses to grow past
/// [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(io::Error::other(TOO_MUCH_OUTPUT));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rendering error, with the part of `source` that failed where MiniJinja's own message
/// does not say it: "undefined value" becomes "`tools.name` is undefined (line 3)".
fn chat_error_in(error: &minijinja::Error, source: &str, raised: bool) -> TaskError {
    let failed = error
        .range()
        .and_then(|range| source.get(range))
        .map(|text| text.trim())
        .filter(|text| !text.is_empty());
    match (error.kind(), failed) {
        (ErrorKind::UndefinedError, Some(expression)) => TaskError::ChatTemplate {
            message: format!(
                "`{}` is undefined{}",
                excerpt(expression),
                error
                    .line()
                    .map_or(String::new(), |l| format!(" (line {l})"))
            ),
        },
        (ErrorKind::InvalidOperation, _) if raised && error.detail().is_some() => chat_error(error),
        (_, Some(expression)) => {
            let TaskError::ChatTemplate { mut message } = chat_error(error) else {
                return chat_error(error);
            };
            if let (Some(line), false) = (error.line(), message.contains("(in ")) {
                message.push_str(&format!(" (line {line})"));
            }
            TaskError::ChatTemplate {
                message: format!("{message}, at `{}`", excerpt(expression)),
            }
        }
        _ => chat_error(error),
    }
}

/// At most 80 characters of a template's text, on one line.
fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = line.chars().take(80).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

fn chat_error(error: &minijinja::Error) -> TaskError {
    // A template's own `raise_exception("…")` carries the message its author wrote.
    let message = match (error.kind(), error.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        _ => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        }
    };
    TaskError::ChatTemplate { message }
}

fn read_limited(path: &Path) -> Result<String, TaskError> {
    let failed = |message: String| TaskError::ChatTemplate {
        message: format!("{}: {message}", path.display()),
    };
    let bytes = crate::user_file::read(path, MAX_TEMPLATE_BYTES).map_err(|e| match e {
        crate::user_file::UserFileError::TooLarge { limit } => failed(format!(
            "more than the {limit} bytes a tokenizer config or chat template may have"
        )),
        other => failed(other.to_string()),
    })?;
    String::from_utf8(bytes).map_err(|e| failed(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case of `tests/fixtures/chat_templates/expected.json`, written by
    /// `scripts/make_chat_template_fixture.py` from transformers' `apply_chat_template`.
    #[derive(serde::Deserialize)]
    struct Case {
        template: String,
        messages: Vec<BTreeMap<String, String>>,
        add_generation_prompt: bool,
        text: Option<String>,
        error: Option<String>,
    }

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chat_templates")
    }

    #[test]
    fn renders_as_transformers_does() {
        let expected = std::fs::read_to_string(fixtures().join("expected.json")).expect("fixture");
        let cases: Vec<Case> = serde_json::from_str(&expected).expect("cases");
        assert!(cases.len() >= 6, "the fixture has cases");
        let mut seen = std::collections::BTreeSet::new();
        for (i, case) in cases.iter().enumerate() {
            let template = ChatTemplate::from_checkpoint(&fixtures().join(&case.template))
                .expect("reads")
                .expect("has a template");
            seen.insert(case.template.clone());
            let messages: Vec<ChatMessage> = case
                .messages
                .iter()
                .map(|m| ChatMessage::new(&m["role"], &m["content"]))
                .collect();
            let rendered = template.render_in_process(&messages, case.add_generation_prompt);
            match (&case.text, &case.error) {
                (Some(text), _) => assert_eq!(
                    rendered.as_ref().ok(),
                    Some(text),
                    "case {i} ({}): {rendered:?}",
                    case.template
                ),
                (None, Some(error)) => {
                    let got = rendered.expect_err("transformers raised").to_string();
                    assert!(got.contains(error.as_str()), "case {i}: {got}");
                }
                (None, None) => panic!("case {i} has neither text nor error"),
            }
        }
        for name in ["chatml", "llama3", "jinja_file"] {
            assert!(seen.contains(name), "no case for {name}");
        }
    }

    #[test]
    fn a_checkpoint_without_a_template_has_none_and_bad_ones_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(ChatTemplate::from_checkpoint(dir.path()), Ok(None));
        std::fs::write(
            dir.path().join(TOKENIZER_CONFIG_FILE),
            r#"{"chat_template": "{% for m in messages %}{{ m.content }"}"#,
        )
        .expect("write");
        let error = ChatTemplate::from_checkpoint(dir.path()).expect_err("does not compile");
        assert!(error.to_string().starts_with("chat template: "), "{error}");
    }

    fn render_source(source: &str) -> Result<String, TaskError> {
        ChatTemplate::new(source, BTreeMap::new())?
            .render_in_process(&[ChatMessage::new("user", "What is 2 + 3?")], true)
    }

    #[test]
    fn nested_loops_run_out_of_fuel_instead_of_spinning() {
        let started = std::time::Instant::now();
        let error = render_source(
            "{% for a in range(100000) %}{% for b in range(100000) %}\
             {% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}",
        )
        .expect_err("too much work");
        assert!(error.to_string().contains("did too much work"), "{error}");
        assert!(
            started.elapsed().as_secs() < 10,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn output_is_bounded_printed_captured_or_literal() {
        for source in [
            // a big list, printed: stopped as it is written
            "{% for i in range(1000) %}{{ range(100000) }}{% endfor %}",
            // printed: 100 MB strings, over and over
            "{% for i in range(1000) %}{{ 'x' * 100000000 }}{% endfor %}",
            // captured by a set block, never printed
            "{% set s %}{% for i in range(1000) %}{{ 'x' * 100000000 }}{% endfor %}{% endset %}",
            // literal text of the template, copied out in a loop
            format!(
                "{{% for i in range(100000) %}}{}{{% endfor %}}",
                "y".repeat(4096)
            )
            .as_str(),
        ] {
            let error = render_source(source).expect_err("too much output");
            let text = error.to_string();
            assert!(
                text.contains("wrote more than 16 MiB") || text.contains("did too much work"),
                "{text}"
            );
        }
    }

    /// Builtins whose work is not VM steps: each walks or builds in proportion to its
    /// arguments, so a one-step call on a huge lazy sequence or string is refused before
    /// it starts, and so is a loop of calls that add up (the budget is per rendering).
    #[test]
    fn builtins_are_bounded_in_total_work_and_memory() {
        for source in [
            // huge lazy sequences, consumed by one filter
            "{{ (range(100000) * 100000)|list|length }}",
            "{{ (range(100000) * 100000)|join }}",
            "{{ (range(100000) * 100000)|length }}",
            "{{ (range(100000) * 100000)|sum }}",
            "{{ (range(100000) * 100000)|tojson }}",
            "{{ -1 is in (range(100000) * 100000) }}",
            "{{ ','.join(range(100000) * 100000) }}",
            // joins and replacements that multiply text
            "{{ range(100000)|join('x' * 100000000) }}",
            "{{ ('x' * 10000)|replace('x', 'y' * 100000) }}",
            "{{ ('x' * 10000).replace('x', 'y' * 100000) }}",
            "{{ ('x' * 100000000).split('x')|length }}",
            "{{ 'x'|indent(1000000000) }}",
            "{{ '%1000000000s'|format('x') }}",
            "{{ '%*s'|format(1000000000, 'x') }}",
            "{{ [1]|slice(1000000000)|list }}",
            // growth through a namespace, one builtin call a step
            "{% set ns = namespace(s='x' * 1000000) %}{% for i in range(40) %}\
             {% set ns.s = '%s%s'|format(ns.s, ns.s) %}{% endfor %}{{ ns.s|length }}",
            // many cheap-looking calls that add up
            "{% for i in range(100000) %}{% set x = range(100000)|join(',') %}{% endfor %}",
            "{% for i in range(1000) %}{% set x = range(100000)|reverse|sort|list %}{% endfor %}",
        ] {
            let started = std::time::Instant::now();
            let error = render_source(source).expect_err("too much work");
            let text = error.to_string();
            assert!(
                text.contains("the template did too much work: `")
                    && text.contains("past 64 MiB of values walked or built"),
                "{source}: {text}"
            );
            assert!(text.contains(" on line 1 (at `"), "{source}: {text}");
            assert!(
                started.elapsed().as_secs() < 5,
                "{source}: took {:?}",
                started.elapsed()
            );
        }
        // MiniJinja's own bounds on one call are located too.
        for (source, message) in [
            ("{{ range(10**9)|list }}", "range has too many elements"),
            ("{{ 'a' * 10**9 }}", "repeated string is too large"),
            (
                "{{ 'ab' * 100000 * 100000 }}",
                "repeated string is too large",
            ),
        ] {
            let text = render_source(source).expect_err("refused").to_string();
            assert!(
                text.contains(message) && text.contains("(line 1), at `"),
                "{source}: {text}"
            );
        }
    }

    #[test]
    fn the_budget_error_names_the_builtin_and_its_line() {
        let error = render_source("{{ bos_token }}\n{{ range(100000)|join('x' * 100000000) }}")
            .expect_err("too much work");
        insta::assert_snapshot!(error.to_string(), @"chat template: the template did too much work: `|join` on line 2 (at `join('x' * 100000000)`) would take its filters and methods past 64 MiB of values walked or built for one prompt (real chat templates use a few KB; look for huge ranges, repeated sequences or strings, and joins or replacements that multiply text)");
    }

    /// What real templates do with a 1 MiB record stays far inside the budget: filters
    /// with keyword arguments still work through the guards.
    #[test]
    fn real_work_on_a_large_record_stays_inside_the_budget() {
        let template = ChatTemplate::new(
            "{% for m in messages %}{% set c = m.content %}\
             {% if '</think>' in c %}{% set c = c.split('</think>')[-1].strip() %}{% endif %}\
             <|{{ m.role|upper }}|>{{ c|trim|replace('\\n\\n', '\\n') }}\
             {{ messages|length }}{{ (messages|selectattr('role', 'eq', 'user')|list|length) }}\
             {{ messages|tojson(indent=2)|length }}{{ m|dictsort|length }}{% endfor %}",
            BTreeMap::new(),
        )
        .expect("compiles");
        let record = "word and a line\n\n".repeat(60_000);
        let rendered = template
            .render_in_process(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", &record),
                ],
                true,
            )
            .expect("renders");
        assert!(
            rendered.contains("<|USER|>word and a line\nword"),
            "{}",
            &rendered[..200]
        );
    }

    #[test]
    fn empty_templates_and_undefined_names_are_named() {
        let error = render_source("  \n").expect_err("empty");
        assert!(
            error.to_string().contains("the template is empty"),
            "{error}"
        );
        let error = render_source("{{ tools.name }}").expect_err("undefined");
        assert!(
            error.to_string().contains("`tools.name` is undefined"),
            "{error}"
        );
        let raised = "{% if messages[0].role == 'system' %}\
                      {{ raise_exception('System role not supported') }}{% endif %}";
        let template = ChatTemplate::new(raised, BTreeMap::new()).expect("compiles");
        let error = template
            .render_in_process(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", "Hi"),
                ],
                true,
            )
            .expect_err("raises");
        assert_eq!(
            error.to_string(),
            "chat template: System role not supported"
        );
    }

    #[test]
    fn real_templates_stay_far_inside_the_fuel() {
        for name in ["chatml", "llama3", "jinja_file"] {
            let template = ChatTemplate::from_checkpoint(&fixtures().join(name))
                .expect("reads")
                .expect("has a template");
            let mut env = environment();
            env.set_fuel(Some(MIN_FUEL / 10));
            let compiled = env.template_from_str(&template.source).expect("compiles");
            let messages = [
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "What is 2 + 3?"),
            ];
            let mut context: BTreeMap<&str, Value> = BTreeMap::new();
            for (token, text) in &template.special_tokens {
                context.insert(token.as_str(), Value::from(text.as_str()));
            }
            context.insert("messages", Value::from_serialize(messages));
            context.insert("add_generation_prompt", Value::from(true));
            compiled
                .render(context)
                .unwrap_or_else(|e| panic!("{name} needs more than {} steps: {e}", MIN_FUEL / 10));
        }
    }

    #[test]
    fn fingerprints_follow_the_source_and_tokens() {
        let a = ChatTemplate::new("{{ bos_token }}", BTreeMap::new()).expect("compiles");
        let mut tokens = BTreeMap::new();
        tokens.insert("bos_token".to_string(), "<s>".to_string());
        let b = ChatTemplate::new("{{ bos_token }}", tokens).expect("compiles");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(b.render_in_process(&[], false).as_deref(), Ok("<s>"));
    }
}
