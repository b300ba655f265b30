//! Check (and later execute): the JSONL records r1flow reads — prompts with answers, SFT
//! pairs, preference pairs — their schemas (published in `schemas/`) and a validator that
//! reports malformed lines as `file:line:col`.

use std::io::Read as _;
use std::path::Path;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Location, SourceFile, Span};
use crate::manifest::JsonlFormat;
use crate::user_file::{self, human_bytes, BoundedLines, Line, UserFileError};

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
    /// What the `code` reward runs the completion's program against: a list of test
    /// statements (`assert f(2) == 4`), each one test, or one string holding a test
    /// program (HumanEval's `def check(candidate): …`), one test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
    /// The function the program must define; with a test program that defines
    /// `check`, the tests call `check(ENTRY_POINT)` (HumanEval's layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
}

/// The tests of a code problem (`tests` of a prompt record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Tests {
    /// Test statements, each run on its own (MBPP's `test_list`): the score counts them.
    Statements(Vec<String>),
    /// One test program (HumanEval's `test`), run as one test.
    Program(String),
}

impl Tests {
    /// How many tests there are: one per statement, one for a program.
    pub fn count(&self) -> usize {
        match self {
            Self::Statements(statements) => statements.len(),
            Self::Program(_) => 1,
        }
    }
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
        JsonlFormat::Prompts => &["prompt", "answer", "system", "tests", "entry_point"],
        JsonlFormat::Sft => &["prompt", "completion", "answer", "system"],
        JsonlFormat::Preferences => &["prompt", "chosen", "rejected", "system"],
    }
}

/// At most this many bad lines are reported per file; the rest are counted.
const MAX_REPORTED: usize = 20;

/// The longest JSONL record (one line) r1flow reads: 1 MiB. A long reasoning trace is
/// tens of kilobytes; a line far past that is a broken file, and parsing it would take
/// a hundred times its size in memory.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The largest JSONL file r1flow reads: 1 GiB (a dataset stage holds its records in
/// memory).
pub const MAX_JSONL_BYTES: u64 = 1 << 30;

/// The lines of the JSONL file `path`: opened as a regular file only, each line at most
/// `MAX_RECORD_BYTES`, and no more than `MAX_JSONL_BYTES + 1` bytes read (a caller that
/// counts past `MAX_JSONL_BYTES` knows the file is too large).
pub fn jsonl_lines(
    path: &Path,
) -> Result<BoundedLines<std::io::BufReader<std::io::Take<std::fs::File>>>, UserFileError> {
    let file = user_file::open(path)?;
    Ok(BoundedLines::new(
        std::io::BufReader::new(file.take(MAX_JSONL_BYTES + 1)),
        MAX_RECORD_BYTES as usize,
    ))
}

/// What reading a JSONL file found: its number of records, and every problem.
#[derive(Debug, Default)]
pub struct FileCheck {
    pub records: usize,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks every line of a JSONL file against the record type of `format`, after renaming
/// the file's fields per `fields` (`record_field → file_field`). Blank lines are skipped.
/// Whether the path is a readable regular file is the caller's to check and locate.
pub fn validate_file(
    path: &Path,
    format: JsonlFormat,
    fields: &IndexMap<String, String>,
) -> FileCheck {
    let mut check = FileCheck::default();
    let lines = match jsonl_lines(path) {
        Ok(lines) => lines,
        Err(e) => {
            check.diagnostics.push(Diagnostic::error(format!(
                "cannot read `{}`: {e}",
                path.display()
            )));
            return check;
        }
    };
    let mut bad = 0usize;
    let mut bytes_read: u64 = 0;
    for item in lines {
        let (number, line) = match item {
            Ok(item) => item,
            Err(e) => {
                check.diagnostics.push(Diagnostic::error(format!(
                    "cannot read `{}`: {e}",
                    path.display()
                )));
                break;
            }
        };
        let problem = match line {
            Line::Text(text) => {
                bytes_read += text.len() as u64 + 1;
                if text.trim().is_empty() {
                    continue;
                }
                match check_line(&text, format, fields) {
                    Ok(()) => {
                        check.records += 1;
                        None
                    }
                    Err((col, message, help)) => Some((
                        SourceFile::excerpt(path, number, text),
                        col,
                        format!("{} record: {message}", format_name(format)),
                        help,
                    )),
                }
            }
            Line::TooLong { bytes } => {
                bytes_read += bytes + 1;
                Some((
                    SourceFile::excerpt(path, number, String::new()),
                    1,
                    format!(
                        "{} record is longer than {}, the limit for one record",
                        format_name(format),
                        human_bytes(MAX_RECORD_BYTES)
                    ),
                    "one record per line; is this a JSONL file?".to_string(),
                ))
            }
            Line::NotUtf8 { col } => Some((
                SourceFile::excerpt(path, number, String::new()),
                col,
                "the line is not UTF-8 text".to_string(),
                "JSONL files are UTF-8 text".to_string(),
            )),
        };
        if let Some((file, col, message, help)) = problem {
            bad += 1;
            if bad <= MAX_REPORTED {
                check.diagnostics.push(
                    Diagnostic::error(message)
                        .at(Some(Location::new(&file, Span::new(number, col, 1))))
                        .with_help(help),
                );
            }
        }
    }
    if bytes_read > MAX_JSONL_BYTES {
        check.diagnostics.push(Diagnostic::error(format!(
            "`{}` is larger than {}, the limit for a JSONL file",
            path.display(),
            human_bytes(MAX_JSONL_BYTES)
        )));
    }
    if bad > MAX_REPORTED {
        check.diagnostics.push(Diagnostic::error(format!(
            "`{}`: {} more malformed lines not shown",
            path.display(),
            bad - MAX_REPORTED
        )));
    }
    check
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
        let diagnostics = validate_file(&path, JsonlFormat::Prompts, &fields).diagnostics;
        let lines: Vec<usize> = diagnostics
            .iter()
            .filter_map(|d| d.location.as_ref().map(|l| l.span.line))
            .collect();
        assert_eq!(lines, vec![3, 4]);
    }
}

/// One record of a dataset artifact (`train.jsonl`, `test.jsonl`): what the stages after a
/// `dataset` stage read. The prompt is already rendered with the stage's template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Stable id: the first 16 hex digits of blake3 over the question.
    pub id: String,
    /// The generator (`countdown`, `arithmetic`), or absent for a JSONL file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The question as written.
    pub question: String,
    /// The text the model sees (template applied), ending with `response_prefix`.
    pub prompt: String,
    /// The start of the response written into the prompt ("" when none); rewards score
    /// `response_prefix` + the generated text.
    #[serde(default)]
    pub response_prefix: String,
    /// The reference answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The completion to imitate, following `prompt` (SFT data, generated solutions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    /// Preference pairs: the better and the worse completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// Code problems: the tests the `code` reward runs, and the function they call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
}

impl DatasetRecord {
    /// The id of a question.
    pub fn id_of(question: &str) -> String {
        blake3::hash(question.as_bytes()).to_hex()[..16].to_string()
    }
}

impl Answer {
    /// The answer as text (numbers as written in the file).
    pub fn as_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Number(number) => number.to_string(),
        }
    }
}

/// A user record of any format, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub prompt: String,
    pub answer: Option<String>,
    pub system: Option<String>,
    pub completion: Option<String>,
    pub chosen: Option<String>,
    pub rejected: Option<String>,
    pub tests: Option<Tests>,
    pub entry_point: Option<String>,
}

/// Reads every record of a JSONL file (after `fields` renaming); the first malformed line
/// is an error naming `file:line`. Bounded as `validate_file` is; a file without records
/// is an error.
pub fn read_file(
    path: &Path,
    format: JsonlFormat,
    fields: &IndexMap<String, String>,
) -> Result<Vec<UserRecord>, String> {
    let lines = jsonl_lines(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut records = Vec::new();
    let mut bytes_read: u64 = 0;
    for item in lines {
        let (number, line) = item.map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let at = |message: String| format!("{}:{number}: {message}", path.display());
        let line = match line {
            Line::Text(text) => text,
            Line::TooLong { .. } => {
                return Err(at(format!(
                    "the record is longer than {}, the limit for one record",
                    human_bytes(MAX_RECORD_BYTES)
                )))
            }
            Line::NotUtf8 { col } => return Err(at(format!("not UTF-8 text at column {col}"))),
        };
        bytes_read += line.len() as u64 + 1;
        if bytes_read > MAX_JSONL_BYTES {
            return Err(format!(
                "`{}` is larger than {}, the limit for a JSONL file",
                path.display(),
                human_bytes(MAX_JSONL_BYTES)
            ));
        }
        let line = line.as_str();
        if line.trim().is_empty() {
            continue;
        }
        let mut value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("invalid JSON: {e}")))?;
        if let Some(object) = value.as_object_mut() {
            for (record_field, file_field) in fields {
                if let Some(v) = object.remove(file_field) {
                    object.insert(record_field.clone(), v);
                }
            }
        }
        let record = match format {
            JsonlFormat::Prompts => {
                let r: PromptRecord =
                    serde_json::from_value(value).map_err(|e| at(e.to_string()))?;
                UserRecord {
                    prompt: r.prompt,
                    answer: r.answer.map(|a| a.as_text()),
                    system: r.system,
                    completion: None,
                    chosen: None,
                    rejected: None,
                    tests: r.tests,
                    entry_point: r.entry_point,
                }
            }
            JsonlFormat::Sft => {
                let r: SftRecord = serde_json::from_value(value).map_err(|e| at(e.to_string()))?;
                UserRecord {
                    prompt: r.prompt,
                    answer: r.answer.map(|a| a.as_text()),
                    system: r.system,
                    completion: Some(r.completion),
                    chosen: None,
                    rejected: None,
                    tests: None,
                    entry_point: None,
                }
            }
            JsonlFormat::Preferences => {
                let r: PreferenceRecord =
                    serde_json::from_value(value).map_err(|e| at(e.to_string()))?;
                UserRecord {
                    prompt: r.prompt,
                    answer: None,
                    system: r.system,
                    completion: None,
                    chosen: Some(r.chosen),
                    rejected: Some(r.rejected),
                    tests: None,
                    entry_point: None,
                }
            }
        };
        records.push(record);
    }
    if records.is_empty() {
        return Err(format!("`{}` holds no records", path.display()));
    }
    Ok(records)
}

/// Records as JSONL bytes, one per line.
pub fn to_jsonl<T: Serialize>(records: &[T]) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = Vec::new();
    for record in records {
        serde_json::to_writer(&mut bytes, record)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// Parses JSONL bytes into records.
pub fn from_jsonl<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("record {}: {e}", i + 1)))
        .collect()
}
