//! Execute (dry): what running a plan would do, from the store — each instance cached,
//! resumable from a checkpoint, or to run, and for a re-run, which key fields changed.

use std::collections::BTreeMap;

use crate::plan::{explain_miss, Plan, StageKey, StageState};
use crate::store::{Store, StoreError};

/// The state of every instance of `plan` in `store`, by key.
pub fn stage_states(
    plan: &Plan,
    store: &Store,
) -> Result<BTreeMap<StageKey, StageState>, StoreError> {
    let mut states = BTreeMap::new();
    for stage in &plan.stages {
        let state = if store.artifact(&stage.key)?.is_some() {
            StageState {
                label: "cached".into(),
                why: Vec::new(),
            }
        } else if let Some(checkpoint) = store.checkpoint(&stage.key)? {
            StageState {
                label: format!("resume@{}", checkpoint.step),
                why: Vec::new(),
            }
        } else {
            let mut why = Vec::new();
            for variant in &stage.variants {
                if let Some(previous) = store.history(&plan.name, variant, &stage.name)? {
                    if previous.key != stage.key {
                        why = explain_miss(&previous.material, &stage.key_material.material());
                        break;
                    }
                }
            }
            StageState {
                label: "run".into(),
                why,
            }
        };
        states.insert(stage.key.clone(), state);
    }
    Ok(states)
}
