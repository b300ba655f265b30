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

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, ErrorKind, Value};
use serde::Serialize;

use super::error::TaskError;

/// The file newer transformers versions write the template to.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// The tokenizer's settings, where older versions keep the template.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// Special tokens a template may name, as transformers passes them.
const SPECIAL_TOKENS: [&str; 4] = ["bos_token", "eos_token", "pad_token", "unk_token"];
/// Largest template file read (real ones are a few KB; Qwen's with tools ~5 KB).
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    /// Renders `messages`; with `add_generation_prompt`, ends with the opening of the
    /// assistant's turn (what a prompt for sampling needs).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TaskError> {
        let env = environment();
        let template = env
            .template_from_str(&self.source)
            .map_err(|e| chat_error(&e))?;
        let mut context: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, text) in &self.special_tokens {
            context.insert(name.as_str(), Value::from(text.as_str()));
        }
        context.insert("messages", Value::from_serialize(messages));
        context.insert("add_generation_prompt", Value::from(add_generation_prompt));
        template.render(context).map_err(|e| chat_error(&e))
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
    let size = std::fs::metadata(path)
        .map_err(|e| failed(e.to_string()))?
        .len();
    if size > MAX_TEMPLATE_BYTES {
        return Err(failed(format!(
            "{size} bytes, more than the {MAX_TEMPLATE_BYTES} a tokenizer config may have"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
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
            let rendered = template.render(&messages, case.add_generation_prompt);
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

    #[test]
    fn fingerprints_follow_the_source_and_tokens() {
        let a = ChatTemplate::new("{{ bos_token }}", BTreeMap::new()).expect("compiles");
        let mut tokens = BTreeMap::new();
        tokens.insert("bos_token".to_string(), "<s>".to_string());
        let b = ChatTemplate::new("{{ bos_token }}", tokens).expect("compiles");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(b.render(&[], false).as_deref(), Ok("<s>"));
    }
}
