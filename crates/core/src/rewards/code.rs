//! Execute (rewards): the `code` reward — the program a completion writes is run against
//! its prompt record's tests in a sandbox ([`super::sandbox`]), and scored by the tests
//! it passes.
//!
//! The program is the completion's last fenced code block (```` ```python ````, ```` ```py ````
//! or a bare ```` ``` ````; a block still open at the end of the completion runs to its
//! end, so that a completion cut at `max_completion_length` is graded on what it wrote),
//! else its one `<answer>` block. A completion with neither scores 0.
//!
//! The tests are the record's `tests`: a list of statements (MBPP's `test_list`), each
//! one test, run after the program in a copy of its namespace; or one string, a test
//! program (HumanEval's `test`), one test, which with an `entry_point` and a `check`
//! function is called as `check(ENTRY_POINT)`. A test passes when it raises nothing.
//! The score is the fraction passed (`scoring: fraction`) or 1 only when all pass
//! (`scoring: all`); a record without tests is skipped.
//!
//! A harness (`HARNESS`, Python) runs the program and the tests in one interpreter, as
//! HumanEval's and MBPP's own harnesses do, and reports on a copy of stdout taken before
//! the program runs (the program's own prints go to stderr), on a line that starts with a
//! token drawn for this run. Any run that does not end with exactly one such line — the
//! program exited or crashed first, was killed at a limit, wrote too much — scores 0 with
//! the reason; so does a program that leaves a process running after its tests (in the
//! sandbox, where the harness can see every process of its PID namespace). The token keeps a program's prints from passing for a result; it is not a
//! defence against a program written to defeat its own tests (one that finds the token in
//! the harness's frame, or returns an object equal to everything): the sandbox protects
//! the machine, not the reward.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::manifest::{CodeReward, CodeSandbox, CodeScoring};
use crate::records::Tests;

use super::answer::{extract_answer, ExtractedAnswer};
use super::error::RewardErrorKind;
use super::sample::{RewardOutcome, Sample};
use super::sandbox::{Ending, Limits, Sandbox};

/// The first line the harness writes, before it reads anything: a run without it never
/// got as far as Python (the sandbox failed, which is r1flow's error, not the program's).
const STARTED: &str = "r1flow-harness started";

/// Runs one program against its tests; see the module documentation.
const HARNESS: &str = r#"
import json, os, sys
os.write(1, b"r1flow-harness started\n")

def _r1flow_harness():
    write, dumps, exit_now = os.write, json.dumps, os._exit
    listdir, getpid, read_file = os.listdir, os.getpid, open
    job = json.loads(sys.stdin.buffer.read())
    token = job["token"]
    results = os.dup(1)
    os.set_inheritable(results, False)
    os.dup2(2, 1)
    entry = job.get("entry_point")
    tests = job["tests"]
    program_test = isinstance(tests, str)
    cases = [tests] if program_test else list(tests)

    def told(error):
        try:
            text = type(error).__name__
            detail = str(error)
        except BaseException:
            return "an exception that cannot be printed"
        if detail:
            text += ": " + detail
        return text if len(text) <= 300 else text[:300] + "..."

    passed = 0
    reason = None
    namespace = {"__name__": "solution"}
    try:
        exec(compile(job["code"], "solution.py", "exec"), namespace)
    except BaseException as error:
        reason = "the program raised " + told(error)
    else:
        if entry and entry not in namespace:
            reason = "the program does not define `%s`" % entry
    if reason is None:
        failed = 0
        for number, case in enumerate(cases, 1):
            scope = dict(namespace)
            try:
                exec(compile(case, "test_%d.py" % number, "exec"), scope)
                if program_test and entry and callable(scope.get("check")):
                    scope["check"](scope[entry])
                passed += 1
            except BaseException as error:
                failed += 1
                if reason is None:
                    reason = "test %d failed: %s" % (number, told(error))
                    lines = case.strip().splitlines()
                    if not program_test and lines:
                        reason += " (`%s`)" % lines[0][:120]
        if failed and len(cases) > 1:
            reason = "%d of %d tests failed; first, %s" % (failed, len(cases), reason)
    if job.get("own_pid_namespace"):
        # Alone in its PID namespace but for bwrap's init (pid 1): anything else still
        # running was left behind by the program, which scores 0 for it.
        left = 0
        for name in listdir("/proc"):
            if not name.isdigit() or int(name) in (1, getpid()):
                continue
            try:
                with read_file("/proc/%s/stat" % name) as stat:
                    state = stat.read().rsplit(")", 1)[1].split()[0]
            except BaseException:
                continue
            if state not in ("Z", "X"):
                left += 1
        if left:
            passed = 0
            reason = "left %d process(es) running after its tests" % left
    line = token + " " + dumps({"passed": passed, "total": len(cases), "reason": reason})
    write(results, (line + "\n").encode())
    exit_now(0)

_r1flow_harness()
"#;

/// The `code` reward, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeVerifier {
    sandbox: Sandbox,
    scoring: CodeScoring,
    parallel: usize,
    timeout_s: f64,
}

/// What the `code` reward found for one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeOutcome {
    /// The record has no tests (or an empty list): not scored.
    NoTests,
    /// `passed` of `total` tests passed; `reason` says why not all did (no code, a
    /// failing test, a limit hit…).
    Graded {
        passed: usize,
        total: usize,
        reason: Option<String>,
    },
}

impl CodeOutcome {
    /// The reward's score under `scoring`.
    pub fn score(&self, scoring: CodeScoring) -> RewardOutcome {
        match self {
            Self::NoTests => RewardOutcome::Skipped("the record has no tests".into()),
            Self::Graded { passed, total, .. } => RewardOutcome::Score(match scoring {
                CodeScoring::Fraction if *total > 0 => *passed as f64 / *total as f64,
                CodeScoring::Fraction => 0.0,
                CodeScoring::All => f64::from(u8::from(*total > 0 && passed == total)),
            }),
        }
    }

    /// Why not every test passed (`None` when they all did, or for no tests).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::NoTests => None,
            Self::Graded { reason, .. } => reason.as_deref(),
        }
    }

    fn failed(total: usize, reason: impl Into<String>) -> Self {
        Self::Graded {
            passed: 0,
            total,
            reason: Some(reason.into()),
        }
    }
}

/// What the harness reads on stdin.
#[derive(Serialize)]
struct Job<'a> {
    token: &'a str,
    code: &'a str,
    tests: &'a Tests,
    entry_point: Option<&'a str>,
    /// The harness checks that nothing the program started is still running (only in
    /// the sandbox, where its PID namespace holds nothing else).
    own_pid_namespace: bool,
}

/// The harness's result line, after the token.
#[derive(Deserialize)]
struct Reported {
    passed: usize,
    total: usize,
    reason: Option<String>,
}

impl CodeVerifier {
    /// Builds the reward: checks its limits and finds the interpreter and the sandbox.
    pub fn new(decl: &CodeReward) -> Result<Self, RewardErrorKind> {
        if let Some((_, problem)) = decl.problems().into_iter().next() {
            return Err(RewardErrorKind::Config(problem));
        }
        let limits = Limits {
            wall: Duration::from_secs_f64(decl.timeout_s),
            cpu_s: decl.timeout_s.ceil() as u64,
            memory_bytes: decl.memory_mb << 20,
            processes: decl.max_processes,
        };
        let isolated = decl.sandbox == CodeSandbox::Bwrap;
        let sandbox =
            Sandbox::new(isolated, "python3", limits).map_err(RewardErrorKind::Sandbox)?;
        let parallel = decl.max_parallel.unwrap_or_else(|| {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        Ok(Self {
            sandbox,
            scoring: decl.scoring,
            parallel: parallel.max(1),
            timeout_s: decl.timeout_s,
        })
    }

    pub fn scoring(&self) -> CodeScoring {
        self.scoring
    }

    /// Whether programs run in the bwrap sandbox.
    pub fn is_sandboxed(&self) -> bool {
        self.sandbox.is_isolated()
    }

    /// Scores every sample (see [`CodeVerifier::grade`]).
    pub fn score_batch(
        &self,
        samples: &[Sample<'_>],
    ) -> Result<Vec<RewardOutcome>, RewardErrorKind> {
        Ok(self
            .grade(samples)?
            .iter()
            .map(|outcome| outcome.score(self.scoring))
            .collect())
    }

    /// Runs every sample's program against its tests, up to `max_parallel` at once; one
    /// outcome per sample, in order. An error only when the sandbox itself fails.
    pub fn grade(&self, samples: &[Sample<'_>]) -> Result<Vec<CodeOutcome>, RewardErrorKind> {
        let mut outcomes: Vec<Option<CodeOutcome>> = vec![None; samples.len()];
        let mut runs: Vec<(usize, &str, &Tests)> = Vec::new();
        for (i, sample) in samples.iter().enumerate() {
            let Some(tests) = sample.tests.filter(|t| t.count() > 0) else {
                outcomes[i] = Some(CodeOutcome::NoTests);
                continue;
            };
            match extract_code(sample.completion) {
                Some(code) => runs.push((i, code, tests)),
                None => {
                    outcomes[i] = Some(CodeOutcome::failed(
                        tests.count(),
                        "no code: the completion has no fenced code block and no <answer> block",
                    ))
                }
            }
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let workers = self.parallel.min(runs.len());
        let results: Vec<Vec<(usize, Result<CodeOutcome, String>)>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let (runs, next, stop) = (&runs, &next, &stop);
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        while !stop.load(Ordering::Relaxed) {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(i, code, tests)) = runs.get(n) else {
                                break;
                            };
                            let entry_point = samples[i].entry_point;
                            let result = self.run_one(code, tests, entry_point);
                            if result.is_err() {
                                stop.store(true, Ordering::Relaxed);
                            }
                            done.push((i, result));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![(usize::MAX, Err("a grader panicked".into()))])
                })
                .collect()
        });
        for (i, result) in results.into_iter().flatten() {
            let outcome = result.map_err(RewardErrorKind::Sandbox)?;
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| RewardErrorKind::Sandbox("a program was not run".into())))
            .collect()
    }

    /// Runs one program.
    fn run_one(
        &self,
        code: &str,
        tests: &Tests,
        entry_point: Option<&str>,
    ) -> Result<CodeOutcome, String> {
        let token = super::sandbox::unique_token();
        let job = Job {
            token: &token,
            code,
            tests,
            entry_point,
            own_pid_namespace: self.sandbox.is_isolated(),
        };
        let input = serde_json::to_vec(&job).map_err(|e| e.to_string())?;
        let finished = self.sandbox.run(&["-I", "-c", HARNESS], input)?;
        let total = tests.count();
        let started = finished.stdout.first().is_some_and(|l| l == STARTED);
        let last_words = || {
            let line = finished.stderr_tail.trim_end().lines().last().unwrap_or("");
            match line.is_empty() {
                true => String::new(),
                false => format!("; its output ends: {}", clip(line, 200)),
            }
        };
        let status = match &finished.ending {
            Ending::TimedOut => {
                return Ok(CodeOutcome::failed(
                    total,
                    format!("timed out after {} s (wall clock)", self.timeout_s),
                ))
            }
            Ending::OutputTooLarge { limit } => {
                return Ok(CodeOutcome::failed(
                    total,
                    format!(
                        "wrote more than {} of output and was stopped",
                        crate::user_file::human_bytes(*limit)
                    ),
                ))
            }
            Ending::LeftProcesses => {
                return Ok(CodeOutcome::failed(
                    total,
                    "left a process running that held its output (killed)",
                ))
            }
            Ending::Exited { status, .. } => status,
        };
        if !started {
            return Err(format!(
                "the sandbox did not start Python ({status}): {}",
                clip(finished.stderr_tail.trim(), 1000)
            ));
        }
        let prefix = format!("{token} ");
        let reports: Vec<&str> = finished
            .stdout
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        let [report] = reports.as_slice() else {
            return Ok(CodeOutcome::failed(
                total,
                match reports.len() {
                    0 => format!(
                        "the program ended the run before its tests finished ({status}){}",
                        last_words()
                    ),
                    n => format!("{n} results for one run: the program wrote its own"),
                },
            ));
        };
        match serde_json::from_str::<Reported>(report) {
            Ok(r) if r.total == total && r.passed <= total => Ok(CodeOutcome::Graded {
                passed: r.passed,
                total,
                reason: r.reason,
            }),
            _ => Ok(CodeOutcome::failed(
                total,
                "the harness's result is malformed",
            )),
        }
    }
}

/// At most `max` characters of `text`.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The program in `completion`: its last fenced Python (or unlabelled) code block — one
/// left open at the end runs to the end —, else its one `<answer>` block.
pub fn extract_code(completion: &str) -> Option<&str> {
    let mut fences = completion.match_indices("```").map(|(i, _)| i);
    let mut last = None;
    while let Some(open) = fences.next() {
        let close = fences.next();
        let body = &completion[open + 3..close.unwrap_or(completion.len())];
        let (info, code) = match body.find('\n') {
            Some(newline) => (&body[..newline], &body[newline + 1..]),
            None => ("", body),
        };
        let language = info.split_whitespace().next().unwrap_or("");
        if ["", "python", "py", "python3", "py3"]
            .iter()
            .any(|l| language.eq_ignore_ascii_case(l))
        {
            last = Some(code);
        }
        if close.is_none() {
            break;
        }
    }
    last.or(match extract_answer(completion) {
        ExtractedAnswer::One(text) => Some(text.trim_matches(['\n', '\r'])),
        ExtractedAnswer::Missing | ExtractedAnswer::Ambiguous => None,
    })
}
