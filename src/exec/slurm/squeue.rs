//! Execute (Slurm): what Slurm says of a store's jobs — one `squeue` call per poll for all
//! of them (by the store's job name, so that ids Slurm has forgotten cause no error), and
//! what each state means for the stage.

use std::collections::BTreeMap;
use std::process::Command;

/// A job as `squeue` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JobState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, …
    pub state: String,
    /// Slurm's reason (`None`, `Priority`, `NonZeroExitCode`, `BeginTime` …).
    pub reason: String,
}

impl JobState {
    /// Queued, starting, running or about to run again: its result is not final yet.
    pub(super) fn active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "CONFIGURING"
                | "RUNNING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_FED"
                | "REQUEUE_HOLD"
                | "RESIZING"
                | "SUSPENDED"
                | "STOPPED"
                | "SIGNALING"
                | "STAGE_OUT"
                | "RESV_DEL_HOLD"
        )
    }

    /// The state as a run's line shows it: `running`, or `pending: ReqNodeNotAvail (…)`
    /// with Slurm's reason and what it means where a job waits for something that may
    /// never come (a drained or down node, a partition down, a limit).
    pub(super) fn label(&self) -> String {
        let state = self.state.to_lowercase();
        let reason = self.reason.trim();
        if self.state != "PENDING" || reason.is_empty() || reason == "None" {
            return state;
        }
        // Slurm names a drained node's wait by its code (`ReqNodeNotAvail`, `NodeDown`)
        // or, as squeue's `%r` prints it on Slurm 22+, in words: "Nodes required for job
        // are DOWN, DRAINED or reserved for jobs in higher priority partitions".
        let upper = reason.to_uppercase();
        let hint = if reason.starts_with("ReqNodeNotAvail")
            || reason.contains("NodeDown")
            || upper.contains("DRAIN")
            || upper.contains("NODES REQUIRED FOR JOB ARE DOWN")
        {
            " — a node it needs is drained or down; `sinfo -R` says why"
        } else if reason.starts_with("PartitionDown") || reason.starts_with("PartitionInactive") {
            " — its partition is down; `sinfo` shows the partitions"
        } else if reason.contains("Limit") || reason.starts_with("AssocGrp") {
            " — a limit of its account, QOS or partition holds it back"
        } else {
            ""
        };
        format!("{state}: {reason}{hint}")
    }

    /// What the state means, in words, for an error message.
    pub(super) fn explain(&self) -> String {
        let meaning = match self.state.as_str() {
            "FAILED" => "the job failed",
            "TIMEOUT" => "the job reached its time limit (raise `resources.time`)",
            "OUT_OF_MEMORY" => "the job ran out of memory (raise `resources.mem`)",
            "CANCELLED" => "the job was cancelled (scancel)",
            "NODE_FAIL" => "the job's node failed",
            "BOOT_FAIL" => "the job's node failed to boot",
            "DEADLINE" => "the job missed its deadline",
            "PREEMPTED" => "the job was preempted",
            "COMPLETED" => "the job ended",
            _ => "the job ended",
        };
        format!(
            "{meaning}: Slurm state {}, reason {}",
            self.state, self.reason
        )
    }
}

/// Parses `squeue -h -o '%i|%T|%r'` lines: job id → state.
pub(super) fn parse(output: &str) -> BTreeMap<String, JobState> {
    output
        .lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(3, '|');
            let id = parts.next()?.trim();
            let state = parts.next()?.trim();
            let reason = parts.next().unwrap_or("").trim();
            (!id.is_empty()).then(|| {
                (
                    id.to_string(),
                    JobState {
                        // `CANCELLED by 0` → `CANCELLED`
                        state: state.split_whitespace().next().unwrap_or("").to_string(),
                        reason: reason.to_string(),
                    },
                )
            })
        })
        .collect()
}

/// Every job named `name` that Slurm still knows, finished ones included.
pub(super) fn query(squeue: &str, name: &str) -> Result<BTreeMap<String, JobState>, String> {
    let output = Command::new(squeue)
        .args(["-h", "-t", "all", "--name", name, "-o", "%i|%T|%r"])
        .output()
        .map_err(|e| format!("running {squeue}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{squeue} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(parse(&String::from_utf8_lossy(&output.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_job_shows_why_it_waits() {
        let job = |state: &str, reason: &str| JobState {
            state: state.into(),
            reason: reason.into(),
        };
        assert_eq!(job("RUNNING", "None").label(), "running");
        assert_eq!(job("PENDING", "None").label(), "pending");
        assert_eq!(job("PENDING", "Priority").label(), "pending: Priority");
        let drained = job("PENDING", "ReqNodeNotAvail, UnavailableNodes:node1").label();
        assert!(
            drained.starts_with("pending: ReqNodeNotAvail, UnavailableNodes:node1")
                && drained.contains("sinfo -R"),
            "{drained}"
        );
        // What a real cluster's squeue said for a job waiting on a drained node
        // (tests/it/slurm.rs drains one).
        let words = "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher \
                     priority partitions";
        assert_eq!(
            job("PENDING", words).label(),
            format!("pending: {words} — a node it needs is drained or down; `sinfo -R` says why")
        );
    }

    #[test]
    fn squeue_lines_become_states() {
        let jobs = parse("11|COMPLETED|None\n12|FAILED|NonZeroExitCode\n 13|PENDING|BeginTime\n14|CANCELLED by 0|None\n");
        assert_eq!(jobs.len(), 4);
        assert!(!jobs["11"].active());
        assert!(jobs["13"].active());
        assert_eq!(jobs["14"].state, "CANCELLED");
        assert!(jobs["12"]
            .explain()
            .contains("FAILED, reason NonZeroExitCode"));
    }
}
