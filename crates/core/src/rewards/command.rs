//! Execute (rewards): the `command` reward — an external verifier program, run without a
//! shell. r1flow writes one JSON object per sample, `{"prompt", "completion", "answer"}`,
//! on the program's stdin, closes it, and reads one number per line from its stdout.
//! A crash, a timeout, a wrong number of lines or a line that is not a finite number is
//! an error naming the sample — never a silent 0.
//!
//! One program run scores a whole batch, within `timeout_s`. The program runs in the
//! manifest's directory, and a relative program path with a `/` is resolved from there.
//! The program runs in its own process group, and every call ends by killing that group:
//! on a timeout, on output past `MAX_OUTPUT_BYTES`, and after a normal exit (so a
//! background child it left holding stdout neither delays the call nor survives it).
//! `kill_running_verifiers` ends them on an exit that does not unwind.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::manifest::CommandReward;
use crate::records::Answer;

/// bubblewrap's arguments that run a program with the host's whole filesystem, network
/// and environment, in a new PID namespace only (with its own `/proc`), ended if r1flow
/// dies.
const PID_NAMESPACE_ARGS: [&str; 8] = [
    "--dev-bind",
    "/",
    "/",
    "--unshare-pid",
    "--die-with-parent",
    "--proc",
    "/proc",
    "--",
];

/// The `bwrap` that makes verifiers a PID namespace of their own, when it works here
/// (found on PATH and tried once per process); `None` where it does not (not installed,
/// or user namespaces refused), and verifiers run in a process group only.
pub fn pid_namespace() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let bwrap = std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("bwrap"))
                    .find(|candidate| candidate.is_file())
            })?;
            let works = Command::new(&bwrap)
                .args(PID_NAMESPACE_ARGS)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            works.then_some(bwrap)
        })
        .as_deref()
}

use super::error::RewardErrorKind;
use super::sample::Sample;

/// How much of the program's stderr is kept for an error message.
const STDERR_TAIL_BYTES: usize = 2000;

/// The `command` reward, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandVerifier {
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    timeout: Duration,
}

#[derive(Serialize)]
struct Request<'a> {
    prompt: &'a str,
    completion: &'a str,
    answer: Option<&'a Answer>,
}

impl CommandVerifier {
    /// Whether the program exists as a file to run: a path (relative to the verifier's
    /// directory), or a name found on PATH.
    fn startable(&self) -> bool {
        if self.program.components().count() > 1 || self.program.is_absolute() {
            return self.dir.join(&self.program).is_file();
        }
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(&self.program).is_file())
        })
    }

    /// Builds the verifier; `base_dir` is the manifest's directory.
    pub fn new(decl: &CommandReward, base_dir: &Path) -> Result<Self, RewardErrorKind> {
        let Some((program, args)) = decl.command.split_first() else {
            return Err(RewardErrorKind::Config(
                "`command` is empty; give the program and its arguments".into(),
            ));
        };
        let timeout = Duration::try_from_secs_f64(decl.timeout_s)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                RewardErrorKind::Config(format!(
                    "`timeout_s` must be a positive number of seconds, not {}",
                    decl.timeout_s
                ))
            })?;
        let program_path = Path::new(program);
        let program = if program_path.is_relative() && program.contains('/') {
            base_dir.join(program_path)
        } else {
            program_path.to_path_buf()
        };
        Ok(Self {
            program,
            args: args.to_vec(),
            dir: base_dir.to_path_buf(),
            timeout,
        })
    }

    /// Scores `samples` with one run of the program.
    pub fn score_batch(&self, samples: &[Sample<'_>]) -> Result<Vec<f64>, RewardErrorKind> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for s in samples {
            let request = Request {
                prompt: s.prompt,
                completion: s.completion,
                answer: s.answer,
            };
            serde_json::to_writer(&mut input, &request)
                .map_err(|e| RewardErrorKind::Io(e.to_string()))?;
            input.push(b'\n');
        }

        // In a PID namespace of its own where bubblewrap can make one: what the program
        // starts, even in a new session (`setsid`), dies with it, as the namespace ends
        // when its first process does. Elsewhere its process group (below) is all.
        let mut command = match pid_namespace() {
            // bubblewrap would report a program it cannot start as its own failure:
            // say it as a program that could not be started, as without it.
            Some(_) if !self.startable() => {
                return Err(RewardErrorKind::Spawn {
                    program: self.program.display().to_string(),
                    message: "No such file or directory (os error 2)".into(),
                })
            }
            Some(bwrap) => {
                let mut command = Command::new(bwrap);
                command.args(PID_NAMESPACE_ARGS).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: what it starts (a shell's children, a background
        // helper) is killed with it, and a Ctrl-C at the terminal reaches r1flow only.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        if !self.dir.as_os_str().is_empty() {
            command.current_dir(&self.dir);
        }
        let child = command.spawn().map_err(|e| RewardErrorKind::Spawn {
            program: self.program.display().to_string(),
            message: e.to_string(),
        })?;
        // From here on, every return kills the whole group (the guard's drop).
        let mut program = Running::new(child);
        let deadline = Instant::now() + self.timeout;

        let child = &mut program.child;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) = (stdin, stdout, stderr) else {
            return Err(RewardErrorKind::Io(
                "the program's pipes were not opened".into(),
            ));
        };
        // Writing, reading and draining stderr each get a thread, so that a program that
        // writes before it has read everything cannot deadlock against us. The writer is
        // never joined: a program that exits without reading all its input must not block
        // us. If the input did not arrive, the program's output shows it as a wrong count
        // or a crash.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let lines_read = Arc::new(AtomicUsize::new(0));
        let (lines_tx, lines_rx) = mpsc::channel();
        let counter = Arc::clone(&lines_read);
        thread::spawn(move || {
            let _ = lines_tx.send(read_lines(stdout, MAX_OUTPUT_BYTES, &counter));
        });
        let (stderr_tx, stderr_rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = stderr_tx.send(read_tail(&mut stderr, STDERR_TAIL_BYTES));
        });

        let timeout_error = |lines_read: &AtomicUsize| RewardErrorKind::Timeout {
            seconds: self.timeout.as_secs_f64(),
            first_unscored: lines_read.load(Ordering::Relaxed).min(samples.len()),
        };
        // Wait for both the end of stdout and the program's exit, within the deadline.
        let mut lines: Option<Vec<String>> = None;
        let mut status = None;
        let mut exited_at: Option<Instant> = None;
        let mut leftovers_killed = false;
        loop {
            if lines.is_none() {
                match lines_rx.try_recv() {
                    Ok(Ok(read)) => lines = Some(read),
                    Ok(Err(error)) => return Err(error),
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return Err(RewardErrorKind::Io("the output reader stopped".into()))
                    }
                }
            }
            if status.is_none() {
                match program.child.try_wait() {
                    Ok(Some(exit)) => {
                        status = Some(exit);
                        exited_at = Some(Instant::now());
                    }
                    Ok(None) => {}
                    Err(e) => return Err(RewardErrorKind::Io(e.to_string())),
                }
            }
            if let (Some(_), Some(_)) = (&lines, &status) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(timeout_error(&lines_read));
            }
            // The program exited but something it started still holds stdout open: what
            // it wrote is all there is, so end its group, which closes the pipe.
            if !leftovers_killed && exited_at.is_some_and(|t| t.elapsed() > LEFTOVER_GRACE) {
                program.kill_group();
                leftovers_killed = true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        let (Some(lines), Some(status)) = (lines, status) else {
            return Err(RewardErrorKind::Io("the program's state was lost".into()));
        };
        // Anything the program left running goes now, not at the next call.
        program.kill_group();
        if !status.success() {
            // The program has exited and its group is killed, so its stderr is at EOF (a
            // child in another group could still hold it: wait briefly, not for it).
            let stderr = stderr_rx
                .recv_timeout(Duration::from_millis(500))
                .unwrap_or_default();
            return Err(RewardErrorKind::Crashed {
                status: status.to_string(),
                stderr,
                first_unscored: (lines.len() < samples.len()).then_some(lines.len()),
            });
        }
        if lines.len() != samples.len() {
            return Err(RewardErrorKind::WrongCount {
                expected: samples.len(),
                got: lines.len(),
            });
        }
        lines
            .iter()
            .enumerate()
            .map(|(sample, line)| {
                line.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|score| score.is_finite())
                    .ok_or_else(|| RewardErrorKind::NotANumber {
                        sample,
                        // Quoted in the error: a short excerpt, not a megabyte.
                        line: line.chars().take(80).collect(),
                    })
            })
            .collect()
    }
}

/// The most a verifier may write on stdout in one call: 1 MiB. One score per line is a few
/// bytes per sample; a program that writes more is broken (`yes`), and holding its output
/// would exhaust memory.
pub const MAX_OUTPUT_BYTES: u64 = 1 << 20;

/// How long a program that exited may leave a child holding its stdout before that child
/// is killed.
const LEFTOVER_GRACE: Duration = Duration::from_millis(200);

/// A program's stdout as lines, counting them as they arrive; an error past `limit` bytes
/// (the `code` reward's sandbox reads its harness's output with this too).
pub(super) fn read_lines(
    stdout: impl Read,
    limit: u64,
    counter: &AtomicUsize,
) -> Result<Vec<String>, RewardErrorKind> {
    let mut lines = Vec::new();
    let mut bytes: u64 = 0;
    for line in BufReader::new(stdout.take(limit + 1)).lines() {
        let line = line.map_err(|e| RewardErrorKind::Io(e.to_string()))?;
        bytes += line.len() as u64 + 1;
        if bytes > limit {
            return Err(RewardErrorKind::OutputTooLarge { limit });
        }
        lines.push(line);
        counter.fetch_add(1, Ordering::Relaxed);
    }
    Ok(lines)
}

/// Drains `stream` to its end, keeping only its last `keep` bytes.
fn read_tail(stream: &mut impl Read, keep: usize) -> String {
    read_tail_within(stream, keep, u64::MAX).0
}

/// Reads `stream` to its end or until more than `limit` bytes came, keeping only its last
/// `keep` bytes; and whether it stopped at the limit (the stream is then not drained).
pub(super) fn read_tail_within(stream: &mut impl Read, keep: usize, limit: u64) -> (String, bool) {
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    let mut total: u64 = 0;
    let mut over = false;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * keep {
                    tail.drain(..tail.len() - keep);
                }
                total = total.saturating_add(n as u64);
                if total > limit {
                    over = true;
                    break;
                }
            }
        }
    }
    let start = tail.len().saturating_sub(keep);
    (String::from_utf8_lossy(&tail[start..]).into_owned(), over)
}

/// Process groups of the verifiers running now, so that an exit on a second Ctrl-C can
/// end them (`kill_running_verifiers`).
static RUNNING_GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Kills every verifier running now, with everything it started. For an exit that does
/// not unwind (a second Ctrl-C): a verifier runs in its own process group, so nothing
/// else would stop it.
pub fn kill_running_verifiers() {
    let groups = match RUNNING_GROUPS.lock() {
        Ok(groups) => groups.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for group in groups {
        kill_group(group);
    }
}

/// SIGKILL to the process group `group`; a group already gone is fine.
pub(super) fn kill_group(group: u32) {
    #[cfg(unix)]
    if let Ok(pgid) = i32::try_from(group) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    #[cfg(not(unix))]
    let _ = group;
}

/// A running program's process group, known to `kill_running_verifiers` while it lives;
/// dropping it kills the group (verifiers here, the `code` reward's sandboxes too).
pub(super) struct GroupGuard {
    group: u32,
}

impl GroupGuard {
    /// Registers the group whose leader is the process `leader` (spawned with
    /// `process_group(0)`).
    pub(super) fn new(leader: u32) -> Self {
        if let Ok(mut groups) = RUNNING_GROUPS.lock() {
            groups.push(leader);
        }
        Self { group: leader }
    }

    /// Kills the whole group (gone already is fine).
    pub(super) fn kill(&self) {
        kill_group(self.group);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.group);
        if let Ok(mut groups) = RUNNING_GROUPS.lock() {
            groups.retain(|g| *g != self.group);
        }
    }
}

/// A verifier program while it runs: dropping it kills its process group and reaps it.
struct Running {
    child: Child,
    group: GroupGuard,
}

impl Running {
    fn new(child: Child) -> Self {
        let group = GroupGuard::new(child.id());
        Self { child, group }
    }

    /// Kills the program's whole group (it may have exited already, which is fine).
    fn kill_group(&mut self) {
        self.group.kill();
        let _ = self.child.kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example verifier, run with a failure mode for these tests.
    fn verifier(fail: Option<&str>, timeout_s: f64) -> CommandVerifier {
        let mut command = vec![
            "python3".to_string(),
            "examples/verifier/verify.py".to_string(),
        ];
        if let Some(mode) = fail {
            command.extend(["--fail".to_string(), mode.to_string()]);
        }
        let decl = CommandReward { command, timeout_s };
        // The example verifier lives at the repository root, two levels up.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        CommandVerifier::new(&decl, &root).expect("valid decl")
    }

    fn batch(answers: &[Answer]) -> Vec<(String, &Answer)> {
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("<think>t</think><answer>{i}</answer>"), a))
            .collect()
    }

    fn samples<'a>(items: &'a [(String, &'a Answer)]) -> Vec<Sample<'a>> {
        items
            .iter()
            .map(|(completion, answer)| Sample::new("q", completion, Some(answer)))
            .collect()
    }

    fn answers() -> Vec<Answer> {
        vec![
            Answer::Text("0".into()),
            Answer::Text("5".into()),
            Answer::Number(2.into()),
        ]
    }

    /// The example verifier's scores of the three samples of `batch(&answers())`, run
    /// with `fail` under `timeout_s`.
    fn scores(fail: Option<&str>, timeout_s: f64) -> Result<Vec<f64>, RewardErrorKind> {
        let answers = answers();
        let items = batch(&answers);
        verifier(fail, timeout_s).score_batch(&samples(&items))
    }

    #[test]
    fn scores_one_number_per_sample() {
        assert_eq!(scores(None, 30.0), Ok(vec![1.0, 0.0, 1.0]));
        assert_eq!(verifier(None, 30.0).score_batch(&[]), Ok(vec![]));
    }

    #[test]
    fn a_crash_names_the_first_unscored_sample() {
        let error = scores(Some("crash"), 30.0).expect_err("crashes");
        let RewardErrorKind::Crashed {
            stderr,
            first_unscored,
            ..
        } = &error
        else {
            panic!("expected a crash, got {error:?}");
        };
        assert_eq!(*first_unscored, Some(1));
        assert!(stderr.contains("verifier crashed on purpose"), "{stderr}");
    }

    #[test]
    fn a_hang_times_out_and_is_killed() {
        let started = Instant::now();
        let error = scores(Some("hang"), 3.0);
        // The verifier prints one score before hanging; on a loaded machine it may not
        // have got that far when the timeout strikes.
        assert!(
            matches!(
                error,
                Err(RewardErrorKind::Timeout {
                    seconds: 3.0,
                    first_unscored: 0 | 1
                })
            ),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_short_or_long_answer_count_is_an_error() {
        assert_eq!(
            scores(Some("short"), 30.0),
            Err(RewardErrorKind::WrongCount {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            scores(Some("extra"), 30.0),
            Err(RewardErrorKind::WrongCount {
                expected: 3,
                got: 4
            })
        );
    }

    #[test]
    fn a_non_number_names_its_sample() {
        assert_eq!(
            scores(Some("garbage"), 30.0),
            Err(RewardErrorKind::NotANumber {
                sample: 1,
                line: "oops".into()
            })
        );
        assert_eq!(
            scores(Some("nan"), 30.0),
            Err(RewardErrorKind::NotANumber {
                sample: 1,
                line: "nan".into()
            })
        );
    }

    #[test]
    fn a_program_that_ignores_its_input_is_a_wrong_count() {
        let decl = CommandReward {
            command: vec!["true".into()],
            timeout_s: 30.0,
        };
        let verifier = CommandVerifier::new(&decl, Path::new(".")).expect("valid decl");
        let answer = Answer::Text("1".into());
        let big = "x".repeat(1 << 20);
        let samples = [Sample::new("q", &big, Some(&answer)); 4];
        assert_eq!(
            verifier.score_batch(&samples),
            Err(RewardErrorKind::WrongCount {
                expected: 4,
                got: 0
            })
        );
    }

    #[test]
    fn endless_output_is_cut_at_the_limit() {
        let decl = CommandReward {
            command: vec!["yes".into(), "1.0".into()],
            timeout_s: 30.0,
        };
        let verifier = CommandVerifier::new(&decl, Path::new(".")).expect("valid decl");
        let answer = Answer::Text("1".into());
        let started = Instant::now();
        assert_eq!(
            verifier.score_batch(&[Sample::new("q", "c", Some(&answer))]),
            Err(RewardErrorKind::OutputTooLarge {
                limit: MAX_OUTPUT_BYTES
            })
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let mut stream = std::io::Cursor::new(vec![b'x'; 100_000]);
        assert_eq!(read_tail(&mut stream, 10), "x".repeat(10));
    }

    #[test]
    fn bad_declarations_and_missing_programs() {
        let empty = CommandReward {
            command: vec![],
            timeout_s: 1.0,
        };
        assert!(matches!(
            CommandVerifier::new(&empty, Path::new(".")),
            Err(RewardErrorKind::Config(_))
        ));
        for timeout_s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let decl = CommandReward {
                command: vec!["true".into()],
                timeout_s,
            };
            assert!(CommandVerifier::new(&decl, Path::new(".")).is_err());
        }
        let missing = CommandReward {
            command: vec!["./no-such-verifier".into()],
            timeout_s: 1.0,
        };
        let verifier = CommandVerifier::new(&missing, Path::new(".")).expect("valid decl");
        let answer = Answer::Text("1".into());
        assert!(matches!(
            verifier.score_batch(&[Sample::new("q", "c", Some(&answer))]),
            Err(RewardErrorKind::Spawn { .. })
        ));
    }
}
