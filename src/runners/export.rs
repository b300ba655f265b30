//! Execute (stage kind `export`): a model as a HuggingFace directory, or with
//! `merge: false` its LoRA adapter as PEFT's, stored as the artifact and, with `path`,
//! also copied there.

use crate::exec::{StageContext, StageError, StageOutput};
use crate::stages::Export;
use crate::train::{self, ExportTask};

pub(super) fn run(
    settings: &Export,
    context: &mut StageContext<'_>,
) -> Result<StageOutput, StageError> {
    let numerics = train::stage_numerics(context);
    train::run_on_backend(numerics, ExportTask::new(settings, context))
}
