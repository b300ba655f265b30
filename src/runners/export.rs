//! Execute (stage kind `export`): a model as a HuggingFace directory, stored as the
//! artifact and, with `path`, also copied there.

use crate::exec::{StageContext, StageError, StageOutput};
use crate::stages::Export;
use crate::train::{self, ExportTask};

pub(super) fn run(
    settings: &Export,
    context: &mut StageContext<'_>,
) -> Result<StageOutput, StageError> {
    let copy_to = settings
        .copy_to
        .as_ref()
        .map(|p| context.spec().base_dir.join(p));
    let numerics = train::stage_numerics(context);
    train::run_on_backend(numerics, ExportTask { context, copy_to })
}
