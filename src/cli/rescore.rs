//! CLI `rescore`: apply rewards (new or changed) to the completions a stage stored — an
//! eval's samples or a GRPO run's rollouts — without generating again, and print a table.

use std::path::PathBuf;
use std::process::ExitCode;

use r1flow::report::{rescore, RescoreRequest};

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
    let store = args.store.open_for_reading()?;
    let rescored = rescore(
        &store,
        &RescoreRequest {
            run: args.run.clone(),
            stage: args.stage.clone(),
            variant: args.variant.clone(),
            rewards: args.rewards.clone(),
            manifest: args.manifest.clone(),
        },
    )?;
    let number = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.4}"));
    let rows: Vec<Vec<String>> = rescored
        .rewards
        .iter()
        .map(|reward| {
            vec![
                reward.name.clone(),
                number(reward.mean),
                number(reward.std),
                number(reward.skipped),
                rescored.completions.to_string(),
            ]
        })
        .collect();
    let header = format!(
        "run {} stage {} ({}): {} completions\n\n",
        rescored.run, rescored.stage, rescored.kind, rescored.completions
    );
    super::terminal::print_text(
        &(header + &table(&["reward", "mean", "std", "skipped", "samples"], &rows)),
    )?;
    Ok(ExitCode::SUCCESS)
}
