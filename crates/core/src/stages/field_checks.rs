//! Check (per stage kind): where a kind's own value rules report — each error located at
//! the field's value in the manifest, with the stage's name and a hint.

use super::MAX_SAMPLES_PER_PROMPT;
use crate::diag::Diagnostic;
use crate::syntax::{Document, YamlPath};

/// Collects the errors of one stage's fields, located at the field's value.
pub struct FieldChecks<'a> {
    doc: &'a Document,
    stage_path: YamlPath,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> FieldChecks<'a> {
    pub fn new(
        doc: &'a Document,
        stage_path: YamlPath,
        diagnostics: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Self {
            doc,
            stage_path,
            diagnostics,
        }
    }

    fn field_path(&self, field: &str) -> YamlPath {
        // `k[2]` style indices address sequence items.
        let mut path = self.stage_path.clone();
        for part in field.split('.') {
            match part.split_once('[') {
                Some((key, index)) => {
                    path = path.key(key);
                    if let Ok(i) = index.trim_end_matches(']').parse() {
                        path = path.index(i);
                    }
                }
                None => path = path.key(part),
            }
        }
        path
    }

    /// Reports `message` at `field` (a dotted path inside the stage) with a help line.
    pub fn error(&mut self, field: &str, message: impl Into<String>, help: impl Into<String>) {
        let path = self.field_path(field);
        let stage = self.stage_path.last_key().unwrap_or("?").to_string();
        self.diagnostics.push(
            Diagnostic::error(format!("stage `{stage}`: {}", message.into()))
                .at(Some(self.doc.value_location(&path)))
                .with_help(help),
        );
    }

    /// Reports an error unless `ok`.
    pub fn ensure(
        &mut self,
        ok: bool,
        field: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        if !ok {
            self.error(field, message, help);
        }
    }

    /// Reports a `max_seq_length` under 2: a training or scored sequence needs two tokens
    /// or more (`help` says what the kind's sequences are).
    pub fn sequence_length(&mut self, max_seq_length: usize, help: &str) {
        self.ensure(
            max_seq_length >= 2,
            "max_seq_length",
            "`max_seq_length` must be at least 2",
            help,
        );
    }

    /// Reports a `num_samples` outside 1..=`MAX_SAMPLES_PER_PROMPT`, with the kind's hint
    /// for too few and for too many.
    pub fn samples_per_prompt(&mut self, num_samples: usize, too_few: &str, too_many: &str) {
        self.ensure(
            num_samples >= 1,
            "num_samples",
            "`num_samples` must be at least 1",
            too_few,
        );
        self.ensure(
            num_samples <= MAX_SAMPLES_PER_PROMPT,
            "num_samples",
            format!("`num_samples` must be at most {MAX_SAMPLES_PER_PROMPT}, not {num_samples}"),
            too_many,
        );
    }

    /// Reports `lora:` on a kind that does not train adapters: `message` says so and `why`
    /// explains; the hint says how to remove it, a `defaults:` entry included.
    pub fn refuse_lora(&mut self, lora_set: bool, message: &str, why: &str) {
        self.ensure(
            !lora_set,
            "lora",
            message,
            format!(
                "{why}; remove `lora:` (a `defaults:` entry reaches every training stage: set it on the stages instead)"
            ),
        );
    }

    /// Reports `limit: 0`; `help` says what leaving `limit` out does.
    pub fn limit_at_least_one(&mut self, limit: Option<usize>, help: &str) {
        self.ensure(
            limit != Some(0),
            "limit",
            "`limit` must be at least 1",
            help,
        );
    }
}
