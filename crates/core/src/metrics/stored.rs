//! Report (what `eval` stores): the files an eval stage leaves in the store — every
//! sample with its verdicts (`samples.jsonl`) and the final metrics (`metrics.json`) —
//! read back by `report`, `compare` and `rescore`.

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
