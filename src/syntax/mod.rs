//! Parse: read a manifest file and turn its text into a YAML value plus a span index.
//! Nothing here knows what a pipeline is; `check` gives the value its meaning.

mod path;
mod span_index;

use std::path::Path;
use std::sync::Arc;

pub use path::{Segment, YamlPath};
pub use span_index::{DuplicateKey, NodeSpans, SpanIndex};

use crate::diag::{Diagnostic, Location, SourceFile, Span};

/// Manifests larger than this are refused before parsing: a pipeline manifest is a few
/// kilobytes, and a multi-megabyte one is almost certainly the wrong file.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed YAML document: its source, its value, and where each node was written.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: Arc<SourceFile>,
    pub root: serde_yaml::Value,
    pub spans: SpanIndex,
}

impl Document {
    /// The location of the value at `path`.
    pub fn value_location(&self, path: &YamlPath) -> Location {
        Location::new(&self.file, self.spans.value(path))
    }

    /// The location of the key that introduces `path`.
    pub fn key_location(&self, path: &YamlPath) -> Location {
        Location::new(&self.file, self.spans.key(path))
    }
}

/// Reads a manifest from disk, refusing files that are too large or not UTF-8.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(format!("cannot read `{shown}`: {e}"))
            .with_help("check the path; manifests usually live in `pipelines/`")
    })?;
    if metadata.is_dir() {
        return Err(Diagnostic::error(format!(
            "`{shown}` is a directory, not a manifest file"
        )));
    }
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(Diagnostic::error(format!(
            "`{shown}` is {} bytes; manifests are limited to {} bytes",
            metadata.len(),
            MAX_MANIFEST_BYTES
        ))
        .with_help(
            "is this the right file? large data belongs in JSONL files that a dataset names",
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(format!("cannot read `{shown}`: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        Diagnostic::error(format!(
            "`{shown}` is not UTF-8 text (invalid byte at offset {offset})"
        ))
        .with_help("manifests are YAML text files encoded as UTF-8")
    })?;
    Ok(SourceFile::new(path, text))
}

/// Parses the text of `file` as one YAML document. Syntax errors, alias bombs and
/// excessive nesting are reported as diagnostics (serde_yaml bounds both).
pub fn parse(file: Arc<SourceFile>) -> Result<Document, Diagnostic> {
    let mut root: serde_yaml::Value = match serde_yaml::from_str(file.text()) {
        Ok(value) => value,
        Err(error) => return Err(syntax_error(&file, &error)),
    };
    if let Err(error) = root.apply_merge() {
        return Err(syntax_error(&file, &error));
    }
    let spans = SpanIndex::build(file.text());
    Ok(Document { file, root, spans })
}

fn syntax_error(file: &Arc<SourceFile>, error: &serde_yaml::Error) -> Diagnostic {
    let text = error.to_string();
    // serde_yaml appends " at line L column C"; the location is rendered separately.
    let message = match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    let span = error
        .location()
        .map(|l| Span::new(l.line(), l.column(), 1))
        .unwrap_or_else(Span::file_start);
    let mut diagnostic =
        Diagnostic::error(format!("invalid YAML: {message}")).at(Some(Location::new(file, span)));
    if message.contains("repetition limit") || message.contains("recursion limit") {
        diagnostic = diagnostic.with_help(
            "the document expands to too many nodes or nests too deeply; write the values out instead of nesting aliases",
        );
    } else if message.contains("more than one document") {
        diagnostic =
            diagnostic.with_help("a manifest is one YAML document: remove the `---` separators");
    }
    diagnostic
}
