//! Writing a directory whole (`export`, the `export` stage, `report`, `compare --plots`):
//! the files go into a new directory beside the target, which is then renamed into place.
//! So a directory never mixes an earlier output's files with a new one's, a failure
//! half-way leaves the old directory as it was, and a directory holding anything else is
//! only replaced when the user says so (`--force`). Each directory written holds a marker
//! file (`MARKER`): an earlier output is recognised by it, not by file names alone (a
//! folder of photos is not "earlier plots"). `--force` replaces only a directory r1flow
//! wrote (one holding the marker), never a folder of someone's files; and nothing is ever
//! written inside an r1flow store, nor over the current directory (or one holding it), a
//! git work tree or a store.

use std::fmt;
use std::path::{Path, PathBuf};

/// What may be replaced when the target directory is not empty.
#[derive(Clone, Copy)]
pub enum Existing<'a> {
    /// An earlier output of r1flow, whatever it holds now (`--force`): a directory
    /// holding `MARKER`. A directory without it is someone's files, and is refused.
    Replace,
    /// Nothing: a non-empty directory is refused (`export` without `--force`).
    Refuse,
    /// An earlier output of the same command: a directory holding `MARKER` and otherwise
    /// only entries whose names pass `is_ours`; anything else is refused with `help`.
    ReplaceOnly {
        is_ours: &'a dyn Fn(&str) -> bool,
        help: &'a str,
    },
}

impl<'a> Existing<'a> {
    /// What a command that rewrites its own output directory may replace (`report`,
    /// `compare --plots`): with `--force`, any earlier output of r1flow; else only its
    /// own (`is_ours`), anything else refused with `help`.
    pub fn own_output(force: bool, is_ours: &'a dyn Fn(&str) -> bool, help: &'a str) -> Self {
        if force {
            Self::Replace
        } else {
            Self::ReplaceOnly { is_ours, help }
        }
    }
}

/// The file each directory written here holds, so that the next write knows it for an
/// earlier output.
pub const MARKER: &str = ".r1flow-output";

/// Why a directory was not written.
#[derive(Debug)]
pub struct OutputDirError(String);

impl fmt::Display for OutputDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutputDirError {}

fn io(path: &Path, error: std::io::Error) -> OutputDirError {
    OutputDirError(format!("{}: {error}", path.display()))
}

/// Checks that `target` may be written under `existing`, before any work is done.
pub fn check_target(target: &Path, existing: Existing<'_>) -> Result<(), OutputDirError> {
    if let Some(store) = enclosing_store(target) {
        return Err(OutputDirError(format!(
            "{} is inside the r1flow store {}; nothing is written there but by the store \
             itself: choose a directory outside it",
            target.display(),
            store.display()
        )));
    }
    let entries: Vec<String> = match std::fs::read_dir(target) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if target.exists() && !target.is_dir() => {
            return Err(OutputDirError(format!(
                "{} exists and is not a directory ({e})",
                target.display()
            )))
        }
        Err(e) => return Err(io(target, e)),
    };
    if entries.is_empty() {
        return Ok(());
    }
    if let Some(what) = never_replaced(target) {
        return Err(OutputDirError(format!(
            "{} is {what}; it is never replaced: choose a directory of its own for this output",
            target.display()
        )));
    }
    match existing {
        Existing::Replace if entries.iter().any(|e| e == MARKER) => Ok(()),
        Existing::Replace => Err(OutputDirError(format!(
            "{} is not empty and was not written by r1flow (it has no {MARKER}); --force \
             replaces only an earlier r1flow output, never other files: remove them yourself \
             or choose another directory",
            target.display()
        ))),
        Existing::Refuse => Err(OutputDirError(format!(
            "{} is not empty; pass --force to replace it (its files are removed), or choose another directory",
            target.display()
        ))),
        Existing::ReplaceOnly { is_ours, help } => {
            let mut foreign: Vec<&String> = entries
                .iter()
                .filter(|e| e.as_str() != MARKER && !is_ours(e))
                .collect();
            let marked = entries.iter().any(|e| e == MARKER);
            if marked && foreign.is_empty() {
                return Ok(());
            }
            if foreign.is_empty() {
                return Err(OutputDirError(format!(
                    "{} is not empty and was not written by r1flow (it has no {MARKER}); {help}",
                    target.display()
                )));
            }
            foreign.sort();
            Err(OutputDirError(format!(
                "{} is not empty and holds files this does not write ({}); {help}",
                target.display(),
                foreign
                    .iter()
                    .take(3)
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// What `target` is when it must never be replaced, even with `--force`.
fn never_replaced(target: &Path) -> Option<&'static str> {
    if let (Ok(target), Ok(cwd)) = (
        target.canonicalize(),
        std::env::current_dir().and_then(|d| d.canonicalize()),
    ) {
        if cwd.starts_with(&target) {
            return Some("the current directory or holds it");
        }
    }
    if target.join(".git").exists() {
        return Some("a git work tree");
    }
    if is_store(target) {
        return Some("an r1flow store");
    }
    None
}

/// Whether `dir` is an r1flow store: its index beside its blobs or its lock.
fn is_store(dir: &Path) -> bool {
    dir.join("index").is_dir() && (dir.join("blobs").is_dir() || dir.join("LOCK").is_file())
}

/// `a/b/../c` as `a/c`, without touching the filesystem.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The store `target` lies inside (strictly: a store itself is `never_replaced`'s), found
/// through the real path of its nearest existing ancestor, so `..` and links do not hide
/// it.
fn enclosing_store(target: &Path) -> Option<PathBuf> {
    let joined = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(target)
    };
    let absolute = normalise(&joined);
    // The nearest ancestor that exists, resolved; what lies below it is not there yet.
    let mut existing = absolute.as_path();
    let mut below = Vec::new();
    let resolved = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        below.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    };
    let mut path = resolved;
    for name in below.iter().rev() {
        path.push(name);
    }
    path.ancestors()
        .skip(1)
        .find(|dir| is_store(dir))
        .map(Path::to_path_buf)
}

/// `target`'s sibling named `.NAME.r1flow-WHAT-PID`.
fn beside(target: &Path, what: &str) -> Result<PathBuf, OutputDirError> {
    let name = target
        .file_name()
        .ok_or_else(|| OutputDirError(format!("{} names no directory", target.display())))?;
    let parent = target.parent().unwrap_or(Path::new(""));
    Ok(parent.join(format!(
        ".{}.r1flow-{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Writes `target` whole: `write` fills a new directory beside it, which then replaces
/// `target` (checked first with `check_target`).
pub fn replace_dir<E: fmt::Display>(
    target: &Path,
    existing: Existing<'_>,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), OutputDirError> {
    check_target(target, existing)?;
    let target = if target.file_name().is_none() {
        // `out/.` or `..`: name the directory itself.
        target.canonicalize().map_err(|e| io(target, e))?
    } else {
        target.to_path_buf()
    };
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let fresh = beside(&target, "new")?;
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir(&fresh).map_err(|e| io(&fresh, e))?;
    let written = write(&fresh)
        .map_err(|error| OutputDirError(format!("{error:#}")))
        .and_then(|()| {
            let marker = fresh.join(MARKER);
            std::fs::write(
                &marker,
                "Written by r1flow, which replaces this directory whole when it writes it again.\n",
            )
            .map_err(|e| io(&marker, e))
        });
    if let Err(error) = written {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(error);
    }
    if target.exists() {
        let old = beside(&target, "old")?;
        let _ = std::fs::remove_dir_all(&old);
        if let Err(e) = std::fs::rename(&target, &old) {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(io(&target, e));
        }
        if let Err(e) = std::fs::rename(&fresh, &target) {
            // Put the old directory back rather than leave nothing.
            let _ = std::fs::rename(&old, &target);
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(io(&target, e));
        }
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&fresh, &target).map_err(|e| io(&target, e))?;
    }
    Ok(())
}
