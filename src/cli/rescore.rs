//! CLI `rescore`: apply rewards (new or changed) to the completions a stage stored — an
//! eval's samples or a GRPO run's rollouts — without generating again, and print a table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indexmap::IndexMap;
use r1flow::check::check_file;
use r1flow::metrics::{StoredSample, SAMPLES_FILE};
use r1flow::plan::{InputSpec, StageSpec};
use r1flow::records::{from_jsonl, Answer, DatasetRecord};
use r1flow::rewards::{RewardSet, Sample};
use r1flow::train::{Rollout, ROLLOUTS_FILE};

use super::runs::table;
use super::store_dir::StoreArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct RescoreArgs {
    /// The run id (`last` for the newest).
    run: String,
    /// The stage whose completions to score (an `eval` or `grpo` stage).
    stage: String,
    /// A reward to apply (repeatable): a built-in name or one declared in the manifest.
    #[arg(long = "reward", value_name = "NAME", required = true)]
    rewards: Vec<String>,
    /// The variant, when the stage has one instance per variant.
    #[arg(long)]
    variant: Option<String>,
    /// Read reward declarations from this manifest instead of the run's.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) fn run(args: &RescoreArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_existing()?;
    let run = store.run(&args.run)?;
    let matches: Vec<_> = run
        .stages
        .iter()
        .filter(|s| {
            s.name == args.stage && args.variant.as_ref().is_none_or(|v| s.variants.contains(v))
        })
        .collect();
    let [stage] = matches.as_slice() else {
        bail!(
            "run {} has {} instance(s) of stage `{}`; name one with --variant",
            run.id,
            matches.len(),
            args.stage
        );
    };
    let spec: StageSpec = store
        .spec(&stage.key)?
        .with_context(|| format!("the store has no record of what stage `{}` was", stage.name))?;
    let artifact = store.artifact(&stage.key)?.with_context(|| {
        format!(
            "stage `{}` has no stored outputs (status {:?})",
            stage.name, stage.status
        )
    })?;
    let Some(InputSpec::Artifact {
        key: prompts_key, ..
    }) = spec.inputs.get("prompts")
    else {
        bail!(
            "stage `{}` ({}) has no prompts to rescore",
            stage.name,
            stage.kind
        );
    };
    let prompts = store
        .artifact(prompts_key)?
        .context("the stage's prompts are no longer in the store")?;
    let mut records: HashMap<String, DatasetRecord> = HashMap::new();
    for blob in prompts.outputs.values() {
        for record in
            from_jsonl::<DatasetRecord>(&store.blobs().read(blob)?).map_err(anyhow::Error::msg)?
        {
            records.insert(record.id.clone(), record);
        }
    }
    // (prompt id, generated text, tokens) of every stored completion.
    let completions: Vec<(String, String, usize)> =
        if let Some(blob) = artifact.outputs.get(SAMPLES_FILE) {
            from_jsonl::<StoredSample>(&store.blobs().read(blob)?)
                .map_err(anyhow::Error::msg)?
                .into_iter()
                .map(|s| (s.prompt_id, s.completion, s.tokens))
                .collect()
        } else if let Some(blob) = artifact.outputs.get(ROLLOUTS_FILE) {
            from_jsonl::<Rollout>(&store.blobs().read(blob)?)
                .map_err(anyhow::Error::msg)?
                .into_iter()
                .map(|r| (r.prompt_id, r.completion, r.tokens))
                .collect()
        } else {
            bail!(
                "stage `{}` ({}) stored no completions",
                stage.name,
                stage.kind
            );
        };
    let manifest = args
        .manifest
        .clone()
        .unwrap_or_else(|| run.manifest.clone());
    let declared = match check_file(&manifest).pipelines.into_iter().next() {
        Some(pipeline) => pipeline.rewards,
        None => spec.rewards.clone(),
    };
    let weights: IndexMap<String, f64> = args.rewards.iter().map(|r| (r.clone(), 1.0)).collect();
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
        bail!(
            "{} stored completions name prompts that are not in the stage's prompts",
            completions.len() - responses.len()
        );
    }
    let samples: Vec<Sample<'_>> = responses
        .iter()
        .zip(&completions)
        .map(|((text, answer, record), (_, _, tokens))| {
            Sample::new(&record.prompt, text, answer.as_ref()).with_tokens(*tokens)
        })
        .collect();
    let scored = set.score(&samples)?;
    let metrics = scored.metrics();
    let rows: Vec<Vec<String>> = args
        .rewards
        .iter()
        .map(|name| {
            let get = |suffix: &str| {
                metrics
                    .get(&format!("reward/{name}{suffix}"))
                    .map_or("-".to_string(), |v| format!("{v:.4}"))
            };
            vec![
                name.clone(),
                get(""),
                get("/std"),
                get("/skipped"),
                samples.len().to_string(),
            ]
        })
        .collect();
    let header = format!(
        "run {} stage {} ({}): {} completions\n\n",
        run.id,
        stage.name,
        stage.kind,
        samples.len()
    );
    super::print_stdout(
        &(header + &table(&["reward", "mean", "std", "skipped", "samples"], &rows)),
    )?;
    Ok(ExitCode::SUCCESS)
}
