//! Store: errors of the artifact store, as values with the path or key they concern.

use std::fmt;
use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug)]
pub enum StoreErrorKind {
    /// Another live process holds the store.
    Locked {
        pid: u32,
        command: String,
        since: String,
    },
    /// The store was written by an incompatible version of r1flow.
    Format { found: u32, expected: u32 },
    /// A blob's bytes do not hash to its name.
    CorruptBlob { hash: String },
    /// A blob the index refers to is missing.
    MissingBlob { hash: String },
    /// The index (sled) failed.
    Index(String),
    /// A filesystem operation failed (disk full, permissions …).
    Io(std::io::Error),
    /// A record in the index could not be decoded.
    Record(String),
    /// A run id that is not in the store.
    UnknownRun(String),
    /// A directory that holds other things and no store.
    NotAStore,
    /// The store's path names a file, not a directory.
    NotADirectory,
    /// The index cannot be read (sled's reason).
    Damaged(String),
}

/// An error of the artifact store, with the path it concerns.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    path: Option<PathBuf>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind) -> Self {
        Self { kind, path: None }
    }

    pub fn io(error: std::io::Error, path: impl Into<PathBuf>) -> Self {
        Self {
            kind: StoreErrorKind::Io(error),
            path: Some(path.into()),
        }
    }

    /// The same error, about `path`.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn kind(&self) -> &StoreErrorKind {
        &self.kind
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// Whether the error means stored data is damaged (and should be recomputed).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::CorruptBlob { .. } | StoreErrorKind::MissingBlob { .. }
        )
    }
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        Self::new(StoreErrorKind::Index(error.to_string()))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StoreErrorKind::Locked { pid, command, since } => write!(
                f,
                "the store is in use by process {pid} (`{command}`, since {since}); wait for it to finish, or pass --wait"
            )?,
            StoreErrorKind::Format { found, expected } => write!(
                f,
                "the store has format version {found}, this r1flow reads version {expected}; use a new --store directory"
            )?,
            StoreErrorKind::CorruptBlob { hash } => {
                write!(f, "blob {hash} is corrupt (its bytes no longer match its hash)")?
            }
            StoreErrorKind::MissingBlob { hash } => write!(f, "blob {hash} is missing")?,
            StoreErrorKind::Index(message) => write!(f, "store index error: {message}")?,
            StoreErrorKind::Io(error) => {
                return match &self.path {
                    Some(path) => write!(f, "store file {}: {error}", path.display()),
                    None => write!(f, "store: {error}"),
                };
            }
            StoreErrorKind::Record(message) => write!(f, "unreadable store record: {message}")?,
            StoreErrorKind::UnknownRun(id) => {
                write!(f, "no run `{id}` in this store (see `r1flow runs`)")?
            }
            StoreErrorKind::NotAStore => {
                return match &self.path {
                    Some(path) => write!(
                        f,
                        "{} is not an r1flow store: it holds other files and no index; pass --store with a new or empty directory",
                        path.display()
                    ),
                    None => write!(f, "not an r1flow store"),
                };
            }
            StoreErrorKind::NotADirectory => {
                let path = self.path.as_deref().unwrap_or(std::path::Path::new("runs"));
                return write!(
                    f,
                    "{} is a file, not a store directory; pass --store with a directory (a new \
                     or empty one becomes a store)",
                    path.display()
                );
            }
            StoreErrorKind::Damaged(message) => {
                let path = self.path.as_deref().unwrap_or(std::path::Path::new("index"));
                let store = path.parent().unwrap_or(path);
                // sled's messages end in internal detail ("at file offset None backtrace ()").
                let message = [" at file offset", " backtrace"]
                    .iter()
                    .filter_map(|cut| message.find(cut))
                    .min()
                    .map_or(message.as_str(), |at| &message[..at]);
                return write!(
                    f,
                    "the store index {} is damaged ({message}); its results cannot be read. \
                     Run `r1flow recover --store {}`: it moves the damaged index aside (nothing \
                     is deleted) and rebuilds it from the newest readable copy (what sled can \
                     still read, or the snapshot the last run left), saying what was lost; \
                     stages whose records were lost run again, their blobs are kept",
                    path.display(),
                    store.display(),
                );
            }
        }
        if let Some(path) = &self.path {
            write!(f, " ({})", path.display())?;
        }
        Ok(())
    }
}

// The io error is part of the message; no `source`, so `{:#}` does not repeat it.
impl std::error::Error for StoreError {}
