//! CLI: a model held in the store, named `RUN/STAGE` (`last/zero`), for `generate` and
//! `export`: its weights and tokenizer are copied to a temporary directory, which the
//! model layer then reads like any model file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use r1flow::store::Store;
use r1flow::train::{MODEL_FILE, TOKENIZER_FILE};

use super::store_dir::StoreArgs;

/// Files of a stored model, removed when dropped.
pub(crate) struct StoredModel {
    dir: PathBuf,
    pub(crate) weights: PathBuf,
    pub(crate) tokenizer: PathBuf,
}

impl Drop for StoredModel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// When `model` names a stored model (`RUN/STAGE`, see [`resolve`]), points `model` at its
/// weights and `tokenizer`, unless set, at its tokenizer. The files live as long as what
/// is returned.
pub(crate) fn substitute(
    model: &mut String,
    tokenizer: &mut Option<PathBuf>,
    store: &StoreArgs,
) -> anyhow::Result<Option<StoredModel>> {
    let stored = resolve(model, store)?;
    if let Some(stored) = &stored {
        *model = stored.weights.display().to_string();
        tokenizer.get_or_insert_with(|| stored.tokenizer.clone());
    }
    Ok(stored)
}

/// When `spec` is `RUN/STAGE` (and no such path exists), the model that stage stored in
/// the store `store` names (read from the live snapshot while a run holds it).
pub(crate) fn resolve(spec: &str, store: &StoreArgs) -> anyhow::Result<Option<StoredModel>> {
    let Some((run_id, stage_name)) = spec.split_once('/') else {
        return Ok(None);
    };
    if Path::new(spec).exists() || spec.starts_with("preset:") || stage_name.contains('/') {
        return Ok(None);
    }
    let dir = store.resolve(None);
    if !Store::exists(&dir) {
        bail!(
            "`{spec}` is neither a path nor a stored model: no store at {} (pass --store)",
            dir.display()
        );
    }
    let store = super::store_dir::open_for_reading(&dir)?;
    let run = store.run(run_id)?;
    let Some(stage) = run.stages.iter().find(|s| s.name == stage_name) else {
        let names: Vec<&str> = run.stages.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "run {} has no stage `{stage_name}` (its stages: {})",
            run.id,
            names.join(", ")
        );
    };
    let artifact = store
        .artifact(&stage.key)?
        .with_context(|| format!("stage `{stage_name}` of run {} stored no outputs", run.id))?;
    let (Some(weights), Some(tokenizer)) = (
        artifact.outputs.get(MODEL_FILE),
        artifact.outputs.get(TOKENIZER_FILE),
    ) else {
        bail!(
            "stage `{stage_name}` ({}) did not produce a model",
            stage.kind
        );
    };
    let out = std::env::temp_dir().join(format!(
        "r1flow-model-{}-{}",
        std::process::id(),
        stage.key.short()
    ));
    std::fs::create_dir_all(&out)?;
    let model = StoredModel {
        weights: out.join(MODEL_FILE),
        tokenizer: out.join(TOKENIZER_FILE),
        dir: out,
    };
    std::fs::write(&model.weights, store.blobs().read(weights)?)?;
    std::fs::write(&model.tokenizer, store.blobs().read(tokenizer)?)?;
    Ok(Some(model))
}
