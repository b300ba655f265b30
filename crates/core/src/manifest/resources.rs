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
    /// GPUs for the job (`--gres=gpu:N`), 0 to 64; 0 asks for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// CPU cores for the job (`--cpus-per-task`), 1 to 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, as Slurm writes it: a whole number with an optional K, M, G or T suffix
    /// (`16G`, `512M`; no suffix means megabytes). Not 0, which Slurm reads as all of a
    /// node's memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit, as Slurm writes it: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or
    /// `D-HH:MM:SS` (`90`, `04:00:00`, `2-12`), at most a year. Not zero, which Slurm
    /// reads as no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Resources {
    /// The most GPUs a job asks for: a stage's job runs on one node, and no node has more.
    pub const MAX_GPUS: u32 = 64;
    /// The most CPUs a job asks for: a stage's job runs on one node.
    pub const MAX_CPUS: u32 = 4096;
    /// The longest time limit, in seconds: a year. Longer is a typo (`time: 90000` is
    /// minutes, two months); no partition runs a job that long.
    pub const MAX_TIME_S: u64 = 365 * 86_400;

    /// Why `gpus` is not a GPU count for one node, if it is not.
    pub fn gpus_error(gpus: u32) -> Option<String> {
        (gpus > Self::MAX_GPUS)
            .then(|| format!("`gpus` must be at most {}, not {gpus}", Self::MAX_GPUS))
    }

    /// Why `cpus` is not a CPU count Slurm gives a task, if it is not.
    pub fn cpus_error(cpus: u32) -> Option<String> {
        if cpus == 0 {
            return Some("`cpus: 0` asks for no CPU; Slurm refuses `--cpus-per-task=0`".into());
        }
        (cpus > Self::MAX_CPUS)
            .then(|| format!("`cpus` must be at most {}, not {cpus}", Self::MAX_CPUS))
    }

    /// Why `mem` is not a Slurm memory size, if it is not.
    pub fn mem_error(mem: &str) -> Option<String> {
        Self::mem_bytes(mem).err()
    }

    /// The bytes of a Slurm memory size (`16G`, `512M`; no suffix means megabytes), or
    /// why `mem` is not one.
    pub fn mem_bytes(mem: &str) -> Result<u64, String> {
        let digits = mem.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
        let suffix = &mem[digits.len()..];
        let unit: u64 = match suffix.to_ascii_uppercase().as_str() {
            "K" => 1 << 10,
            "" | "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(format!("`mem: {mem}` has more than one unit")),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("`mem: {mem}` is not a memory size"));
        }
        let bytes = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit));
        match bytes {
            None => Err(format!("`mem: {mem}` is too large to be a memory size")),
            Some(0) => Err(format!(
                "`mem: {mem}` is zero, which Slurm reads as all of a node's memory"
            )),
            Some(bytes) => Ok(bytes),
        }
    }

    /// The seconds of a Slurm time limit (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    /// `D-HH:MM:SS`), or why `time` is not one.
    pub fn time_seconds(time: &str) -> Result<u64, String> {
        let not_a_limit = || format!("`time: {time}` is not a Slurm time limit");
        if ["infinite", "unlimited"].contains(&time.to_ascii_lowercase().as_str()) {
            return Err(format!("`time: {time}` asks Slurm for no time limit"));
        }
        // Each field a whole number; nine digits keep every sum inside u64.
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.len() <= 9 && s.chars().all(|c| c.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (days, clock) = match time.split_once('-') {
            Some((days, clock)) => (Some(number(days).ok_or_else(not_a_limit)?), clock),
            None => (None, time),
        };
        let parts = clock
            .split(':')
            .map(number)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(not_a_limit)?;
        let seconds = match (days, parts.as_slice()) {
            (None, [m]) => m * 60,
            (None, [m, s]) => m * 60 + s,
            (None, [h, m, s]) => h * 3600 + m * 60 + s,
            (Some(d), [h]) => d * 86_400 + h * 3600,
            (Some(d), [h, m]) => d * 86_400 + h * 3600 + m * 60,
            (Some(d), [h, m, s]) => d * 86_400 + h * 3600 + m * 60 + s,
            _ => return Err(not_a_limit()),
        };
        Ok(seconds)
    }

    /// Why `time` is not a Slurm time limit r1flow asks for, if it is not.
    pub fn time_error(time: &str) -> Option<String> {
        match Self::time_seconds(time) {
            Err(error) => Some(error),
            Ok(0) => Some(format!(
                "`time: {time}` is zero, which Slurm reads as no time limit at all"
            )),
            Ok(s) if s > Self::MAX_TIME_S => Some(format!(
                "`time: {time}` is {} days, more than a year",
                s / 86_400
            )),
            Ok(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_sizes_are_recognised() {
        for good in ["16G", "512M", "1024", "2t", "1k"] {
            assert_eq!(Resources::mem_error(good), None, "{good}");
        }
        for bad in [
            "",
            "G",
            "16GB",
            "-1G",
            "1.5G",
            "0",
            "0G",
            "99999999999999T",
            " 1G",
        ] {
            assert!(Resources::mem_error(bad).is_some(), "{bad}");
        }
        assert!(Resources::mem_error("0").is_some_and(|e| e.contains("all of a node's memory")));
    }

    #[test]
    fn every_slurm_time_format_is_read() {
        for (time, seconds) in [
            ("90", 5400),
            ("30:15", 1815),
            ("01:30:00", 5400),
            ("2-12", 216_000),
            ("1-02:03", 93_780),
            ("1-00:00:00", 86_400),
            ("0-00:00:30", 30),
        ] {
            assert_eq!(Resources::time_seconds(time), Ok(seconds), "{time}");
            assert_eq!(Resources::time_error(time), None, "{time}");
        }
        for bad in [
            "",
            "1h",
            "1:2:3:4",
            "a-01:00",
            "-5",
            "1-",
            "1-2:3:4:5",
            ":30",
            "1.5",
            "1 00",
            "9999999999",
        ] {
            assert!(
                Resources::time_error(bad).is_some_and(|e| e.contains("not a Slurm time")),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_limit_and_absurd_limits_are_refused_with_the_reason() {
        for zero in ["0", "00:00:00", "0-0", "0:0", "0-00:00:00"] {
            assert!(
                Resources::time_error(zero).is_some_and(|e| e.contains("no time limit")),
                "{zero}"
            );
        }
        for none in ["INFINITE", "unlimited"] {
            assert!(
                Resources::time_error(none).is_some_and(|e| e.contains("no time limit")),
                "{none}"
            );
        }
        assert!(Resources::time_error("366-00").is_some_and(|e| e.contains("more than a year")));
        assert_eq!(Resources::time_error("365-00"), None);
    }

    #[test]
    fn cpu_and_gpu_counts_are_bounded() {
        assert!(Resources::cpus_error(0).is_some());
        assert_eq!(Resources::cpus_error(1), None);
        assert!(Resources::cpus_error(100_000).is_some());
        assert_eq!(Resources::gpus_error(0), None);
        assert_eq!(Resources::gpus_error(8), None);
        assert!(Resources::gpus_error(65).is_some());
    }
}
