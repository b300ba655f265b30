//! Report (what stages store): the records of scored completions a stage leaves in the
//! store — an eval's samples with their verdicts (`samples.jsonl`) and final metrics
//! (`metrics.json`), GRPO's rollouts (`rollouts.jsonl`) — read back by `report`,
//! `compare` and `rescore`.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Output name of an eval stage's samples, one `StoredSample` per line.
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// Output name of an eval stage's final metrics, a JSON object of name → number.
pub const METRICS_FILE: &str = "metrics.json";

/// One evaluated sample, as stored in `samples.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSample {
    pub prompt_id: String,
    pub sample: usize,
    pub completion: String,
    pub tokens: usize,
    pub correct: Option<bool>,
    pub answer: Option<String>,
    pub format_ok: bool,
    pub language: Option<f64>,
    pub rewards: IndexMap<String, Option<f64>>,
}

/// Output name of the rollout log.
pub const ROLLOUTS_FILE: &str = "rollouts.jsonl";

/// One scored completion, as stored in `rollouts.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollout {
    pub step: u64,
    pub prompt_id: String,
    pub completion: String,
    pub reward: Option<f64>,
    pub rewards: BTreeMap<String, Option<f64>>,
    pub advantage: f64,
    pub tokens: usize,
    pub truncated: bool,
}
