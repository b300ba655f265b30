//! Execute: what a run shows while it goes — a live snapshot of the store for commands in
//! other terminals (`runs show`, `metrics`, `report`, `compare`), and every stage's curves
//! as TensorBoard event files — published every two seconds by a thread beside the run
//! loop, and once more when the run ends. A failure to publish is logged, never fatal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::tensorboard::EventFile;
use crate::plan::{StageKey, StageSpec};
use crate::store::Store;

/// How often the snapshot and the event files are brought up to date.
const EVERY: Duration = Duration::from_secs(2);

/// Publishes one run's live state.
pub(super) struct Publisher<'s> {
    store: &'s Store,
    /// Each stage instance's key and its directory name under the run's TensorBoard dir.
    stages: Vec<(StageKey, String)>,
    tensorboard: PathBuf,
    files: BTreeMap<StageKey, EventFile>,
}

impl<'s> Publisher<'s> {
    /// For the stages of a run, with event files under `tensorboard`.
    pub(super) fn new(store: &'s Store, specs: &[StageSpec], tensorboard: PathBuf) -> Self {
        let stages = specs
            .iter()
            .map(|spec| {
                let shared_name = specs.iter().filter(|s| s.name == spec.name).count() > 1;
                let label = if shared_name {
                    format!("{}@{}", spec.name, spec.variants.join("+"))
                } else {
                    spec.name.clone()
                };
                (spec.key.clone(), label.replace(['/', '\\'], "_"))
            })
            .collect();
        Self {
            store,
            stages,
            tensorboard,
            files: BTreeMap::new(),
        }
    }

    /// Brings the snapshot and the event files up to date.
    pub(super) fn tick(&mut self) {
        if let Err(error) = self.store.publish_snapshot() {
            tracing::warn!(%error, "could not publish the live snapshot");
        }
        for (key, label) in &self.stages {
            let points = match self.store.metrics(key) {
                Ok(points) if !points.is_empty() => points,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, stage = %label, "could not read metrics");
                    continue;
                }
            };
            let file = match self.files.get_mut(key) {
                Some(file) => file,
                None => match EventFile::create(&self.tensorboard.join(label)) {
                    Ok(file) => self.files.entry(key.clone()).or_insert(file),
                    Err(error) => {
                        tracing::warn!(%error, dir = %self.tensorboard.display(), "could not write TensorBoard events");
                        continue;
                    }
                },
            };
            if let Err(error) = file.append(&points) {
                tracing::warn!(%error, file = %file.path().display(), "could not write TensorBoard events");
            }
        }
    }

    /// Publishes every two seconds until `running` turns false, then once more.
    pub(super) fn run_while(&mut self, running: &AtomicBool) {
        let mut last = Instant::now();
        self.tick();
        while running.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() >= EVERY {
                self.tick();
                last = Instant::now();
            }
        }
        self.tick();
    }
}
