//! Check (per stage kind): where a kind's own value rules report — each error located at
//! the field's value in the manifest, with the stage's name and a hint.

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
}
