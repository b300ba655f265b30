//! Plan: content fingerprints of the files a manifest names (checkpoints, JSONL files,
//! word lists, verifier scripts), so that editing a file invalidates the stages that read
//! it while moving or renaming it does not.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Hashes files and directories once per plan.
#[derive(Default)]
pub struct Fingerprints {
    cache: HashMap<PathBuf, String>,
}

impl Fingerprints {
    /// blake3 of a file's bytes, or of a directory's (name, content hash) list; a path
    /// that cannot be read hashes as `missing:<path>` (check has reported it already).
    pub fn of(&mut self, path: &Path) -> String {
        if let Some(hash) = self.cache.get(path) {
            return hash.clone();
        }
        let hash = if path.is_dir() {
            hash_dir(path)
        } else {
            hash_file(path)
        }
        .unwrap_or_else(|_| format!("missing:{}", path.display()));
        self.cache.insert(path.to_path_buf(), hash.clone());
        hash
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    // A FIFO or a device would block or never end: only regular files are hashed (check
    // has reported anything else).
    let mut file = crate::user_file::open(path).map_err(std::io::Error::other)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn hash_dir(path: &Path) -> std::io::Result<String> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    entries.sort();
    let mut hasher = blake3::Hasher::new();
    for (name, file) in entries {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(hash_file(&file)?.as_bytes());
        hasher.update(b"\n");
    }
    Ok(hasher.finalize().to_hex().to_string())
}
