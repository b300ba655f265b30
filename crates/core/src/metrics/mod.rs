//! Report: the evaluation metrics of the `eval` stage — unbiased pass@k, majority-vote
//! cons@k, and the summary of an evaluation's samples under the metric names reports use —
//! and the mechanism metrics (worked vs shortcut answers, length by outcome, truncation)
//! that `eval` and GRPO log.

pub mod cons_at_k;
pub mod mechanism;
pub mod pass_at_k;
mod stored;
pub mod summary;

pub use cons_at_k::{cons_at_k, Vote};
pub use mechanism::{mechanism_metrics, ModeSample};
pub use pass_at_k::pass_at_k;
pub use stored::{Rollout, StoredSample, METRICS_FILE, ROLLOUTS_FILE, SAMPLES_FILE};
pub use summary::{summarize, EvalSample};
