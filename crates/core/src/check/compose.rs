//! Check: composing a manifest from others before it is checked. `include:` brings the
//! models, datasets, rewards and stages of other manifests under their own names, each
//! included stage completed by its own file's `defaults:`; `extends:` declares a stage as
//! another one with some keys replaced. The result is one document whose entries remember
//! the file they were written in, so that every error points into that file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::decode::describe;
use super::sections;
use super::suggest;
use crate::diag::Diagnostic;
use crate::stages::StageKind;
use crate::syntax::{self, Document, YamlPath};

/// The sections whose entries an include brings, in the order they are merged.
const SECTIONS: [&str; 4] = ["models", "datasets", "rewards", "stages"];

/// More files than this in one composition is almost certainly a mistake.
pub const MAX_INCLUDED_FILES: usize = 64;

/// `doc` with its includes merged in and its stages' `extends:` written out. Problems are
/// reported and the rest is composed as far as it can be.
pub(crate) fn compose(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> Document {
    let mut composer = Composer {
        loaded: HashMap::new(),
        chain: vec![canonical(doc.file.path())],
        diagnostics,
    };
    composer.compose(doc.clone())
}

struct Composer<'d> {
    /// Every file read so far, composed, by canonical path: each is read once, and a file
    /// included along two routes brings the same entries (not a clash).
    loaded: HashMap<PathBuf, Arc<Document>>,
    /// The files being composed, outermost first: an include of one of them is a cycle.
    chain: Vec<PathBuf>,
    diagnostics: &'d mut Vec<Diagnostic>,
}

/// One `include:` entry: what was written and where.
struct IncludeEntry {
    text: String,
    at: YamlPath,
}

impl Composer<'_> {
    fn compose(&mut self, mut doc: Document) -> Document {
        let entries = include_entries(&doc, self.diagnostics);
        let mut merged: Vec<(String, Vec<(Value, Value)>)> = SECTIONS
            .iter()
            .map(|s| (s.to_string(), Vec::new()))
            .collect();
        for entry in &entries {
            let Some(included) = self.load(&doc, entry) else {
                continue;
            };
            let dir = Path::new(&entry.text)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            self.merge(&mut doc, &included, &dir, entry, &mut merged);
        }
        if !entries.is_empty() {
            // Included entries come first, in include order, then the file's own.
            if let Value::Mapping(root) = &mut doc.root {
                for (section, entries) in merged {
                    let own = match root.get(section.as_str()) {
                        Some(Value::Mapping(own)) => own.clone(),
                        _ => Mapping::new(),
                    };
                    if entries.is_empty() {
                        continue;
                    }
                    let mut all: Mapping = entries.into_iter().collect();
                    all.extend(own);
                    root.insert(Value::from(section), Value::Mapping(all));
                }
            }
        }
        write_out_extends(&mut doc, self.diagnostics);
        doc
    }

    /// The composed document `entry` of `doc` names, read once.
    fn load(&mut self, doc: &Document, entry: &IncludeEntry) -> Option<Arc<Document>> {
        let here = || Some(doc.value_location(&entry.at));
        let path = base_dir(doc).join(&entry.text);
        let Ok(canonical) = std::fs::canonicalize(&path) else {
            let error = std::fs::metadata(&path)
                .err()
                .map_or_else(|| "cannot be read".to_string(), |e| e.to_string());
            self.diagnostics.push(
                Diagnostic::error(format!("cannot include `{}`: {error}", entry.text))
                    .at(here())
                    .with_help("include paths are relative to the including manifest's directory"),
            );
            return None;
        };
        if let Some(first) = self.chain.iter().position(|p| *p == canonical) {
            let mut cycle: Vec<String> = self.chain[first..]
                .iter()
                .map(|p| format!("`{}`", file_name(p)))
                .collect();
            cycle.push(format!("`{}`", file_name(&canonical)));
            self.diagnostics.push(
                Diagnostic::error(format!("includes form a cycle: {}", cycle.join(" → ")))
                    .at(here())
                    .with_help("a manifest cannot include itself, directly or through others: move what both need into a third file that both include"),
            );
            return None;
        }
        if let Some(done) = self.loaded.get(&canonical) {
            return Some(done.clone());
        }
        if self.loaded.len() >= MAX_INCLUDED_FILES {
            self.diagnostics.push(
                Diagnostic::error(format!("more than {MAX_INCLUDED_FILES} files are included"))
                    .at(here()),
            );
            return None;
        }
        let parsed = match syntax::read_source(&path).and_then(syntax::parse) {
            Ok(parsed) => parsed,
            Err(found) => {
                self.diagnostics.extend(
                    found
                        .into_iter()
                        .map(|d| d.with_related("included from here", here())),
                );
                return None;
            }
        };
        if !super::check_root(&parsed, self.diagnostics) {
            return None;
        }
        self.chain.push(canonical.clone());
        let mut composed = self.compose(parsed);
        self.chain.pop();
        // The file's own stages mean what they mean in it: its defaults complete them.
        let defaults = sections::defaults(&composed, self.diagnostics);
        for name in own_entries(&composed, "stages") {
            let at = YamlPath::root().key("stages").key(name.as_str());
            sections::write_defaults_into(&mut composed, &at, &defaults);
        }
        let composed = Arc::new(composed);
        self.loaded.insert(canonical, composed.clone());
        Some(composed)
    }

    /// Adds the entries of `included` (found in directory `dir`, relative to `doc`) to
    /// `merged`, reporting a name `doc` or an earlier include already declares.
    fn merge(
        &mut self,
        doc: &mut Document,
        included: &Arc<Document>,
        dir: &Path,
        entry: &IncludeEntry,
        merged: &mut [(String, Vec<(Value, Value)>)],
    ) {
        for (section, entries) in merged.iter_mut() {
            let Some(Value::Mapping(theirs)) = included.root.get(section.as_str()) else {
                continue;
            };
            for (key, value) in theirs {
                let Some(name) = key.as_str() else { continue };
                let at = YamlPath::root().key(section.as_str()).key(name);
                let written_in = origin(included, &at);
                let earlier = doc
                    .included
                    .iter()
                    .find(|(p, _)| *p == at)
                    .map(|(_, d)| origin(d, &at));
                if earlier.is_some_and(|earlier| std::ptr::eq(earlier, written_in)) {
                    continue; // the same file, included along two routes
                }
                let own = doc
                    .root
                    .get(section.as_str())
                    .and_then(|s| s.get(name))
                    .is_some();
                if own || earlier.is_some() {
                    self.diagnostics.push(
                        Diagnostic::error(format!(
                            "{} `{name}` is declared twice",
                            singular(section)
                        ))
                        .at(Some(included.key_location(&at)))
                        .with_related("also declared here", Some(doc.key_location(&at)))
                        .with_related("included from here", Some(doc.value_location(&entry.at)))
                        .with_help(
                            "included names share one namespace with the including manifest's: rename one of them, or use the included one (`extends:` declares a stage as a variation of another)",
                        ),
                    );
                    continue;
                }
                let mut value = value.clone();
                if !dir.as_os_str().is_empty() {
                    relocate_paths(section, &mut value, dir, &base_dir(included));
                }
                entries.push((key.clone(), value));
                doc.included.push((at, included.clone()));
            }
        }
    }
}

/// The `include:` entries of `doc`: one path or a list of them.
fn include_entries(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> Vec<IncludeEntry> {
    let at = YamlPath::root().key("include");
    let expected = |value: &Value, path: &YamlPath| {
        Diagnostic::error(format!(
            "`include` lists manifest paths, not {}",
            describe(value)
        ))
        .at(Some(doc.value_location(path)))
        .with_help("write `include: r1-zero.yaml` or `include: [a.yaml, b.yaml]`")
    };
    match doc.root.get("include") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![IncludeEntry {
            text: text.clone(),
            at,
        }],
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(text) => Some(IncludeEntry {
                    text: text.clone(),
                    at: at.index(i),
                }),
                other => {
                    diagnostics.push(expected(other, &at.index(i)));
                    None
                }
            })
            .collect(),
        Some(other) => {
            diagnostics.push(expected(other, &at));
            Vec::new()
        }
    }
}

/// Names of `section` written in `doc` itself (not brought by its includes).
fn own_entries(doc: &Document, section: &str) -> Vec<String> {
    let Some(Value::Mapping(entries)) = doc.root.get(section) else {
        return Vec::new();
    };
    entries
        .keys()
        .filter_map(Value::as_str)
        .filter(|name| {
            let at = YamlPath::root().key(section).key(*name);
            doc.including(&at).is_none()
        })
        .map(str::to_string)
        .collect()
}

/// The document the entry at `at` of `doc` was written in.
fn origin<'d>(doc: &'d Document, at: &YamlPath) -> &'d Document {
    match doc.including(at) {
        Some(source) => origin(source, at),
        None => doc,
    }
}

/// Rewrites the relative file paths of an entry from a file in `dir` (as the include
/// named it) so that they still name the same files from the including manifest: the
/// entry then reads as if it had been written there.
fn relocate_paths(section: &str, value: &mut Value, dir: &Path, included_dir: &Path) {
    let Value::Mapping(map) = value else { return };
    let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
    let relocate = |text: &str| -> Option<String> {
        let path = Path::new(text);
        path.is_relative()
            .then(|| dir.join(path).to_string_lossy().into_owned())
    };
    let fields: &[&str] = match (section, kind.as_deref()) {
        ("models", _) => &["path", "adapter", "tokenizer"],
        ("datasets", Some("jsonl")) => &["path"],
        ("rewards", Some("language")) => &["word_list"],
        ("stages", Some(kind)) if StageKind::named(kind) == Some(StageKind::Export) => &["path"],
        _ => &[],
    };
    for field in fields {
        if let Some(Value::String(text)) = map.get(*field) {
            if let Some(moved) = relocate(text) {
                map.insert(Value::from(*field), Value::from(moved));
            }
        }
    }
    // A verifier's arguments that name files (as its cache key reads them).
    if section == "rewards" && kind.as_deref() == Some("command") {
        if let Some(Value::Sequence(args)) = map.get_mut("command") {
            for arg in args.iter_mut() {
                if let Value::String(text) = arg {
                    let names_file = text.contains('/') || included_dir.join(&*text).is_file();
                    if names_file {
                        if let Some(moved) = relocate(text) {
                            *text = moved;
                        }
                    }
                }
            }
        }
    }
}

/// Writes out every stage of `doc`'s own that `extends:` another: the base's keys, with
/// the stage's own keys replacing them whole. Inherited values are located at the base.
fn write_out_extends(doc: &mut Document, diagnostics: &mut Vec<Diagnostic>) {
    let names = own_entries(doc, "stages");
    let mut done: Vec<String> = Vec::new();
    for name in &names {
        let mut chain = Vec::new();
        write_out(doc, name, &mut chain, &mut done, diagnostics);
    }
}

/// Writes out stage `name` (its base first); `chain` holds the stages being written out.
fn write_out(
    doc: &mut Document,
    name: &str,
    chain: &mut Vec<String>,
    done: &mut Vec<String>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if done.iter().any(|d| d == name) {
        return;
    }
    let at = YamlPath::root().key("stages").key(name);
    let Some(Value::Mapping(stage)) = doc.root.get("stages").and_then(|s| s.get(name)).cloned()
    else {
        done.push(name.to_string());
        return;
    };
    let Some(base_value) = stage.get("extends").cloned() else {
        done.push(name.to_string());
        return;
    };
    let extends_at = at.key("extends");
    let Value::String(base) = base_value else {
        diagnostics.push(
            Diagnostic::error(format!(
                "stage `{name}`: `extends` names a stage, not {}",
                describe(&base_value)
            ))
            .at(Some(doc.value_location(&extends_at))),
        );
        drop_stage(doc, name);
        done.push(name.to_string());
        return;
    };
    if let Some(first) = chain.iter().position(|c| *c == base) {
        let mut cycle: Vec<String> = chain[first..].iter().map(|c| format!("`{c}`")).collect();
        cycle.push(format!("`{name}`"));
        cycle.push(format!("`{base}`"));
        diagnostics.push(
            Diagnostic::error(format!(
                "stages extend each other in a cycle: {}",
                cycle.join(" → ")
            ))
            .at(Some(doc.value_location(&extends_at)))
            .with_help("a stage extends one that is written out without it"),
        );
        drop_stage(doc, name);
        done.push(name.to_string());
        return;
    }
    let stage_names: Vec<String> = doc
        .root
        .get("stages")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !stage_names.contains(&base) {
        let candidates: Vec<&str> = stage_names.iter().map(String::as_str).collect();
        diagnostics.push(
            Diagnostic::error(format!(
                "stage `{name}` extends `{base}`, which is not a stage"
            ))
            .at(Some(doc.value_location(&extends_at)))
            .with_help(suggest::help_for(&base, &candidates, "stage")),
        );
        drop_stage(doc, name);
        done.push(name.to_string());
        return;
    }
    chain.push(name.to_string());
    write_out(doc, &base, chain, done, diagnostics);
    chain.pop();
    let base_at = YamlPath::root().key("stages").key(base.as_str());
    let Some(Value::Mapping(base_map)) = doc
        .root
        .get("stages")
        .and_then(|s| s.get(base.as_str()))
        .cloned()
    else {
        // The base had a problem of its own, already reported.
        drop_stage(doc, name);
        done.push(name.to_string());
        return;
    };
    if let (Some(own_kind), Some(base_kind)) = (stage.get("kind"), base_map.get("kind")) {
        if own_kind != base_kind {
            diagnostics.push(
                Diagnostic::error(format!(
                    "stage `{name}` is of kind `{}` but extends `{base}`, of kind `{}`",
                    own_kind.as_str().unwrap_or("?"),
                    base_kind.as_str().unwrap_or("?")
                ))
                .at(Some(doc.value_location(&at.key("kind"))))
                .with_related(
                    "the base's kind",
                    Some(doc.value_location(&base_at.key("kind"))),
                )
                .with_help(
                    "a stage extends one of its own kind: remove `kind:` to take the base's",
                ),
            );
            drop_stage(doc, name);
            done.push(name.to_string());
            return;
        }
    }
    let mut written = base_map.clone();
    let mut inherited = Vec::new();
    for key in base_map.keys().filter_map(Value::as_str) {
        if !stage.contains_key(key) {
            inherited.push(key.to_string());
        }
    }
    for (key, value) in &stage {
        if key.as_str() != Some("extends") {
            written.insert(key.clone(), value.clone());
        }
    }
    // Keys in the stage's own order where it wrote them, the base's after.
    if let Some(Value::Mapping(stages)) = doc.root.get_mut("stages") {
        stages.insert(Value::from(name), Value::Mapping(written));
    }
    for key in inherited {
        doc.spans
            .redirect(at.key(key.as_str()), base_at.key(key.as_str()));
    }
    done.push(name.to_string());
}

/// Takes stage `name` out of the document once a problem with its `extends:` is
/// reported: what it would be is unknown, and checking it would only repeat the problem.
fn drop_stage(doc: &mut Document, name: &str) {
    if let Some(Value::Mapping(stages)) = doc.root.get_mut("stages") {
        stages.remove(name);
    }
}

fn base_dir(doc: &Document) -> PathBuf {
    doc.file
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn singular(section: &str) -> &'static str {
    match section {
        "models" => "model",
        "datasets" => "dataset",
        "rewards" => "reward",
        _ => "stage",
    }
}
