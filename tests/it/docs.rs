//! The documentation cannot drift from the code: every manifest snippet in README.md and
//! the user guide (`docs/src/**/*.md`) passes r1flow's checker, and every relative link
//! in them points at a file that exists.
//!
//! What a ```` ```yaml ```` (or ```` ```yml ````) block is taken to be:
//! - **a manifest**: its top level has `stages:`. It is checked whole, exactly as
//!   `r1flow validate` checks a file (`check_document`), as if it were a file in
//!   `pipelines/`: relative paths in it (`data/…`, `checkpoints/…`, a `$schema` comment)
//!   resolve against `pipelines/`, like those of the shipped manifests it is copied from.
//! - **a section snippet**: a mapping whose top-level keys are all manifest sections
//!   (`rewards:`, `models:`, `datasets:`, `defaults:`, …) but no `stages:`. It is embedded
//!   in a manifest that adds one `dataset` stage (and a generated dataset for it, unless the
//!   snippet declares datasets), and that manifest must pass the same check.
//! - **a fragment**: marked by the word `fragment` after the language (```` ```yaml
//!   fragment ````): a piece of a stage, with `…` where the rest goes. Skipped; the marker
//!   is the only way to skip a block.
//!
//! Any other yaml block fails the test, so a snippet is never skipped by accident.
//!
//! The checker is told every backend exists (the docs describe the tool, not this
//! machine), the precisions the training code supports, and not to probe the `code`
//! reward's sandbox or the machine's memory: what `validate` refuses on any machine is
//! refused here.

use std::path::{Path, PathBuf};

use r1flow::check::{check_document, Capabilities};
use r1flow::diag::{render_all, SourceFile};
use r1flow::output_dir::normalise;
use r1flow::syntax::parse;

use crate::support::repo_root;

/// Chapters listed in docs/src/SUMMARY.md that other branches are writing now: a link
/// to them may point at a file that does not exist yet (once it does, it is checked like
/// any other). Remove an entry when its chapter lands.
const PENDING_CHAPTERS: [&str; 0] = [];

/// Top-level keys of a manifest other than `stages:` (a section snippet may use only these).
const SECTIONS: [&str; 9] = [
    "name",
    "seed",
    "backend",
    "dtype",
    "defaults",
    "models",
    "datasets",
    "rewards",
    "ablations",
];

/// A fenced code block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// The info string after the fence (`yaml`, `yaml fragment`, `sh`…).
    info: String,
    /// The first line of its contents, 1-based.
    line: usize,
    text: String,
}

#[derive(Debug, PartialEq)]
enum Snippet {
    Manifest,
    Section,
    Fragment,
    NotYaml,
}

/// README.md and every Markdown file under docs/src, relative to the repository root.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read docs directory")
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs/src"), &mut files);
    files
}

/// Every document with its text.
fn documents_with_text() -> Vec<(PathBuf, String)> {
    documents()
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("read a Markdown file");
            (file, text)
        })
        .collect()
}

/// A line's fence, if it opens or closes a fenced code block: (indent, fence character,
/// fence length, info string). A backtick fence's info string may not hold a backtick
/// (CommonMark), so ```` ```` ```py ```` ```` is inline code, not a fence.
fn fence(line: &str) -> Option<(usize, char, usize, &str)> {
    let trimmed = line.trim_start_matches(' ');
    let indent = line.len() - trimmed.len();
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = trimmed[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((indent, ch, len, info))
}

/// The fenced code blocks of a Markdown text, and its other lines (with their numbers).
fn split_markdown(text: &str) -> (Vec<Block>, Vec<(usize, &str)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(usize, char, usize, Block)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        match open.take() {
            None => match fence(line) {
                Some((indent, ch, len, info)) => {
                    let block = Block {
                        info: info.to_string(),
                        line: number + 1,
                        text: String::new(),
                    };
                    open = Some((indent, ch, len, block));
                }
                None => prose.push((number, line)),
            },
            Some((indent, ch, len, mut block)) => match fence(line) {
                Some((_, c, l, "")) if c == ch && l >= len => blocks.push(block),
                _ => {
                    // A block inside a list item is indented as its fence is.
                    let strip = line.len() - line.trim_start_matches(' ').len();
                    block.text.push_str(&line[strip.min(indent)..]);
                    block.text.push('\n');
                    open = Some((indent, ch, len, block));
                }
            },
        }
    }
    if let Some((_, _, _, block)) = open {
        panic!(
            "a code block opened at line {} is never closed",
            block.line - 1
        );
    }
    (blocks, prose)
}

fn classify(block: &Block) -> Result<Snippet, String> {
    let mut words = block.info.split([' ', ',']).filter(|w| !w.is_empty());
    let language = words.next().unwrap_or("");
    if language != "yaml" && language != "yml" {
        return Ok(Snippet::NotYaml);
    }
    if words.any(|w| w == "fragment") {
        return Ok(Snippet::Fragment);
    }
    let value: serde_yaml::Value = serde_yaml::from_str(&block.text)
        .map_err(|e| format!("not YAML ({e}); mark a piece of a manifest ```yaml fragment"))?;
    let Some(map) = value.as_mapping() else {
        return Err("not a mapping; mark a piece of a manifest ```yaml fragment".into());
    };
    if map.contains_key("stages") {
        return Ok(Snippet::Manifest);
    }
    let unknown: Vec<String> = map
        .keys()
        .map(|k| k.as_str().unwrap_or("?").to_string())
        .filter(|k| !SECTIONS.contains(&k.as_str()))
        .collect();
    if map.is_empty() || !unknown.is_empty() {
        return Err(format!(
            "neither a manifest (no top-level `stages:`) nor manifest sections (top-level \
             keys {unknown:?}); mark a piece of a manifest ```yaml fragment"
        ));
    }
    Ok(Snippet::Section)
}

/// A section snippet made a manifest: a `name:` if it has none, and one `dataset` stage
/// reading the snippet's first dataset or a small generated one, appended after its text
/// (so that its lines keep their numbers in the checker's errors).
fn embed(text: &str) -> String {
    let value: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
    let map = value.as_mapping().expect("a mapping");
    let mut manifest = text.trim_end().to_string();
    manifest.push('\n');
    if !map.contains_key("name") {
        manifest.push_str("name: docs-snippet\n");
    }
    let source = match map.get("datasets").and_then(|d| d.as_mapping()) {
        Some(datasets) => datasets
            .keys()
            .next()
            .and_then(|k| k.as_str())
            .expect("a dataset name")
            .to_string(),
        None => {
            manifest
                .push_str("datasets:\n  docs_snippet_data: {kind: arithmetic, num_samples: 50}\n");
            "docs_snippet_data".to_string()
        }
    };
    manifest.push_str(&format!(
        "stages:\n  docs_snippet_tasks: {{kind: dataset, source: {source}}}\n"
    ));
    manifest
}

fn capabilities() -> Capabilities {
    Capabilities {
        dtypes: r1flow::model::capabilities().dtypes,
        ..Capabilities::any()
    }
}

/// Checks one manifest text as if it were the file `pipelines/NAME` (a file that does not
/// exist: the name only shows in errors); the rendered errors, if any.
fn check_manifest(name: &str, text: &str) -> Result<(), String> {
    let path = repo_root().join("pipelines").join(name);
    let checked = parse(SourceFile::new(path, text))
        .map(|doc| check_document(&doc, &capabilities()))
        .map_err(|diagnostics| render_all(&diagnostics))?;
    if checked.has_errors() {
        return Err(render_all(&checked.diagnostics));
    }
    Ok(())
}

/// Every problem with the yaml snippets of one Markdown text (`shown` names it).
fn snippet_problems(shown: &str, text: &str) -> (Vec<String>, usize) {
    let (blocks, _) = split_markdown(text);
    let mut problems = Vec::new();
    let mut checked = 0;
    for block in &blocks {
        let at = format!("{shown}:{}", block.line);
        // Blank lines first, so that the checker's line numbers are the Markdown file's.
        let padding = "\n".repeat(block.line - 1);
        let name = format!("{}.yaml", shown.replace('/', "-"));
        let outcome = match classify(block) {
            Err(why) => Err(why),
            Ok(Snippet::NotYaml | Snippet::Fragment) => continue,
            Ok(Snippet::Manifest) => check_manifest(&name, &(padding + &block.text)),
            Ok(Snippet::Section) => check_manifest(&name, &(padding + &embed(&block.text))),
        };
        checked += 1;
        if let Err(why) = outcome {
            problems.push(format!(
                "{at}: the yaml block starting here (checked as if in pipelines/; its errors give \
                 {shown}'s line numbers): {why}"
            ));
        }
    }
    (problems, checked)
}

/// `check` run on each document (its path and text): the problems of them all, and the sum
/// of the counts (snippets checked, links found) that show the check saw something.
fn check_documents(check: impl Fn(&Path, &str) -> (Vec<String>, usize)) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut count = 0;
    for (file, text) in documents_with_text() {
        let (found, seen) = check(&file, &text);
        problems.extend(found);
        count += seen;
    }
    (problems, count)
}

/// `file` as messages name it: relative to `root`.
fn shown(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string()
}

#[test]
fn docs_manifest_snippets_pass_the_checker() {
    let root = repo_root();
    let (problems, checked) =
        check_documents(|file, text| snippet_problems(&shown(&root, file), text));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The README's walkthrough, the guide's copy of it, grading's and the code reward's.
    assert!(checked >= 4, "only {checked} yaml snippets were found");
}

#[test]
fn docs_check_reports_a_broken_snippet() {
    let good =
        "Text.\n\n```yaml\nname: ok\nstages:\n  tasks: {kind: dataset, source: arithmetic}\n\
                datasets:\n  arithmetic: {kind: arithmetic, num_samples: 100}\n```\n";
    assert_eq!(snippet_problems("good.md", good), (Vec::new(), 1));

    // A misspelt field in a manifest, an unknown reward kind in a section snippet, a piece
    // of a stage left unmarked: each is reported at its block's first line.
    let broken =
        "# Broken\n\n```yaml\nname: typo\nstages:\n  tasks: {kind: dataset, sorce: x}\n```\n\n\
                  ```yaml\nrewards:\n  mine: {kind: acuracy}\n```\n\n\
                  ```yaml\nzero:\n  kind: grpo\n```\n\n\
                  ```yaml fragment\nzero:\n  kind: grpo\n  …\n```\n";
    let (problems, checked) = snippet_problems("broken.md", broken);
    assert_eq!(checked, 3, "{problems:#?}");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("broken.md:4:"), "{}", problems[0]);
    assert!(problems[0].contains("sorce"), "{}", problems[0]);
    // The checker's location is the Markdown file's line of the misspelt field.
    assert!(problems[0].contains("broken.md.yaml:6:"), "{}", problems[0]);
    assert!(problems[1].starts_with("broken.md:10:"), "{}", problems[1]);
    assert!(problems[1].contains("acuracy"), "{}", problems[1]);
    assert!(problems[2].starts_with("broken.md:15:"), "{}", problems[2]);
    assert!(problems[2].contains("fragment"), "{}", problems[2]);
}

/// The relative link targets of a Markdown text's prose (not in code), with their lines:
/// `[text](target)` and `[name]: target`, without `http(s):`/`mailto:` ones and without
/// the `#anchor` part.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let (_, prose) = split_markdown(text);
    let mut links = Vec::new();
    for (number, line) in prose {
        let line = strip_inline_code(line);
        let mut targets = Vec::new();
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
        if let Some(definition) = line.trim_start().strip_prefix('[') {
            if let Some((_, target)) = definition.split_once("]: ") {
                targets.push(target.to_string());
            }
        }
        for target in targets {
            let target = target.split_whitespace().next().unwrap_or("").to_string();
            if target.is_empty()
                || target.starts_with('#')
                || target.contains("://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            links.push((number, target));
        }
    }
    links
}

/// The line without its inline code spans (a run of N backticks up to the next run of N).
fn strip_inline_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        let closing = "`".repeat(run);
        let mut search = 0;
        let mut end = None;
        while let Some(found) = after[search..].find(&closing) {
            let at = search + found;
            let longer = after[at + run..].starts_with('`');
            if !longer {
                end = Some(at + run);
                break;
            }
            search = at + after[at..].chars().take_while(|c| *c == '`').count();
        }
        match end {
            Some(end) => rest = &after[end..],
            None => {
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The anchors GitHub and mdBook give a Markdown file's headings: lower case, letters,
/// digits, `-` and `_` kept, spaces made `-`, the rest dropped.
fn anchors(text: &str) -> Vec<String> {
    let (_, prose) = split_markdown(text);
    prose
        .iter()
        .filter_map(|(_, line)| {
            let heading = line.trim_start_matches('#');
            (heading.len() < line.len() && heading.starts_with(' ')).then_some(heading.trim())
        })
        .map(|heading| {
            heading
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Every broken relative link of one Markdown file (`file` is where it lies).
fn link_problems(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let shown = shown(root, file);
    let dir = file.parent().expect("a directory");
    let mut problems = Vec::new();
    for (line, target) in relative_links(text) {
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = dir.join(path);
        let normal = normalise(&resolved);
        let relative = normal.strip_prefix(root).unwrap_or(&normal);
        if !normal.exists() {
            if !PENDING_CHAPTERS.iter().any(|p| Path::new(p) == relative) {
                problems.push(format!("{shown}:{line}: `{target}`: no such file"));
            }
            continue;
        }
        if let Some(anchor) = anchor.filter(|_| path.ends_with(".md")) {
            let target_text = std::fs::read_to_string(&normal).expect("read a link's target");
            if !anchors(&target_text).iter().any(|a| a == anchor) {
                problems.push(format!(
                    "{shown}:{line}: `{target}`: {} has no heading with anchor `{anchor}`",
                    relative.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn docs_relative_links_point_at_files() {
    let root = repo_root();
    let (problems, links) = check_documents(|file, text| {
        (link_problems(&root, file, text), relative_links(text).len())
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(links >= 20, "only {links} relative links were found");
}

#[test]
fn docs_link_check_reports_a_broken_link() {
    let root = repo_root();
    let file = root.join("docs/src/example.md");
    let text = "# Title\n\nSee [the store](store.md), [nothing](missing.md), \
                [a heading](store.md#no-such-heading) and [the repo](../../README.md).\n\
                `[code](not-a-link.md)` and <https://example.com> are not links.\n\n\
                ```md\n[in a block](also-not-a-link.md)\n```\n";
    let problems = link_problems(&root, &file, text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("`missing.md`: no such file"),
        "{problems:#?}"
    );
    assert!(problems[1].contains("no-such-heading"), "{problems:#?}");
    assert_eq!(
        anchors("# Runs, the store and cache keys\n## `r1flow compare` — tables\n"),
        ["runs-the-store-and-cache-keys", "r1flow-compare--tables"]
    );
}
