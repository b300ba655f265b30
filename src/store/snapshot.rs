//! Store: the live snapshot — while a run holds the store (sled's index is one process's),
//! the coordinator publishes a copy of the whole index every few seconds and once more when
//! the run ends, as one file, written beside and renamed, so that `runs`, `runs show`,
//! `metrics`, `report` and `compare` in another terminal read the state as of a moment
//! ago, without the lock and without ever touching the run's index. It is also the copy
//! `r1flow recover` can rebuild a damaged index from.
//!
//! Format: `R1FLOW-SNAPSHOT 2\n`, then for each tree its name and entries, every field
//! length-prefixed (u32 little-endian), a tree ended by an empty key of length
//! `u32::MAX`, then the 32-byte blake3 hash of everything before it (a snapshot cut short
//! or altered is refused, never read as a smaller index).

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::{StoreError, StoreErrorKind};

const MAGIC: &[u8] = b"R1FLOW-SNAPSHOT 2\n";
/// How a snapshot being written beside the published one begins its name (then the
/// writer's pid); one left by an interrupted publish is removed when the store is opened.
pub(super) const TEMP_PREFIX: &str = ".index.snap.";
/// The largest snapshot read back (the index of a store is kilobytes to megabytes).
const MAX_BYTES: u64 = 4 << 30;
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
    let temp = parent.join(format!("{TEMP_PREFIX}{}", std::process::id()));
    let written = (|| -> Result<(), StoreError> {
        let file = File::create(&temp).map_err(|e| StoreError::io(e, &temp))?;
        let mut out = Hashing {
            out: BufWriter::new(file),
            hash: blake3::Hasher::new(),
        };
        let io = |e| StoreError::io(e, &temp);
        out.write_all(MAGIC).map_err(io)?;
        let field = |out: &mut Hashing, bytes: &[u8]| -> Result<(), StoreError> {
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
        let hash = out.hash.finalize();
        let mut out = out.out;
        out.write_all(hash.as_bytes()).map_err(io)?;
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

/// A writer that hashes what it writes.
struct Hashing {
    out: BufWriter<File>,
    hash: blake3::Hasher,
}

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.hash.update(&bytes[..written]);
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads the snapshot of `dir` into a temporary, in-memory index; also when it was written.
pub(super) fn load(dir: &Path) -> Result<Option<(sled::Db, SystemTime)>, StoreError> {
    let path = path(dir);
    let Some(file) = super::open_if_exists(&path)? else {
        return Ok(None);
    };
    let written = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(e, &path))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(corrupt(&path, "larger than any index"));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt(&path, "not a snapshot of this format"));
    }
    let Some(body_len) = bytes.len().checked_sub(32).filter(|&n| n >= MAGIC.len()) else {
        return Err(corrupt(&path, "truncated"));
    };
    let (body, hash) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != hash {
        return Err(corrupt(
            &path,
            "cut short or altered (its checksum does not match)",
        ));
    }
    let db = sled::Config::new().temporary(true).open()?;
    let mut input = &body[MAGIC.len()..];
    let truncated = || corrupt(&path, "truncated");
    let read_len = |input: &mut &[u8]| -> Option<u32> {
        let (len, rest) = input.split_first_chunk::<4>()?;
        *input = rest;
        Some(u32::from_le_bytes(*len))
    };
    let read_field = |input: &mut &[u8], len: u32| -> Option<Vec<u8>> {
        let len = len as usize;
        let field = input.get(..len)?.to_vec();
        *input = &input[len..];
        Some(field)
    };
    while let Some(len) = read_len(&mut input) {
        let name = read_field(&mut input, len).ok_or_else(truncated)?;
        let tree = db.open_tree(name)?;
        loop {
            let len = read_len(&mut input).ok_or_else(truncated)?;
            if len == END_OF_TREE {
                break;
            }
            let key = read_field(&mut input, len).ok_or_else(truncated)?;
            let len = read_len(&mut input).ok_or_else(truncated)?;
            let value = read_field(&mut input, len).ok_or_else(truncated)?;
            tree.insert(key, value)?;
        }
    }
    Ok(Some((db, written)))
}
