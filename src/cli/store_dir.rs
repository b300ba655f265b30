//! CLI: where the store is — `--store DIR`, else `$R1FLOW_STORE`, else `runs/` at the root
//! of the git work tree holding the manifest, else `runs/` beside the manifest.

use std::path::{Path, PathBuf};

use anyhow::bail;
use r1flow::store::{LockMode, Store};

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
    /// Opens the store the read commands (`runs`, `metrics`, `gc`, `rescore`) work on; it
    /// must exist already.
    pub(crate) fn open_existing(&self) -> anyhow::Result<Store> {
        let dir = self.resolve(None);
        if !Store::exists(&dir) {
            bail!(
                "no store at {} (run a pipeline first, or pass --store)",
                dir.display()
            );
        }
        Ok(Store::open(&dir, LockMode::Fail)?)
    }
}
