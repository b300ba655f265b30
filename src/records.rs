//! Check (and later execute): the JSONL records r1flow reads — prompts with answers, SFT
//! pairs, preference pairs — their schemas (published in `schemas/`) and a validator that
//! reports malformed lines as `file:line:col`.

use std::path::Path;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Location, SourceFile, Span};
use crate::manifest::JsonlFormat;

/// A reference answer: text, or a number (kept as written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Answer {
    Text(String),
    Number(serde_json::Number),
}

/// One line of a `format: prompts` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "r1flow prompt record")]
pub struct PromptRecord {
    /// The question.
    pub prompt: String,
    /// The reference answer the `accuracy` reward checks against. Prompts without one are
    /// general prompts (scored by a reward model in `rlhf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// A system prompt for this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// One line of a `format: sft` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "r1flow SFT record")]
pub struct SftRecord {
    /// The question.
    pub prompt: String,
    /// The response to imitate (for R1-style data: `<think>…</think><answer>…</answer>`).
    pub completion: String,
    /// The reference answer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// A system prompt for this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// One line of a `format: preferences` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "r1flow preference record")]
pub struct PreferenceRecord {
    /// The question.
    pub prompt: String,
    /// The better response.
    pub chosen: String,
    /// The worse response.
    pub rejected: String,
    /// A system prompt for this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// The record fields of a format (what `fields:` may map).
pub fn fields_of(format: JsonlFormat) -> &'static [&'static str] {
    match format {
        JsonlFormat::Prompts => &["prompt", "answer", "system"],
        JsonlFormat::Sft => &["prompt", "completion", "answer", "system"],
        JsonlFormat::Preferences => &["prompt", "chosen", "rejected", "system"],
    }
}

/// At most this many bad lines are reported per file; the rest are counted.
const MAX_REPORTED: usize = 20;

/// Checks every line of a JSONL file against the record type of `format`, after renaming
/// the file's fields per `fields` (`record_field → file_field`). Blank lines are skipped.
pub fn validate_file(
    path: &Path,
    format: JsonlFormat,
    fields: &IndexMap<String, String>,
) -> Vec<Diagnostic> {
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                return vec![Diagnostic::error(format!(
                    "`{}` is not UTF-8 text (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ))]
            }
        },
        Err(e) => {
            return vec![Diagnostic::error(format!(
                "cannot read `{}`: {e}",
                path.display()
            ))]
        }
    };
    let file = SourceFile::new(path, text);
    let mut diagnostics = Vec::new();
    let mut bad = 0usize;
    for (index, line) in file.text().lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Err((col, message, help)) = check_line(line, format, fields) {
            bad += 1;
            if bad <= MAX_REPORTED {
                diagnostics.push(
                    Diagnostic::error(format!("{} record: {message}", format_name(format)))
                        .at(Some(Location::new(&file, Span::new(index + 1, col, 1))))
                        .with_help(help),
                );
            }
        }
    }
    if bad > MAX_REPORTED {
        diagnostics.push(Diagnostic::error(format!(
            "`{}`: {} more malformed lines not shown",
            path.display(),
            bad - MAX_REPORTED
        )));
    }
    diagnostics
}

fn format_name(format: JsonlFormat) -> &'static str {
    match format {
        JsonlFormat::Prompts => "prompt",
        JsonlFormat::Sft => "sft",
        JsonlFormat::Preferences => "preference",
    }
}

/// Parses one line into its record; on failure, the column and a message and help.
fn check_line(
    line: &str,
    format: JsonlFormat,
    fields: &IndexMap<String, String>,
) -> Result<(), (usize, String, String)> {
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        (
            e.column().max(1),
            format!("invalid JSON: {e}"),
            "each line holds one JSON object".to_string(),
        )
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err((
            1,
            "a line must be a JSON object".into(),
            "e.g. {\"prompt\": \"…\", \"answer\": \"…\"}".into(),
        ));
    };
    for (record_field, file_field) in fields {
        if let Some(v) = object.remove(file_field) {
            object.insert(record_field.clone(), v);
        }
    }
    let column_of = |field: &str| -> usize {
        let file_field = fields.get(field).map(String::as_str).unwrap_or(field);
        line.find(&format!("\"{file_field}\""))
            .map(|i| line[..i].chars().count() + 1)
            .unwrap_or(1)
    };
    let result = match format {
        JsonlFormat::Prompts => {
            serde_path_to_error::deserialize::<_, PromptRecord>(&value).map(|_| ())
        }
        JsonlFormat::Sft => serde_path_to_error::deserialize::<_, SftRecord>(&value).map(|_| ()),
        JsonlFormat::Preferences => {
            serde_path_to_error::deserialize::<_, PreferenceRecord>(&value).map(|_| ())
        }
    };
    result.map_err(|e| {
        let message = e.inner().to_string();
        let field = e.path().to_string();
        if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            let mapped = fields.get(missing).map(|f| format!(" (mapped from `{f}`)")).unwrap_or_default();
            (1, format!("missing field `{missing}`{mapped}"), format!("add `{missing}`, or map your field name to it with `fields: {{{missing}: YOUR_FIELD}}`"))
        } else {
            (column_of(&field), format!("`{field}`: {message}"), format!("see schemas/{}.schema.json", format_name(format)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_renamed_fields_and_reports_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"1+1\", \"answer\": 2}\n\n{\"question\": 3}\nnot json\n",
        )
        .expect("write");
        let fields = IndexMap::from([("prompt".to_string(), "question".to_string())]);
        let diagnostics = validate_file(&path, JsonlFormat::Prompts, &fields);
        let lines: Vec<usize> = diagnostics
            .iter()
            .filter_map(|d| d.location.as_ref().map(|l| l.span.line))
            .collect();
        assert_eq!(lines, vec![3, 4]);
    }
}
