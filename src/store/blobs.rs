//! Store: content-addressed blob files under `blobs/ab/abcdef…`. A blob is written to a
//! temporary file, fsynced, renamed into place and its directory fsynced, so a crash never
//! leaves a partial blob under a real name; every read verifies the hash.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreErrorKind};

/// A stored blob: its blake3 hash (64 hex digits) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub hash: String,
    pub bytes: u64,
}

/// The blob directory of a store.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
    tmp: PathBuf,
}

impl Blobs {
    pub fn open(store_dir: &Path) -> Result<Self, StoreError> {
        let root = store_dir.join("blobs");
        let tmp = store_dir.join("tmp");
        for dir in [&root, &tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(e, dir))?;
        }
        // Temporary files of a crashed writer are garbage.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self { root, tmp })
    }

    /// The blob directory of the store at `store_dir` for a writer other than the store's
    /// owner (a worker process): its temporary files go to `tmp`, private to it, and
    /// nobody else's are touched.
    pub fn for_worker(store_dir: &Path, tmp: PathBuf) -> Result<Self, StoreError> {
        let root = store_dir.join("blobs");
        for dir in [&root, &tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(e, dir))?;
        }
        Ok(Self { root, tmp })
    }

    /// Where the blob `hash` lives.
    pub fn path(&self, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.root.join(prefix).join(hash)
    }

    /// Stores `bytes`; a blob with the same content is written once.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, StoreError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let blob = BlobRef {
            hash: hash.clone(),
            bytes: bytes.len() as u64,
        };
        let target = self.path(&hash);
        if target.is_file() && self.verify(&blob).is_ok() {
            return Ok(blob);
        }
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(e, &dir))?;
        let temp = self
            .tmp
            .join(format!("{hash}.{}.partial", std::process::id()));
        let result = (|| {
            let mut file = File::create(&temp)?;
            crate::store::disk_full()?;
            file.write_all(bytes)?;
            crate::store::failpoint("blob-write");
            file.sync_all()?;
            fs::rename(&temp, &target)?;
            File::open(&dir)?.sync_all()
        })();
        if let Err(error) = result {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io(error, &target));
        }
        Ok(blob)
    }

    /// The bytes of `blob`, verified against its hash.
    pub fn read(&self, blob: &BlobRef) -> Result<Vec<u8>, StoreError> {
        let path = self.path(&blob.hash);
        let mut bytes = Vec::with_capacity(blob.bytes as usize);
        match File::open(&path) {
            Ok(mut file) => file
                .read_to_end(&mut bytes)
                .map_err(|e| StoreError::io(e, &path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::new(StoreErrorKind::MissingBlob {
                    hash: blob.hash.clone(),
                }))
            }
            Err(e) => return Err(StoreError::io(e, &path)),
        };
        if blake3::hash(&bytes).to_hex().as_str() != blob.hash {
            return Err(StoreError::new(StoreErrorKind::CorruptBlob {
                hash: blob.hash.clone(),
            }));
        }
        Ok(bytes)
    }

    /// Checks that `blob` exists and hashes right, without keeping its bytes.
    pub fn verify(&self, blob: &BlobRef) -> Result<(), StoreError> {
        let path = self.path(&blob.hash);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::new(StoreErrorKind::MissingBlob {
                    hash: blob.hash.clone(),
                }))
            }
            Err(e) => return Err(StoreError::io(e, &path)),
        };
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(|e| StoreError::io(e, &path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        if hasher.finalize().to_hex().as_str() != blob.hash {
            return Err(StoreError::new(StoreErrorKind::CorruptBlob {
                hash: blob.hash.clone(),
            }));
        }
        Ok(())
    }

    /// Every blob on disk: (hash, size).
    pub fn list(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut blobs = Vec::new();
        let prefixes = fs::read_dir(&self.root).map_err(|e| StoreError::io(e, &self.root))?;
        for prefix in prefixes.flatten() {
            let Ok(entries) = fs::read_dir(prefix.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                blobs.push((entry.file_name().to_string_lossy().into_owned(), size));
            }
        }
        blobs.sort();
        Ok(blobs)
    }

    /// Deletes the blob `hash` (used by gc and when a corrupt blob is found).
    pub fn remove(&self, hash: &str) -> Result<(), StoreError> {
        let path = self.path(hash);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(e, &path)),
            _ => Ok(()),
        }
    }
}
