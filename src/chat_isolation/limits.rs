//! Check and execute, beside the layers: the OS limits a chat-template renderer child
//! runs under, set by the child on itself before it reads anything, and what its death
//! by one of them means, said as a user error.
//!
//! The in-process bounds of a rendering (fuel, the builtins' budget, the output cap;
//! `tasks::chat_template`) name what went too far, and come first; these limits catch
//! what they cannot see — MiniJinja's `~`, `+` and `*` building strings without a hook —
//! and so are set well above what any rendering inside those bounds needs.

use std::process::ExitStatus;
use std::time::Duration;

/// The address space of a renderer child. The child itself maps about 100 MiB (the
/// debug binary runs `r1flow schema` under 96 MiB); a rendering inside every in-process
/// bound adds its record (at most 1 MiB), its output (16 MiB, 32 MiB of buffer), the
/// builtins' 64 MiB and MiniJinja's own largest string (a `*` of up to 100 MB), so the
/// shipped bound checks pass under 256 MiB. Twice that keeps them first with room to
/// spare, and a hostile template is stopped at half a GiB — little enough beside a
/// training run on the same machine.
pub const MAX_MEMORY_BYTES: u64 = 512 << 20;

/// CPU time of a batch: a base for starting up and a template that does real work on a
/// long record, and an allowance per conversation (real templates render one in tens of
/// microseconds; a fuel-bound rendering that ends in an error takes under a second).
const BASE_CPU_SECONDS: u64 = 10;
const CPU_MILLIS_PER_CONVERSATION: u64 = 2;

/// The limits of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Its address space (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Its CPU time (`RLIMIT_CPU`: SIGXCPU here, SIGKILL a second later).
    pub cpu_seconds: u64,
    /// The parent's wall clock on it: three times its CPU time and ten seconds, so that a
    /// busy machine does not stop a rendering the CPU limit would let finish.
    pub wall: Duration,
}

impl Limits {
    /// The limits of a child rendering `conversations` conversations.
    pub fn for_batch(conversations: usize) -> Self {
        let cpu_seconds = BASE_CPU_SECONDS.saturating_add(
            (conversations as u64).saturating_mul(CPU_MILLIS_PER_CONVERSATION) / 1000,
        );
        Self {
            memory_bytes: MAX_MEMORY_BYTES,
            cpu_seconds,
            wall: Duration::from_secs(cpu_seconds.saturating_mul(3).saturating_add(10)),
        }
    }

    /// Sets the memory and CPU limits, and no core dump, on this process — or keeps a
    /// lower hard limit it inherited (`ulimit -v`), which it may not raise.
    #[cfg(unix)]
    pub fn apply_to_this_process(&self) -> Result<(), String> {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let set = |resource, soft: u64, hard: u64, what: &str| {
            let inherited = getrlimit(resource).map_or(u64::MAX, |(_, hard)| hard);
            let hard = hard.min(inherited);
            setrlimit(resource, soft.min(hard), hard)
                .map_err(|e| format!("cannot limit {what}: {e}"))
        };
        set(Resource::RLIMIT_CORE, 0, 0, "core dumps")?;
        set(
            Resource::RLIMIT_AS,
            self.memory_bytes,
            self.memory_bytes,
            "memory",
        )?;
        set(
            Resource::RLIMIT_CPU,
            self.cpu_seconds,
            self.cpu_seconds.saturating_add(1),
            "CPU time",
        )
    }

    /// Without setrlimit there is no limit to set: the child refuses to render.
    #[cfg(not(unix))]
    pub fn apply_to_this_process(&self) -> Result<(), String> {
        Err("OS limits on a renderer process need a Unix system".into())
    }
}

/// Why a child stopped before replying for every conversation, as the user error of the
/// conversation it was rendering (`conversations` in its batch).
pub(super) fn explain(
    limits: &Limits,
    conversations: usize,
    status: Option<ExitStatus>,
    timed_out: bool,
    stderr_tail: &str,
) -> String {
    let memory = crate::user_file::human_bytes(limits.memory_bytes);
    let prompts = match conversations {
        1 => "1 prompt".to_string(),
        n => format!("{n} prompts"),
    };
    let doubling = "real chat templates need a few MB; look for a string or list that doubles \
                    in a loop or in a recursive macro, which MiniJinja's `~`, `+` and `*` \
                    build with no bound of their own";
    let spinning = "real chat templates render a prompt in well under a millisecond; look for \
                    a loop that builds or searches huge strings (`'x' * n`, `in`), which \
                    MiniJinja's operators do with no bound of their own";
    if timed_out {
        return format!(
            "rendering did not finish within {} s, the wall-clock limit of its renderer for \
             {prompts} ({spinning})",
            limits.wall.as_secs()
        );
    }
    let signal = status.and_then(signal_of);
    let out_of_memory = stderr_tail.contains("memory allocation of")
        || stderr_tail.contains("capacity overflow")
        || stderr_tail.contains("out of memory");
    if out_of_memory {
        return format!(
            "the template needed more than {memory} of memory rendering this prompt, the \
             limit of its renderer process ({doubling})"
        );
    }
    if stderr_tail.contains("has overflowed its stack") {
        return "the template overflowed its renderer's stack rendering this prompt (look \
                for a macro that calls itself without end)"
            .to_string();
    }
    match signal {
        // SIGXCPU at the soft limit (SIGKILL at the hard one would follow only if it
        // were caught).
        Some(SIGXCPU) => format!(
            "the template used more than {} s of CPU time, the limit of its renderer for \
             {prompts}, and was stopped rendering this one ({spinning})",
            limits.cpu_seconds
        ),
        _ => {
            let how = match (status.and_then(|s| s.code()), signal) {
                (_, Some(signal)) => format!("was killed by signal {signal}"),
                (Some(code), None) => format!("exited with status {code}"),
                (None, None) => "stopped".to_string(),
            };
            let tail = excerpt(stderr_tail);
            format!(
                "its renderer process {how} rendering this prompt{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            )
        }
    }
}

/// The signal RLIMIT_CPU's soft limit sends (24 on Linux; the number the OS reports).
#[cfg(unix)]
const SIGXCPU: i32 = nix::sys::signal::Signal::SIGXCPU as i32;
#[cfg(not(unix))]
const SIGXCPU: i32 = 24;

#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal_of(_: ExitStatus) -> Option<i32> {
    None
}

/// The last line of a child's stderr worth showing, at most 200 characters.
fn excerpt(stderr_tail: &str) -> String {
    let line = stderr_tail
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("note:"))
        .unwrap_or("");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_wall_grow_with_the_batch() {
        let probes = Limits::for_batch(2);
        assert_eq!(probes.cpu_seconds, 10);
        assert_eq!(probes.wall, Duration::from_secs(40));
        let big = Limits::for_batch(100_000);
        assert_eq!(big.cpu_seconds, 210);
        assert_eq!(big.memory_bytes, MAX_MEMORY_BYTES);
        assert_eq!(
            Limits::for_batch(usize::MAX).cpu_seconds,
            u64::MAX / 1000 + 10
        );
    }

    #[test]
    fn deaths_are_named_by_the_limit_they_hit() {
        let limits = Limits::for_batch(1);
        let memory = explain(
            &limits,
            1,
            None,
            false,
            "memory allocation of 8589934592 bytes failed\n",
        );
        assert!(memory.contains("more than 512 MiB of memory"), "{memory}");
        let wall = explain(&limits, 1, None, true, "");
        assert!(wall.contains("within 40 s"), "{wall}");
        let other = explain(
            &limits,
            1,
            None,
            false,
            "thread 'main' panicked at x\nnote: run with\n",
        );
        assert!(
            other.ends_with("stopped rendering this prompt: thread 'main' panicked at x"),
            "{other}"
        );
    }
}
