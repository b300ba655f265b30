//! CLI: where the store is — `--store DIR`, else `$R1FLOW_STORE`, else `runs/` at the root
//! of the git work tree holding the manifest, else `runs/` beside the manifest.

use std::path::{Path, PathBuf};

use anyhow::bail;
use r1flow::store::{LockMode, Store, StoreError, StoreErrorKind};

/// The `--store` option shared by the commands that read or write the store.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The artifact store directory (default: `runs/` at the project root).
    #[arg(long, value_name = "DIR", env = "R1FLOW_STORE", global = true)]
    pub(crate) store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store for `manifest` (or for the current directory when there is none).
    pub(crate) fn resolve(&self, manifest: Option<&Path>) -> PathBuf {
        if let Some(dir) = &self.store {
            return dir.clone();
        }
        let start = manifest
            .and_then(Path::parent)
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
        start
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .unwrap_or(&start)
            .join("runs")
    }
}

impl StoreArgs {
    /// Opens the store `gc` works on, which must exist already; it takes the lock.
    pub(crate) fn open_existing(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.existing()?, LockMode::Fail)?)
    }

    /// Opens the store the read commands (`runs`, `metrics`, `report`, `rescore`) work on;
    /// while a run holds it, its live snapshot.
    pub(crate) fn open_for_reading(&self) -> anyhow::Result<Store> {
        open_for_reading(&self.existing()?)
    }

    /// The store's directory, which must hold a store already.
    fn existing(&self) -> anyhow::Result<PathBuf> {
        let dir = self.resolve(None);
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::new(StoreErrorKind::NotADirectory)
                .with_path(dir)
                .into());
        }
        if !Store::exists(&dir) {
            bail!(
                "no store at {} (run a pipeline first, or pass --store)",
                dir.display()
            );
        }
        Ok(dir)
    }
}

/// The store in `dir` for reading: itself, or, while a run holds it, the live snapshot
/// that run publishes (as of a few seconds ago).
pub(crate) fn open_for_reading(dir: &Path) -> anyhow::Result<Store> {
    match Store::open(dir, LockMode::Fail) {
        Ok(store) => Ok(store),
        Err(error) if matches!(error.kind(), StoreErrorKind::Locked { .. }) => {
            match Store::open_snapshot(dir)? {
                Some(snapshot) => Ok(snapshot),
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}
