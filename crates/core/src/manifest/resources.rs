//! Parse: what a stage's job asks a cluster for when it runs as a Slurm job
//! (`r1flow run --executor slurm`) — GPUs, CPUs, memory, a time limit. Where a stage runs
//! does not change its output, so none of this is in its cache key.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A stage's job resources (Slurm's `--gres=gpu:N`, `--cpus-per-task`, `--mem`,
/// `--time`). Ignored by the local executor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// GPUs for the job (`--gres=gpu:N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// CPU cores for the job (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, as Slurm writes it: a number with an optional K, M, G or T suffix
    /// (`16G`, `512M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit, as Slurm writes it: minutes (`90`), `HH:MM:SS`, or `D-HH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Resources {
    /// Why `mem` is not a Slurm memory size, if it is not.
    pub fn mem_error(mem: &str) -> Option<String> {
        let digits = mem.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
        let suffixes = mem.len() - digits.len();
        let ok = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && suffixes <= 1
            && digits.parse::<u64>().is_ok_and(|n| n > 0);
        (!ok).then(|| format!("`mem: {mem}` is not a memory size"))
    }

    /// Why `time` is not a Slurm time limit, if it is not.
    pub fn time_error(time: &str) -> Option<String> {
        let number =
            |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
        let (days, clock) = match time.split_once('-') {
            Some((days, clock)) => (Some(days), clock),
            None => (None, time),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        let ok = days.is_none_or(number)
            && parts.iter().all(|p| number(p))
            && (1..=3).contains(&parts.len())
            && time != "0";
        (!ok).then(|| format!("`time: {time}` is not a Slurm time limit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_sizes_and_times_are_recognised() {
        for good in ["16G", "512M", "1024", "2t"] {
            assert_eq!(Resources::mem_error(good), None, "{good}");
        }
        for bad in ["", "G", "16GB", "-1G", "1.5G", "0"] {
            assert!(Resources::mem_error(bad).is_some(), "{bad}");
        }
        for good in ["90", "01:30:00", "1-00:00:00", "2-12", "30:00"] {
            assert_eq!(Resources::time_error(good), None, "{good}");
        }
        for bad in ["", "1h", "1:2:3:4", "a-01:00", "0", "-5"] {
            assert!(Resources::time_error(bad).is_some(), "{bad}");
        }
    }
}
