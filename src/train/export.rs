//! Execute (training): what an `export` stage writes — the model named by `from` as a
//! HuggingFace checkpoint directory (a stage's LoRA adapter merged into it), or with
//! `merge: false` its LoRA adapter as PEFT's adapter directory — stored as the stage's
//! files and, with `path`, also copied there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::models::{failed, load_input};
use crate::exec::{StageContext, StageError, StageOutput};
use crate::model::peft_adapter::{self, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
use crate::model::{self, KernelBackend};
use crate::plan::InputSpec;
use crate::stages::{Export, InputField};

/// The `export` stage's work.
pub struct ExportTask<'c, 'a> {
    pub context: &'c mut StageContext<'a>,
    /// Where the files are also copied, resolved against the manifest's directory.
    pub copy_to: Option<PathBuf>,
    /// The whole model, or its adapter.
    pub merge: bool,
    /// adapter_config.json's `base_model_name_or_path` (with `merge: false`).
    pub base_model: Option<String>,
}

impl<'c, 'a> ExportTask<'c, 'a> {
    /// The task of a checked `export` stage.
    pub fn new(settings: &Export, context: &'c mut StageContext<'a>) -> Self {
        let copy_to = settings
            .copy_to
            .as_ref()
            .map(|p| context.spec().base_dir.join(p));
        Self {
            context,
            copy_to,
            merge: settings.merge,
            base_model: settings.base_model.clone(),
        }
    }
}

impl model::BackendTask for ExportTask<'_, '_> {
    type Output = Result<StageOutput, StageError>;

    fn run<B: crate::model::TrainBackend>(self, device: B::Device) -> Self::Output {
        let (files, parameters) = if self.merge {
            checkpoint_files::<B::InnerBackend>(self.context, &device)?
        } else {
            adapter_files::<B::InnerBackend>(self.context, self.base_model.as_deref(), &device)?
        };
        if let Some(target) = &self.copy_to {
            copy_out(&files, target)?;
        }
        let metrics = BTreeMap::from([("parameters".to_string(), parameters as f64)]);
        Ok(StageOutput { files, metrics })
    }
}

type Files = Vec<(String, Vec<u8>)>;

/// The model as a HuggingFace directory, by file name, and its parameter count.
fn checkpoint_files<B: KernelBackend>(
    context: &StageContext<'_>,
    device: &B::Device,
) -> Result<(Files, usize), StageError> {
    let loaded = load_input::<B>(context, InputField::From, 0, device)?;
    let temp = std::env::temp_dir().join(format!(
        "r1flow-export-{}-{}",
        std::process::id(),
        context.spec().key.short()
    ));
    model::save_hf_dir(&loaded.model, &loaded.config, &loaded.tokenizer, &temp).map_err(failed)?;
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&temp)
        .map_err(failed)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(entry.path()).map_err(failed)?));
    }
    let _ = std::fs::remove_dir_all(&temp);
    Ok((files, loaded.config.num_params()))
}

/// The LoRA adapter of `from` as PEFT's two files, named for `base_model`, and its
/// parameter count: a training stage's stored adapter, or a declared model's `adapter:`
/// (read onto its checkpoint, so that a file that does not fit it is refused here).
fn adapter_files<B: KernelBackend>(
    context: &StageContext<'_>,
    base_model: Option<&str>,
    device: &B::Device,
) -> Result<(Files, usize), StageError> {
    let spec = context.spec();
    let no_adapter = |what: &str| {
        StageError::input(
            spec,
            InputField::From,
            format!(
                "{what}, so `merge: false` has no LoRA adapter to export; train it with \
                 `lora:` (or declare the model with `adapter:`), or remove `merge: false` \
                 to export the whole model"
            ),
        )
    };
    let (config_bytes, weights) = match spec.input(InputField::From) {
        Some(InputSpec::Artifact { .. }) => {
            let artifact = context.input(InputField::From)?;
            if !artifact.outputs.contains_key(ADAPTER_CONFIG_FILE) {
                return Err(no_adapter("it was trained without `lora:`"));
            }
            (
                context.read_input(InputField::From, ADAPTER_CONFIG_FILE)?,
                context.read_input(InputField::From, ADAPTER_WEIGHTS_FILE)?,
            )
        }
        Some(InputSpec::Model { decl, .. }) => {
            let (Some(path), Some(adapter)) = (&decl.path, &decl.adapter) else {
                return Err(no_adapter("it is declared without `adapter:`"));
            };
            let unusable = |e: &dyn std::fmt::Display| StageError::input(spec, InputField::From, e);
            let base = model::load_hf_dir::<B>(&spec.base_dir.join(path), device)
                .map_err(|e| unusable(&e))?;
            let (adapted, read) =
                peft_adapter::load_peft_adapter(base.model, &spec.base_dir.join(adapter), device)
                    .map_err(|e| unusable(&e))?;
            let mut files = model::peft_adapter_files(&adapted, &read.lora, None)
                .map_err(|e| unusable(&e))?
                .into_iter()
                .collect::<BTreeMap<_, _>>();
            (
                files.remove(ADAPTER_CONFIG_FILE).unwrap_or_default(),
                files.remove(ADAPTER_WEIGHTS_FILE).unwrap_or_default(),
            )
        }
        _ => return Err(no_adapter("it is not a model")),
    };
    let mut adapter = peft_adapter::parse_peft_config(&config_bytes, ADAPTER_CONFIG_FILE)
        .map_err(|e| StageError::input(spec, InputField::From, e))?;
    adapter.base_model_name_or_path = base_model.map(str::to_string);
    let config = peft_adapter::peft_config_file(&adapter).map_err(failed)?;
    let parameters = peft_adapter::parameter_count(&weights).map_err(failed)?;
    Ok((
        vec![
            (ADAPTER_CONFIG_FILE.to_string(), config),
            (ADAPTER_WEIGHTS_FILE.to_string(), weights),
        ],
        parameters,
    ))
}

/// Copies the files to `target`, replacing an earlier export there whole; anything else
/// is left alone and refused.
fn copy_out(files: &Files, target: &std::path::Path) -> Result<(), StageError> {
    let is_ours = |entry: &str| files.iter().any(|(name, _)| name == entry);
    crate::output_dir::replace_dir(
        target,
        crate::output_dir::Existing::ReplaceOnly {
            is_ours: &is_ours,
            help: "an export stage only replaces an earlier export: choose an empty directory or move those files away",
        },
        |dir| {
            files.iter().try_for_each(|(name, bytes)| {
                let path = dir.join(name);
                std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
            })
        },
    )
    .map_err(failed)
}
