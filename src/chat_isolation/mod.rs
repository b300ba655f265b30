//! Check and execute, beside the layers: chat templates rendered in a child process
//! under OS limits — the renderer the binary installs into the front end's seam
//! (`tasks::chat_render`) before it runs any command, so that `validate`, `plan`, `run`,
//! a dataset stage in any executor, and anything else that renders a checkpoint's
//! template, render it here.
//!
//! A chat template is a program a checkpoint brings, and MiniJinja's operators (`~`,
//! `+`, `*`) build strings with no hook for the in-process bounds: a string doubled in a
//! loop or by a recursive macro exhausts the memory of whatever process renders it. So a
//! batch (check's probes of a stage, or every record of a dataset stage) is rendered by
//! one child — this binary re-executed as `r1flow render-chat-template` — which sets
//! `RLIMIT_AS`, `RLIMIT_CPU` and no core dump on itself before reading anything, while
//! the parent keeps a wall clock on it. Its death by a limit is the failure of the
//! conversation it was rendering, named by the limit (`limits::explain`). The in-process
//! bounds still run inside the child, first, with their precise messages.
//!
//! It depends on the front end only, and only the CLI uses it (it starts the child and
//! mounts its subcommand).

mod child;
mod limits;
mod parent;
mod protocol;

use std::collections::HashMap;
use std::sync::Mutex;

pub use child::serve;
pub use limits::{Limits, MAX_MEMORY_BYTES};
pub use parent::CHILD_COMMAND;

use crate::tasks::{chat_render, ChatRenderer, RenderBatch, RenderFailure};

/// Batches of at most this many conversations (check's probes, the same for every
/// variant of an ablation) are remembered, so that a manifest checked variant by variant
/// starts one child per template, not one per variant.
const REMEMBERED_BATCH: usize = 4;

/// Outcomes of small batches by a hash of the template and the conversations.
type Remembered = HashMap<[u8; 32], Result<Vec<String>, RenderFailure>>;

/// Renders every batch in a child process under [`Limits::for_batch`].
#[derive(Debug, Default)]
pub struct Isolated {
    remembered: Mutex<Remembered>,
}

impl ChatRenderer for Isolated {
    fn render_all(&self, batch: &RenderBatch<'_>) -> Result<Vec<String>, RenderFailure> {
        if batch.conversations.is_empty() {
            return Ok(Vec::new());
        }
        let key = (batch.conversations.len() <= REMEMBERED_BATCH).then(|| key_of(batch));
        if let Some(known) = key.and_then(|key| self.lock().get(&key).cloned()) {
            return known;
        }
        let outcome = parent::render_in_child(batch, &Limits::for_batch(batch.conversations.len()));
        if let Some(key) = key {
            self.lock().insert(key, outcome.clone());
        }
        outcome
    }
}

impl Isolated {
    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What makes two batches render alike: the template, its tokens, the conversations.
fn key_of(batch: &RenderBatch<'_>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(batch.template.fingerprint().as_bytes());
    hasher.update(&[u8::from(batch.add_generation_prompt)]);
    hasher.update(&serde_json::to_vec(batch.conversations).unwrap_or_default());
    *hasher.finalize().as_bytes()
}

/// Makes [`Isolated`] this process's chat-template renderer (once; later calls keep it).
pub fn install() {
    chat_render::install(Box::new(Isolated::default()));
}
