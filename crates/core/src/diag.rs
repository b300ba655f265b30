//! Diagnostics shared by every phase (parse → check → plan): a `Span` in a source file,
//! a `Diagnostic` with a message, hints and related locations, and its caret rendering.

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source text and the path it was read from, shared by every span into it.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    /// The line number of the text's first line: 1, or that of an excerpt's line.
    first_line: usize,
}

impl SourceFile {
    /// Wraps a text read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
            first_line: 1,
        })
    }

    /// One line of a file, numbered `line`, kept alone: for errors in files too large to
    /// hold whole (JSONL data) or that could not be read as text.
    pub fn excerpt(path: impl Into<PathBuf>, line: usize, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
            first_line: line.max(1),
        })
    }

    /// The path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line `line` (1-based), without its line break.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.text
            .lines()
            .nth(line.checked_sub(self.first_line)?)
            .map(|l| l.trim_end_matches('\r'))
    }
}

/// A place in a source file: 1-based line and column (in characters) and a length in
/// characters (at least 1 when rendered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    /// A span of `len` characters at `line:col`.
    pub fn new(line: usize, col: usize, len: usize) -> Self {
        Self { line, col, len }
    }

    /// The start of a file, for errors that concern the whole file.
    pub fn file_start() -> Self {
        Self::new(1, 1, 0)
    }
}

/// A span inside a particular file.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

impl Location {
    pub fn new(file: &Arc<SourceFile>, span: Span) -> Self {
        Self {
            file: Arc::clone(file),
            span,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.path().display(),
            self.span.line,
            self.span.col
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a manifest or a file it names: what is wrong, where, and how to
/// fix it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    /// Other places that explain this one ("first defined here").
    pub related: Vec<(String, Location)>,
    /// How to fix it.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            related: Vec::new(),
            help: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn with_related(mut self, note: impl Into<String>, location: Option<Location>) -> Self {
        if let Some(location) = location {
            self.related.push((note.into(), location));
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic as the CLI prints it: a headline, `--> path:line:col`, the source
    /// line with carets under the span, related places and help lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}: {}", self.message);
        // One gutter width for every snippet of the diagnostic keeps the bars aligned.
        let gutter = self
            .location
            .iter()
            .chain(self.related.iter().map(|(_, l)| l))
            .map(|l| l.span.line.to_string().len())
            .max()
            .unwrap_or(1);
        if let Some(location) = &self.location {
            render_snippet(&mut out, location, None, gutter);
        }
        for (note, location) in &self.related {
            render_snippet(&mut out, location, Some(note), gutter);
        }
        let pad = " ".repeat(gutter);
        for help in &self.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }
}

fn render_snippet(out: &mut String, location: &Location, note: Option<&str>, width: usize) {
    let span = location.span;
    let gutter = " ".repeat(width);
    let _ = writeln!(out, "{gutter}--> {location}");
    let Some(line) = location.file.line(span.line) else {
        return;
    };
    let number = format!("{:>width$}", span.line);
    let _ = writeln!(out, "{gutter} |");
    let (line, col) = excerpt_around(line, span.col);
    let _ = writeln!(out, "{number} | {line}");
    let line_chars = line.chars().count();
    let start = col.saturating_sub(1).min(line_chars);
    let len = span.len.max(1).min(line_chars.saturating_sub(start).max(1));
    let _ = write!(out, "{gutter} | {}{}", " ".repeat(start), "^".repeat(len));
    match note {
        Some(note) => {
            let _ = writeln!(out, " {note}");
        }
        None => out.push('\n'),
    }
}

/// Longest source line quoted whole; longer ones are quoted around the column.
const MAX_QUOTED_CHARS: usize = 200;

/// `line` cut to at most `MAX_QUOTED_CHARS` characters around column `col` (1-based),
/// with `…` where it was cut, and the column within the excerpt. A one-line JSON record
/// or minified YAML is never printed whole.
fn excerpt_around(line: &str, col: usize) -> (String, usize) {
    // Control characters (a terminal's escape sequences among them) are shown as `�`.
    let chars: Vec<char> = line
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if chars.len() <= MAX_QUOTED_CHARS {
        return (chars.into_iter().collect(), col);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(MAX_QUOTED_CHARS / 3);
    let end = (start + MAX_QUOTED_CHARS).min(chars.len());
    let mut text: String = chars[start..end].iter().collect();
    let mut col = at - start + 1;
    if start > 0 {
        text.insert(0, '…');
        col += 1;
    }
    if end < chars.len() {
        text.push('…');
    }
    (text, col)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Renders a list of diagnostics, errors and warnings in source order, with a summary line.
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&diagnostic.render());
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    match (errors, warnings) {
        (0, 0) => {}
        (e, 0) => {
            let _ = writeln!(out, "{e} error{}", plural(e));
        }
        (e, w) => {
            let _ = writeln!(out, "{e} error{}, {w} warning{}", plural(e), plural(w));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Sorts diagnostics by file and position and drops exact repeats (ablation variants
/// re-check the same base manifest and would otherwise report its errors once each).
pub fn sort_dedup(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| {
        let pos = |d: &Diagnostic| {
            d.location
                .as_ref()
                .map(|l| (l.file.path().to_path_buf(), l.span))
        };
        pos(a).cmp(&pos(b)).then_with(|| a.message.cmp(&b.message))
    });
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert(d.render()));
}
