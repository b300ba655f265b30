//! Execute: the verifiable tasks of the `dataset` stage — Countdown and arithmetic
//! generators, prompt templates (checkpoints' chat templates too) and the train/test split — whose items the `grpo`,
//! `rejection_sampling` and `eval` stages score with [`crate::rewards`].

pub mod arithmetic;
pub mod chat_budget;
pub mod chat_render;
pub mod chat_template;
pub mod columns;
pub mod countdown;
pub mod error;
pub mod example;
pub mod noise;
pub mod reference_answer;
pub mod rng;
pub mod solution;
pub mod split;
pub mod template;

pub use chat_render::{ChatRenderer, RenderBatch, RenderFailure};
pub use chat_template::{ChatMessage, ChatTemplate};
pub use error::TaskError;
pub use example::{CountdownItem, Example};
pub use reference_answer::extract_reference;
pub use rng::SeededRng;
pub use split::{split, Split};
pub use template::{render, render_all, RenderedPrompt};

use crate::manifest::DatasetDecl;

/// The items of a generated dataset; `None` for a `jsonl` dataset, which is read, not
/// generated.
pub fn generate(decl: &DatasetDecl, seed: u64) -> Option<Result<Vec<Example>, TaskError>> {
    match decl {
        DatasetDecl::Countdown(task) => Some(countdown::generate(task, seed)),
        DatasetDecl::Arithmetic(task) => Some(arithmetic::generate(task, seed)),
        DatasetDecl::Jsonl(_) => None,
    }
}
