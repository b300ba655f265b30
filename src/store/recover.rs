//! Store: `r1flow recover` — rebuilds a damaged index from the newest readable copy of
//! it: what sled can still read of the damaged index, or the live snapshot the last run
//! published (every two seconds while it ran, and when it ended). The damaged index is
//! moved aside, never deleted; blobs are not touched (they are content-addressed and
//! verified whenever a record names them). What the copy lacks is said in commits: the
//! stages whose records were lost run again on the next `run`.

use std::path::{Path, PathBuf};

use super::error::{StoreError, StoreErrorKind};
use super::lock::{LockMode, StoreLock};
use super::{generation_of, seal, snapshot, Store, FORMAT_VERSION, TREES};

/// What `recover` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged index was moved.
    pub moved_to: PathBuf,
    /// The copy the new index was built from.
    pub source: RecoverySource,
    /// The commits the copy holds.
    pub restored_generation: u64,
    /// The commits the seal recorded (`None`: no readable seal).
    pub sealed_generation: Option<u64>,
}

/// Which copy of the index a recovery used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverySource {
    /// What sled could still read of the damaged index.
    Index,
    /// The live snapshot of the last run.
    Snapshot,
}

impl Recovery {
    /// Commits the seal recorded that the new index lacks (0 when nothing was lost, or
    /// when there was no seal to tell).
    pub fn lost_commits(&self) -> u64 {
        self.sealed_generation
            .map_or(0, |sealed| sealed.saturating_sub(self.restored_generation))
    }
}

fn damaged(message: String, dir: &Path) -> StoreError {
    StoreError::new(StoreErrorKind::Damaged(message)).with_path(dir.join("index"))
}

/// A readable copy of the index and the commits it holds.
fn candidate(db: sled::Db) -> Option<(sled::Db, u64)> {
    let format = db.open_tree("meta").ok()?.get("format").ok()??;
    if serde_json::from_slice::<u32>(&format).ok()? != FORMAT_VERSION {
        return None;
    }
    let generation = generation_of(&db).ok()?;
    Some((db, generation))
}

impl Store {
    /// Rebuilds the index of the store in `dir` from its newest readable copy; see the
    /// module. Refused while another process holds the store, and where no copy can be
    /// read (then the blobs are all that is left, and the store must be started anew).
    pub fn recover(dir: &Path) -> Result<Recovery, StoreError> {
        let index = dir.join("index");
        if !index.is_dir() {
            return Err(StoreError::new(StoreErrorKind::NotAStore).with_path(dir));
        }
        let _lock = StoreLock::acquire(dir, LockMode::Fail)?;
        super::remove_stale_temporaries(dir);
        let sealed = seal::read(dir).ok().flatten();
        // sled holds its files open (and locked) while the handle lives: read the damaged
        // index through a copy, so that it can be moved aside afterwards.
        let from_index = copy_dir(&index, &dir.join("tmp").join("index-being-recovered"))
            .ok()
            .and_then(|copy| {
                let db = sled::Config::new().path(&copy).open().ok();
                db.and_then(candidate).map(|c| (c, copy))
            });
        let from_snapshot = snapshot::load(dir)
            .ok()
            .flatten()
            .and_then(|(db, _)| candidate(db));
        let (source, (db, generation)) = match (from_index, from_snapshot) {
            (Some((index_copy, _)), Some(snap)) if snap.1 > index_copy.1 => {
                (RecoverySource::Snapshot, snap)
            }
            (Some((index_copy, _)), _) => (RecoverySource::Index, index_copy),
            (None, Some(snap)) => (RecoverySource::Snapshot, snap),
            (None, None) => {
                return Err(damaged(
                    "neither the index nor the last run's snapshot can be read, so there is \
                     nothing to rebuild it from; move the store aside and start a new one"
                        .into(),
                    dir,
                ))
            }
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let moved_to = dir.join(format!("index.damaged-{stamp}"));
        std::fs::rename(&index, &moved_to).map_err(|e| StoreError::io(e, &index))?;
        let rebuilt = (|| -> Result<(), StoreError> {
            let fresh = sled::Config::new().path(&index).open()?;
            for name in TREES {
                let from = db.open_tree(name)?;
                let to = fresh.open_tree(name)?;
                for entry in from.iter() {
                    let (key, value) = entry?;
                    to.insert(key, value)?;
                }
            }
            // The new index is sealed past every generation seen, so that the old seal
            // can never call it damaged again.
            let generation = generation.max(sealed.unwrap_or(0)) + 1;
            fresh
                .open_tree("meta")?
                .insert("generation", super::encode(&generation)?)?;
            fresh.flush()?;
            seal::write(dir, generation)
        })();
        drop(db);
        let _ = std::fs::remove_dir_all(dir.join("tmp").join("index-being-recovered"));
        if let Err(error) = rebuilt {
            // Put the damaged index back rather than leave none.
            let _ = std::fs::remove_dir_all(&index);
            let _ = std::fs::rename(&moved_to, &index);
            return Err(error);
        }
        Ok(Recovery {
            moved_to,
            source,
            restored_generation: generation,
            sealed_generation: sealed,
        })
    }
}

/// Copies the directory `from` (sled's: its files and its `blobs/`) into `to`.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(to.to_path_buf())
}
