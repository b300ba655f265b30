//! Writing a directory whole (`export`, the `export` stage, `report`, `compare --plots`):
//! the files go into a new directory beside the target, which is then renamed into place.
//! So a directory never mixes an earlier output's files with a new one's, a failure
//! half-way leaves the old directory as it was, and a directory holding anything else is
//! only replaced when the user says so (`--force`). Each directory written holds a marker
//! file (`MARKER`): an earlier output is recognised by it, not by file names alone (a
//! folder of photos is not "earlier plots"). Even with `--force`, the current directory
//! (or one holding it), a git work tree and an r1flow store are never replaced.

use std::fmt;
use std::path::{Path, PathBuf};

/// What may be replaced when the target directory is not empty.
#[derive(Clone, Copy)]
pub enum Existing<'a> {
    /// Anything (`--force`).
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
        Existing::Replace => Ok(()),
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
    if target.join("index").is_dir() && target.join("blobs").is_dir() {
        return Some("an r1flow store");
    }
    None
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
