//! CLI `score`: grade completions r1flow did not generate with a reward — built in, or as
//! a manifest declares it — one JSON line per input line on stdout, a summary on stderr.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use r1flow::check::{check_rewards_file, Capabilities};
use r1flow::diag::render_all;
use r1flow::manifest::RewardDecl;
use r1flow::report::score_file;
use r1flow::rewards::Reward;

use super::terminal::say;

#[derive(Debug, clap::Args)]
pub(crate) struct ScoreArgs {
    /// JSONL of `{"completion": …, "answer": …}` lines (the answer as a dataset writes
    /// it: `$…$` and a `\boxed{}` wrapper are removed).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The reward to grade with: a built-in name (`accuracy`, `format`, `tag_count`,
    /// `language`, `length`) or one the manifest declares.
    #[arg(long, value_name = "NAME")]
    reward: String,
    /// Read the reward's declaration from this manifest's `rewards:`.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

fn reward(args: &ScoreArgs) -> anyhow::Result<Reward> {
    let Some(manifest) = &args.manifest else {
        return Reward::builtin(&args.reward).with_context(|| {
            format!(
                "`{}` is not a built-in reward ({}); declare it in a manifest and pass --manifest",
                args.reward,
                RewardDecl::BUILTIN_NAMES.join(", ")
            )
        });
    };
    let (rewards, base_dir) = match check_rewards_file(manifest, &Capabilities::any()) {
        Ok(found) => found,
        Err(diagnostics) => {
            super::terminal::eprint_text(&render_all(&diagnostics));
            bail!("{} does not validate", manifest.display());
        }
    };
    match rewards.get(&args.reward) {
        Some(decl) => Ok(Reward::from_decl(&args.reward, decl, &base_dir)?),
        None => Reward::builtin(&args.reward).with_context(|| {
            let declared: Vec<&str> = rewards.keys().map(String::as_str).collect();
            format!(
                "{} declares no reward `{}` (it declares: {}), and it is not a built-in one",
                manifest.display(),
                args.reward,
                declared.join(", ")
            )
        }),
    }
}

pub(crate) fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let reward = reward(args)?;
    let lines = score_file(&reward, &args.input)?;
    let mut out = String::new();
    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut total, mut scored) = (0.0, 0usize);
    for line in &lines {
        out.push_str(&serde_json::to_string(line)?);
        out.push('\n');
        *verdicts.entry(line.verdict).or_default() += 1;
        if let Some(score) = line.score {
            total += score;
            scored += 1;
        }
    }
    super::terminal::print_text(&out)?;
    let counts: Vec<String> = verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    let mean = if scored > 0 {
        format!("{:.4}", total / scored as f64)
    } else {
        "-".into()
    };
    say!(
        "scored {} lines with `{}`: {}; mean score {mean}",
        lines.len(),
        args.reward,
        counts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
