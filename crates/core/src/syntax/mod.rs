//! Parse: read a manifest file and turn its text into a YAML value plus a span index.
//! Nothing here knows what a pipeline is; `check` gives the value its meaning.

mod path;
mod span_index;

use std::path::Path;
use std::sync::Arc;

pub use path::{Segment, YamlPath};
pub use span_index::{DuplicateKey, NodeSpans, SpanIndex};

use crate::diag::{Diagnostic, Location, SourceFile, Span};
use crate::user_file::{self, UserFileError};

/// Manifests larger than this are refused before parsing: a pipeline manifest is a few
/// kilobytes, and a multi-megabyte one is almost certainly the wrong file.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed YAML document: its source, its value, and where each node was written.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: Arc<SourceFile>,
    pub root: serde_yaml::Value,
    pub spans: SpanIndex,
    /// Entries brought in from other files by `include:`: the path of an entry in `root`
    /// (`stages.zero`) and the document it was written in, at the same path there.
    pub included: Vec<(YamlPath, Arc<Document>)>,
}

impl Document {
    /// The location of the value at `path` (in an included file when it came from one).
    pub fn value_location(&self, path: &YamlPath) -> Location {
        let resolved = self.spans.resolve(path);
        match self.including(&resolved) {
            Some(source) => source.value_location(&resolved),
            None => Location::new(&self.file, self.spans.value(&resolved)),
        }
    }

    /// The location of the key that introduces `path`.
    pub fn key_location(&self, path: &YamlPath) -> Location {
        let resolved = self.spans.resolve(path);
        match self.including(&resolved) {
            Some(source) => source.key_location(&resolved),
            None => Location::new(&self.file, self.spans.key(&resolved)),
        }
    }

    /// Whether the node at exactly `path` was written (here or in the file it came from).
    pub fn written(&self, path: &YamlPath) -> bool {
        let resolved = self.spans.resolve(path);
        match self.including(&resolved) {
            Some(source) => source.written(&resolved),
            None => self.spans.contains(&resolved),
        }
    }

    /// The included document the node at `path` (already resolved) was written in.
    pub fn including(&self, path: &YamlPath) -> Option<&Document> {
        self.included
            .iter()
            .find(|(at, _)| path.starts_with(at))
            .map(|(_, source)| source.as_ref())
    }
}

/// Reads a manifest from disk, refusing files that are too large or not UTF-8.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Vec<Diagnostic>> {
    read_source_file(path).map_err(|d| vec![d])
}

fn read_source_file(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let shown = path.display();
    let bytes = user_file::read(path, MAX_MANIFEST_BYTES).map_err(|e| match e {
        UserFileError::Missing(e) => Diagnostic::error(format!("cannot read `{shown}`: {e}"))
            .with_help("check the path; manifests usually live in `pipelines/`"),
        UserFileError::NotRegular(what) => {
            Diagnostic::error(format!("`{shown}` is {what}, not a regular file"))
                .with_help("give the path of a manifest file (YAML)")
        }
        UserFileError::TooLarge { limit } => Diagnostic::error(format!(
            "`{shown}` is {}; manifests are limited to {limit} bytes",
            // The size is only quoted: the read itself stopped at the limit.
            std::fs::metadata(path)
                .ok()
                .map(|m| m.len())
                .filter(|len| *len > limit)
                .map_or_else(
                    || format!("over {limit} bytes"),
                    |len| format!("{len} bytes")
                )
        ))
        .with_help(
            "is this the right file? large data belongs in JSONL files that a dataset names",
        ),
        UserFileError::Io(e) => Diagnostic::error(format!("cannot read `{shown}`: {e}")),
    })?;
    // A UTF-8 byte-order mark (some editors write one) is not part of the text.
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(path, text)),
        Err(e) => {
            let (line, col) = user_file::utf8_error_position(e.as_bytes(), &e.utf8_error());
            // The located line, up to the bad byte, so the caret can point at it.
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
            let text = prefix.lines().nth(line - 1).unwrap_or("").to_string();
            let shown_file = SourceFile::excerpt(path, line, text);
            Err(Diagnostic::error("the manifest is not UTF-8 text")
                .at(Some(Location::new(&shown_file, Span::new(line, col, 1))))
                .with_help(
                    "manifests are YAML text files encoded as UTF-8; re-save the file as UTF-8",
                ))
        }
    }
}

/// Parses the text of `file` as one YAML document. Syntax errors, alias bombs and
/// excessive nesting are reported as diagnostics (serde_yaml bounds both).
pub fn parse(file: Arc<SourceFile>) -> Result<Document, Vec<Diagnostic>> {
    if let Some(span) = too_deep_flow_nesting(file.text()) {
        return Err(vec![Diagnostic::error(format!(
            "invalid YAML: brackets nest deeper than {MAX_FLOW_DEPTH} levels"
        ))
        .at(Some(Location::new(&file, span)))
        .with_help(
            "a manifest nests a few levels deep; is this the right file?",
        )]);
    }
    // serde_yaml goes first: it bounds nesting and alias expansion, so the span index is
    // only built for documents of sane shape.
    let mut root: serde_yaml::Value = match serde_yaml::from_str(file.text()) {
        Ok(value) => value,
        Err(error) => {
            // serde_yaml stops at the first duplicate key and locates it at its mapping;
            // the span index has every duplicate with both places.
            if error.to_string().contains("duplicate entry") {
                let spans = SpanIndex::build(file.text());
                if !spans.duplicates().is_empty() {
                    return Err(spans
                        .duplicates()
                        .iter()
                        .map(|d| duplicate_key(&file, d))
                        .collect());
                }
            }
            return Err(vec![syntax_error(&file, &error)]);
        }
    };
    let spans = SpanIndex::build(file.text());
    if let Err(error) = root.apply_merge() {
        return Err(vec![syntax_error(&file, &error)]);
    }
    Ok(Document {
        file,
        root,
        spans,
        included: Vec::new(),
    })
}

/// Deepest `[`/`{` nesting accepted. libyaml's parser slows down badly on pathological
/// nesting (100k brackets take seconds), so it is refused before parsing.
const MAX_FLOW_DEPTH: usize = 128;

/// Where flow brackets first nest deeper than `MAX_FLOW_DEPTH`, ignoring quoted text and
/// comments.
fn too_deep_flow_nesting(text: &str) -> Option<Span> {
    let mut depth = 0usize;
    for (line_index, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for (col, c) in line.chars().enumerate() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if previous.is_whitespace() => break,
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Some(Span::new(line_index + 1, col + 1, 1));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
    }
    None
}

/// A key written twice in one mapping.
pub fn duplicate_key(file: &Arc<SourceFile>, duplicate: &DuplicateKey) -> Diagnostic {
    Diagnostic::error(format!("`{}` is defined twice", duplicate.path))
        .at(Some(Location::new(file, duplicate.second)))
        .with_related(
            "first defined here",
            Some(Location::new(file, duplicate.first)),
        )
        .with_help("names must be unique: rename or remove one of them")
}

/// Whether the line of `span` is indented with a tab (YAML's error then names a character
/// that "cannot start any token", which does not say what to do).
fn tab_at(file: &SourceFile, span: Span) -> bool {
    file.line(span.line).is_some_and(|line| {
        line.chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
    })
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
    } else if tab_at(file, span) {
        diagnostic =
            diagnostic.with_help("YAML does not allow tabs for indentation: indent with spaces");
    }
    diagnostic
}
