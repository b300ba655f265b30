//! Store: one writer at a time. A `LOCK` file holds the owner's pid and command line under
//! an OS file lock (flock), so a lock left by a killed process is released by the OS and
//! simply taken over; a live holder is named in the error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{StoreError, StoreErrorKind};

/// Whether to fail at once or wait when another process holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Fail,
    Wait,
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
    /// The holder found in a lock file whose process had died, if any.
    pub took_over_from: Option<u32>,
}

impl StoreLock {
    pub fn acquire(dir: &Path, mode: LockMode) -> Result<Self, StoreError> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(e, &path))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if mode == LockMode::Fail {
                        let (pid, command, since) = read_holder(&mut file);
                        return Err(StoreError::new(StoreErrorKind::Locked {
                            pid,
                            command,
                            since,
                        }));
                    }
                    if started.elapsed() > Duration::from_secs(7 * 24 * 3600) {
                        return Err(StoreError::io(
                            std::io::Error::other("gave up waiting for the store lock"),
                            &path,
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(e, &path)),
            }
        }
        // We hold the OS lock: whatever the file says is a previous holder that is gone.
        let (previous, _, _) = read_holder(&mut file);
        let took_over_from = (previous != 0).then_some(previous);
        let command: Vec<String> = std::env::args().collect();
        let record = format!(
            "{}\n{}\n{}\n",
            std::process::id(),
            command.join(" "),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0).map_err(|e| StoreError::io(e, &path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io(e, &path))?;
        file.write_all(record.as_bytes())
            .map_err(|e| StoreError::io(e, &path))?;
        file.sync_all().map_err(|e| StoreError::io(e, &path))?;
        Ok(Self {
            _file: file,
            path,
            took_over_from,
        })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Clear the holder so the next process does not report a stale take-over.
        let _ = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path);
    }
}

fn read_holder(file: &mut File) -> (u32, String, String) {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    let mut lines = text.lines();
    let pid = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let command = lines.next().unwrap_or("unknown").to_string();
    let since = lines.next().unwrap_or("unknown").to_string();
    (pid, command, since)
}
