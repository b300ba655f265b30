//! Writing a directory whole (`export`, the `export` stage, `report`, `compare --plots`):
//! the files go into a new directory beside the target, which is then renamed into place.
//! So a directory never mixes an earlier output's files with a new one's, a failure
//! half-way leaves the old directory as it was, and a directory holding anything else is
//! only replaced when the user says so (`--force`).

use std::fmt;
use std::path::{Path, PathBuf};

/// What may be replaced when the target directory is not empty.
#[derive(Clone, Copy)]
pub enum Existing<'a> {
    /// Anything (`--force`).
    Replace,
    /// Nothing: a non-empty directory is refused (`export` without `--force`).
    Refuse,
    /// A directory whose every entry's name passes `is_ours` — an earlier output of the
    /// same command; anything else is refused with `help`.
    ReplaceOnly {
        is_ours: &'a dyn Fn(&str) -> bool,
        help: &'a str,
    },
}

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
    match existing {
        Existing::Replace => Ok(()),
        Existing::Refuse => Err(OutputDirError(format!(
            "{} is not empty; pass --force to replace it (its files are removed), or choose another directory",
            target.display()
        ))),
        Existing::ReplaceOnly { is_ours, help } => {
            let mut foreign: Vec<&String> = entries.iter().filter(|e| !is_ours(e)).collect();
            if foreign.is_empty() {
                return Ok(());
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
    if let Err(error) = write(&fresh) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(OutputDirError(format!("{error:#}")));
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
