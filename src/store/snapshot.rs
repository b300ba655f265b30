//! Store: the live snapshot — while a run holds the store (sled's index is one process's),
//! the coordinator publishes a copy of the whole index every few seconds as one file,
//! written beside and renamed, so that `runs`, `runs show`, `metrics`, `report` and
//! `compare` in another terminal read the state as of a moment ago, without the lock and
//! without ever touching the run's index.
//!
//! Format: `R1FLOW-SNAPSHOT 1\n`, then for each tree its name and entries, every field
//! length-prefixed (u32 little-endian), a tree ended by an empty key of length
//! `u32::MAX`.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::{StoreError, StoreErrorKind};

const MAGIC: &[u8] = b"R1FLOW-SNAPSHOT 1\n";
const END_OF_TREE: u32 = u32::MAX;

/// Where a store's snapshot lives.
pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join("snapshot").join("index.snap")
}

fn corrupt(path: &Path, what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Record(format!(
        "{}: {what}; the snapshot is replaced within seconds while the run goes on",
        path.display()
    )))
}

/// Writes every tree of `db` to the snapshot file of `dir`, atomically.
pub(super) fn publish(db: &sled::Db, trees: &[&str], dir: &Path) -> Result<(), StoreError> {
    let target = path(dir);
    let parent = target.parent().unwrap_or(dir).to_path_buf();
    fs::create_dir_all(&parent).map_err(|e| StoreError::io(e, &parent))?;
    let temp = parent.join(format!(".index.snap.{}", std::process::id()));
    let written = (|| -> Result<(), StoreError> {
        let file = File::create(&temp).map_err(|e| StoreError::io(e, &temp))?;
        let mut out = BufWriter::new(file);
        let io = |e| StoreError::io(e, &temp);
        out.write_all(MAGIC).map_err(io)?;
        let field = |out: &mut BufWriter<File>, bytes: &[u8]| -> Result<(), StoreError> {
            let len = u32::try_from(bytes.len())
                .map_err(|_| StoreError::new(StoreErrorKind::Record("record too large".into())))?;
            out.write_all(&len.to_le_bytes()).map_err(io)?;
            out.write_all(bytes).map_err(io)
        };
        for name in trees {
            field(&mut out, name.as_bytes())?;
            for entry in db.open_tree(name)?.iter() {
                let (key, value) = entry?;
                field(&mut out, &key)?;
                field(&mut out, &value)?;
            }
            out.write_all(&END_OF_TREE.to_le_bytes()).map_err(io)?;
        }
        let file = out
            .into_inner()
            .map_err(|e| StoreError::io(e.into_error(), &temp))?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, &target).map_err(|e| StoreError::io(e, &target))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Reads the snapshot of `dir` into a temporary, in-memory index; also when it was written.
pub(super) fn load(dir: &Path) -> Result<Option<(sled::Db, SystemTime)>, StoreError> {
    let path = path(dir);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(e, &path)),
    };
    let written = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut input = BufReader::new(file);
    let mut magic = vec![0u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| corrupt(&path, "not a snapshot"))?;
    if magic != MAGIC {
        return Err(corrupt(&path, "not a snapshot of this format"));
    }
    let db = sled::Config::new().temporary(true).open()?;
    let read_len = |input: &mut BufReader<File>| -> Result<Option<u32>, StoreError> {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => Ok(Some(u32::from_le_bytes(len))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(StoreError::io(e, &path)),
        }
    };
    let read_field = |input: &mut BufReader<File>, len: u32| -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        input
            .take(u64::from(len))
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(e, &path))?;
        if bytes.len() != len as usize {
            return Err(corrupt(&path, "truncated"));
        }
        Ok(bytes)
    };
    while let Some(len) = read_len(&mut input)? {
        let name = read_field(&mut input, len)?;
        let tree = db.open_tree(name)?;
        loop {
            let len = read_len(&mut input)?.ok_or_else(|| corrupt(&path, "truncated"))?;
            if len == END_OF_TREE {
                break;
            }
            let key = read_field(&mut input, len)?;
            let len = read_len(&mut input)?.ok_or_else(|| corrupt(&path, "truncated"))?;
            let value = read_field(&mut input, len)?;
            tree.insert(key, value)?;
        }
    }
    Ok(Some((db, written)))
}
