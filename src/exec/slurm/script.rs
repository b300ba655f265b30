//! Execute (Slurm): the batch script of one stage's job — its resources, where its log
//! goes, the signal Slurm sends before the time limit, and a shell that passes that signal
//! (and `scancel --signal`) on to the worker so that it checkpoints before it stops.

use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::Resources;

/// What a job script needs.
pub(super) struct ScriptSettings<'a> {
    /// `--job-name`: one name for every job of a store, so one `squeue --name` finds them.
    pub job_name: &'a str,
    /// The r1flow binary the job runs (a path the compute nodes see).
    pub exe: &'a Path,
    pub job_dir: &'a Path,
    pub resources: &'a Resources,
    /// Seconds before the time limit at which Slurm signals the job.
    pub signal_lead_s: u32,
    /// The stage's name, for `squeue`'s comment column.
    pub stage: &'a str,
}

/// Quotes `text` for a POSIX shell.
pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script.
pub(super) fn job_script(settings: &ScriptSettings<'_>) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut directive = |line: String| {
        let _ = writeln!(s, "#SBATCH {line}");
    };
    directive(format!("--job-name={}", settings.job_name));
    directive(format!(
        "--output={}",
        settings.job_dir.join("slurm-%j.log").display()
    ));
    directive("--open-mode=append".into());
    directive(format!("--signal=B:USR2@{}", settings.signal_lead_s));
    // Preempted or requeued by an administrator, the job starts again and resumes.
    directive("--requeue".into());
    directive(format!("--comment=r1flow-stage={}", settings.stage));
    if let Some(gpus) = settings.resources.gpus.filter(|g| *g > 0) {
        directive(format!("--gres=gpu:{gpus}"));
    }
    if let Some(cpus) = settings.resources.cpus {
        directive(format!("--cpus-per-task={cpus}"));
    }
    if let Some(mem) = &settings.resources.mem {
        directive(format!("--mem={mem}"));
    }
    if let Some(time) = &settings.resources.time {
        directive(format!("--time={time}"));
    }
    let _ = write!(
        s,
        r#"
# r1flow stage job. The worker checkpoints and stops on SIGTERM (a second one stops it at
# once). Slurm's USR2 before the time limit, and `scancel --signal=USR2 --batch`, reach
# only this shell, which passes them on as one SIGTERM. A requeue or a plain scancel
# sends SIGTERM to every process of the job: the worker gets its own, and this shell
# only keeps waiting, so that the job lasts until the checkpoint is written.
echo "r1flow job $SLURM_JOB_ID on $(hostname) (restart ${{SLURM_RESTART_COUNT:-0}}) at $(date -Is)"
{exe} exec-stage --job {dir} &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null' USR2
trap 'true' TERM INT
wait "$worker"
status=$?
while kill -0 "$worker" 2>/dev/null; do
  wait "$worker"
  status=$?
done
exit $status
"#,
        exe = shell_quote(&settings.exe.display().to_string()),
        dir = shell_quote(&settings.job_dir.display().to_string()),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_asks_for_the_stage_resources_and_forwards_signals() {
        let resources = Resources {
            gpus: Some(2),
            cpus: Some(8),
            mem: Some("32G".into()),
            time: Some("04:00:00".into()),
        };
        let script = job_script(&ScriptSettings {
            job_name: "r1flow-abc",
            exe: Path::new("/opt/r1flow's bin/r1flow"),
            job_dir: Path::new("/shared/runs/jobs/k1"),
            resources: &resources,
            signal_lead_s: 120,
            stage: "zero",
        });
        for line in [
            "#SBATCH --job-name=r1flow-abc",
            "#SBATCH --output=/shared/runs/jobs/k1/slurm-%j.log",
            "#SBATCH --signal=B:USR2@120",
            "#SBATCH --gres=gpu:2",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --time=04:00:00",
            "'/opt/r1flow'\\''s bin/r1flow' exec-stage --job '/shared/runs/jobs/k1' &",
            "trap 'kill -TERM \"$worker\" 2>/dev/null' USR2",
            "trap 'true' TERM INT",
        ] {
            assert!(
                script.lines().any(|l| l == line),
                "missing {line:?} in\n{script}"
            );
        }
    }
}
