//! CLI `recover`: rebuild a damaged store index from its newest readable copy (see
//! `store::recover`) and say what was restored and what was lost.

use std::process::ExitCode;

use r1flow::store::{RecoverySource, Store};

use super::store_dir::StoreArgs;
use super::terminal::say;

#[derive(Debug, clap::Args)]
pub(crate) struct RecoverArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) fn run(args: &RecoverArgs) -> anyhow::Result<ExitCode> {
    let dir = args.store.resolve(None);
    let recovery = Store::recover(&dir)?;
    let source = match recovery.source {
        RecoverySource::Index => "what could still be read of the damaged index",
        RecoverySource::Snapshot => "the snapshot the last run left",
    };
    say!(
        "rebuilt the index of {} from {source}; the damaged index is kept as {}",
        dir.display(),
        recovery.moved_to.display()
    );
    match (recovery.lost_commits(), recovery.sealed_generation) {
        (0, Some(_)) => say!("nothing was lost: it holds every commit its seal records"),
        (0, None) => {
            say!("the store had no readable seal, so whether anything was lost cannot be told")
        }
        (lost, Some(sealed)) => say!(
            "lost: the last {lost} of {sealed} commits (stage results, run records or \
             checkpoints written last); `r1flow runs` shows what is left, and the stages \
             whose records were lost run again on the next `run` (their blobs are kept)"
        ),
        (_, None) => {}
    }
    Ok(ExitCode::SUCCESS)
}
