//! Report (`rescore`): rewards applied again — new or changed — to the completions a stage
//! stored (an eval's samples, a GRPO run's rollouts), without generating again. Reads the
//! store, never writes it.

use std::collections::HashMap;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::check::{check_file, Capabilities};
use crate::metric_names as names;
use crate::metrics::{Rollout, StoredSample, ROLLOUTS_FILE, SAMPLES_FILE};
use crate::plan::{InputSpec, StageSpec};
use crate::records::{from_jsonl, Answer, DatasetRecord};
use crate::rewards::{RewardError, RewardSet, Sample};
use crate::stages::InputField;
use crate::store::{Store, StoreError};

/// What to rescore.
#[derive(Debug, Clone)]
pub struct RescoreRequest {
    /// The run id (`last` for the newest).
    pub run: String,
    /// The stage whose completions to score.
    pub stage: String,
    /// The variant, when the stage has one instance per variant.
    pub variant: Option<String>,
    /// Reward names: built in, or declared in the manifest.
    pub rewards: Vec<String>,
    /// Read reward declarations from this manifest instead of the run's.
    pub manifest: Option<PathBuf>,
}

/// One reward's summary over the stage's completions.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSummary {
    pub name: String,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Share of completions the reward skipped (no reference answer …).
    pub skipped: Option<f64>,
}

/// The rescored stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    pub run: String,
    pub stage: String,
    pub kind: String,
    pub completions: usize,
    pub rewards: Vec<RewardSummary>,
}

/// Why a stage could not be rescored.
#[derive(Debug)]
pub enum RescoreError {
    Store(StoreError),
    Reward(RewardError),
    /// The request does not fit what the store holds; the message says why.
    Invalid(String),
}

impl std::fmt::Display for RescoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => write!(f, "{error}"),
            Self::Reward(error) => write!(f, "{error}"),
            Self::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RescoreError {}

impl From<StoreError> for RescoreError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<RewardError> for RescoreError {
    fn from(error: RewardError) -> Self {
        Self::Reward(error)
    }
}

fn invalid(message: impl Into<String>) -> RescoreError {
    RescoreError::Invalid(message.into())
}

/// Scores the stored completions of `request.stage` with `request.rewards`.
pub fn rescore(store: &Store, request: &RescoreRequest) -> Result<Rescored, RescoreError> {
    let run = store.run(&request.run)?;
    let matches: Vec<_> = run
        .stages
        .iter()
        .filter(|s| {
            s.name == request.stage
                && request
                    .variant
                    .as_ref()
                    .is_none_or(|v| s.variants.contains(v))
        })
        .collect();
    if !run.stages.iter().any(|s| s.name == request.stage) {
        let mut names: Vec<&str> = run.stages.iter().map(|s| s.name.as_str()).collect();
        names.dedup();
        return Err(invalid(format!(
            "run {} has no stage `{}`: {}",
            run.id,
            request.stage,
            crate::check::suggest::help_for(&request.stage, &names, "stage")
        )));
    }
    let [stage] = matches.as_slice() else {
        return Err(invalid(format!(
            "run {} has {} instance(s) of stage `{}`; name one with --variant",
            run.id,
            matches.len(),
            request.stage
        )));
    };
    let spec: StageSpec = store.spec(&stage.key)?.ok_or_else(|| {
        invalid(format!(
            "the store has no record of what stage `{}` was",
            stage.name
        ))
    })?;
    let artifact = store.artifact(&stage.key)?.ok_or_else(|| {
        invalid(format!(
            "stage `{}` has no stored outputs (status {:?})",
            stage.name, stage.status
        ))
    })?;
    let Some(InputSpec::Artifact {
        key: prompts_key, ..
    }) = spec.input(InputField::Prompts)
    else {
        return Err(invalid(format!(
            "stage `{}` ({}) has no prompts to rescore",
            stage.name, stage.kind
        )));
    };
    let prompts = store
        .artifact(prompts_key)?
        .ok_or_else(|| invalid("the stage's prompts are no longer in the store"))?;
    let mut records: HashMap<String, DatasetRecord> = HashMap::new();
    for blob in prompts.outputs.values() {
        for record in from_jsonl::<DatasetRecord>(&store.blobs().read(blob)?).map_err(invalid)? {
            records.insert(record.id.clone(), record);
        }
    }
    // (prompt id, generated text, tokens) of every stored completion.
    let completions: Vec<(String, String, usize)> =
        if let Some(blob) = artifact.outputs.get(SAMPLES_FILE) {
            from_jsonl::<StoredSample>(&store.blobs().read(blob)?)
                .map_err(invalid)?
                .into_iter()
                .map(|s| (s.prompt_id, s.completion, s.tokens))
                .collect()
        } else if let Some(blob) = artifact.outputs.get(ROLLOUTS_FILE) {
            from_jsonl::<Rollout>(&store.blobs().read(blob)?)
                .map_err(invalid)?
                .into_iter()
                .map(|r| (r.prompt_id, r.completion, r.tokens))
                .collect()
        } else {
            return Err(invalid(format!(
                "stage `{}` ({}) stored no completions",
                stage.name, stage.kind
            )));
        };
    let manifest = request
        .manifest
        .clone()
        .unwrap_or_else(|| run.manifest.clone());
    let declared = match check_file(&manifest, &Capabilities::any())
        .pipelines
        .into_iter()
        .next()
    {
        Some(pipeline) => pipeline.rewards,
        None => spec.rewards.clone(),
    };
    let weights: IndexMap<String, f64> = request.rewards.iter().map(|r| (r.clone(), 1.0)).collect();
    let set = RewardSet::build(&weights, &declared, &spec.base_dir)?;
    let responses: Vec<(String, Option<Answer>, &DatasetRecord)> = completions
        .iter()
        .filter_map(|(id, text, _)| {
            let record = records.get(id)?;
            Some((
                format!("{}{text}", record.response_prefix),
                record.answer.clone().map(Answer::Text),
                record,
            ))
        })
        .collect();
    if responses.len() != completions.len() {
        return Err(invalid(format!(
            "{} stored completions name prompts that are not in the stage's prompts",
            completions.len() - responses.len()
        )));
    }
    let samples: Vec<Sample<'_>> = responses
        .iter()
        .zip(&completions)
        .map(|((text, answer, record), (_, _, tokens))| {
            Sample::new(&record.prompt, text, answer.as_ref())
                .with_tokens(*tokens)
                .with_tests(record.tests.as_ref(), record.entry_point.as_deref())
        })
        .collect();
    let metrics = set.score(&samples)?.metrics();
    let rewards = request
        .rewards
        .iter()
        .map(|name| {
            let get = |suffix: &str| {
                metrics
                    .get(&format!("{}{name}{suffix}", names::REWARD_PREFIX))
                    .copied()
            };
            RewardSummary {
                name: name.clone(),
                mean: get(""),
                std: get("/std"),
                skipped: get("/skipped"),
            }
        })
        .collect();
    Ok(Rescored {
        run: run.id.clone(),
        stage: stage.name.clone(),
        kind: stage.kind.clone(),
        completions: samples.len(),
        rewards,
    })
}
