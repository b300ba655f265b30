//! Execute (rewards): the `command` reward — an external verifier program, run without a
//! shell. r1flow writes one JSON object per sample, `{"prompt", "completion", "answer"}`,
//! on the program's stdin, closes it, and reads one number per line from its stdout.
//! A crash, a timeout, a wrong number of lines or a line that is not a finite number is
//! an error naming the sample — never a silent 0.
//!
//! One program run scores a whole batch, within `timeout_s`. The program runs in the
//! manifest's directory, and a relative program path with a `/` is resolved from there.
//! On a timeout the program is killed; a grandchild it started that keeps the pipes open
//! only delays the background threads that read them, not the caller.

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

        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.dir.as_os_str().is_empty() {
            command.current_dir(&self.dir);
        }
        let mut child = command.spawn().map_err(|e| RewardErrorKind::Spawn {
            program: self.program.display().to_string(),
            message: e.to_string(),
        })?;
        let deadline = Instant::now() + self.timeout;

        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) = (stdin, stdout, stderr) else {
            kill(&mut child);
            return Err(RewardErrorKind::Io(
                "the program's pipes were not opened".into(),
            ));
        };
        // Writing, reading and draining stderr each get a thread, so that a program that
        // writes before it has read everything cannot deadlock against us. The writer is never joined: a program that exits without reading all its input
        // (or leaves a child holding stdin) must not block us. If the input did not
        // arrive, the program's output shows it as a wrong count or a crash.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let lines_read = Arc::new(AtomicUsize::new(0));
        let (lines_tx, lines_rx) = mpsc::channel();
        let counter = Arc::clone(&lines_read);
        thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        lines.push(line);
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        let _ = lines_tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
            let _ = lines_tx.send(Ok(lines));
        });
        let (stderr_tx, stderr_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = Vec::new();
            let _ = stderr.read_to_end(&mut buffer);
            let start = buffer.len().saturating_sub(STDERR_TAIL_BYTES);
            let _ = stderr_tx.send(String::from_utf8_lossy(&buffer[start..]).into_owned());
        });

        let timeout_error = |lines_read: &AtomicUsize| RewardErrorKind::Timeout {
            seconds: self.timeout.as_secs_f64(),
            first_unscored: lines_read.load(Ordering::Relaxed).min(samples.len()),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let lines = match lines_rx.recv_timeout(remaining) {
            Ok(Ok(lines)) => lines,
            Ok(Err(message)) => {
                kill(&mut child);
                return Err(RewardErrorKind::Io(message));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(&mut child);
                return Err(timeout_error(&lines_read));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                kill(&mut child);
                return Err(RewardErrorKind::Io("the output reader stopped".into()));
            }
        };
        // stdout is closed; give the program the rest of its time to exit.
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    kill(&mut child);
                    return Err(timeout_error(&lines_read));
                }
                Ok(None) => thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    kill(&mut child);
                    return Err(RewardErrorKind::Io(e.to_string()));
                }
            }
        };
        if !status.success() {
            // The program has exited, so its stderr is at EOF unless a child of it still
            // holds the pipe; wait briefly rather than for that child.
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
                        line: line.clone(),
                    })
            })
            .collect()
    }
}

/// Kills and reaps the program; it may already have exited, which is fine.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
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

    #[test]
    fn scores_one_number_per_sample() {
        let answers = answers();
        let items = batch(&answers);
        let scores = verifier(None, 30.0).score_batch(&samples(&items));
        assert_eq!(scores, Ok(vec![1.0, 0.0, 1.0]));
        assert_eq!(verifier(None, 30.0).score_batch(&[]), Ok(vec![]));
    }

    #[test]
    fn a_crash_names_the_first_unscored_sample() {
        let answers = answers();
        let items = batch(&answers);
        let error = verifier(Some("crash"), 30.0)
            .score_batch(&samples(&items))
            .expect_err("crashes");
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
        let answers = answers();
        let items = batch(&answers);
        let started = Instant::now();
        let error = verifier(Some("hang"), 3.0).score_batch(&samples(&items));
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
        let answers = answers();
        let items = batch(&answers);
        assert_eq!(
            verifier(Some("short"), 30.0).score_batch(&samples(&items)),
            Err(RewardErrorKind::WrongCount {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            verifier(Some("extra"), 30.0).score_batch(&samples(&items)),
            Err(RewardErrorKind::WrongCount {
                expected: 3,
                got: 4
            })
        );
    }

    #[test]
    fn a_non_number_names_its_sample() {
        let answers = answers();
        let items = batch(&answers);
        assert_eq!(
            verifier(Some("garbage"), 30.0).score_batch(&samples(&items)),
            Err(RewardErrorKind::NotANumber {
                sample: 1,
                line: "oops".into()
            })
        );
        assert_eq!(
            verifier(Some("nan"), 30.0).score_batch(&samples(&items)),
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
