//! Store: the index's seal — how many times the index has been committed, kept outside
//! sled in a file of its own. sled recovers a log cut short or with flipped bytes by
//! stopping at the damage and opening what came before it, silently: a succeeded run would
//! read as interrupted and its stages would run again. Every commit of the store (an
//! artifact, a run record, a checkpoint: each `flush`) raises the index's `generation`
//! record and then this file's; on open, an index older than its seal is reported as
//! damaged (with `r1flow recover`), never read as an older store.
//!
//! The file is one line, `r1flow-seal 1 GENERATION BLAKE3`, the hash over the text before
//! it: a seal that was itself cut short or altered is reported too.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::error::{StoreError, StoreErrorKind};

const FILE: &str = "index.seal";
const PREFIX: &str = "r1flow-seal 1";
/// How a seal being written beside the current one begins its name (then the writer's
/// pid); one left by an interrupted write is removed when the store is opened.
pub(super) const TEMP_PREFIX: &str = ".index.seal.";

/// Where the seal of the store in `dir` lives.
pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn line(generation: u64) -> String {
    let body = format!("{PREFIX} {generation}");
    let hash = blake3::hash(body.as_bytes()).to_hex();
    format!("{body} {hash}\n")
}

/// The sealed generation of the store in `dir`; `None` where there is no seal (a store
/// made before seals, or a new one).
pub(super) fn read(dir: &Path) -> Result<Option<u64>, StoreError> {
    let path = path(dir);
    let Some(mut file) = super::open_if_exists(&path)? else {
        return Ok(None);
    };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| StoreError::io(e, &path))?;
    let generation = text
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|g| g.parse::<u64>().ok())
        .filter(|&g| line(g) == text);
    match generation {
        Some(generation) => Ok(Some(generation)),
        None => Err(StoreError::new(StoreErrorKind::Damaged(format!(
            "its seal {} is unreadable (cut short or altered), so whether the index lost \
             records cannot be told",
            path.display()
        )))),
    }
}

/// Seals `generation`: written beside, fsynced, renamed over the old seal, and the
/// directory fsynced, so the seal on disk is always a whole one.
pub(super) fn write(dir: &Path, generation: u64) -> Result<(), StoreError> {
    let target = path(dir);
    let temp = dir.join(format!("{TEMP_PREFIX}{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(line(generation).as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &target)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::io(e, &target));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_and_an_altered_one_is_damage() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path()).expect("no seal"), None);
        write(dir.path(), 41).expect("seal");
        assert_eq!(read(dir.path()).expect("read"), Some(41));
        write(dir.path(), 42).expect("seal again");
        assert_eq!(read(dir.path()).expect("read"), Some(42));
        let text = fs::read_to_string(path(dir.path())).expect("seal text");
        for altered in [
            text.replace(" 42 ", " 43 "),
            text[..text.len() / 2].to_string(),
        ] {
            fs::write(path(dir.path()), altered).expect("alter");
            let error = read(dir.path()).expect_err("altered seal");
            assert!(error.to_string().contains("seal"), "{error}");
        }
    }
}
