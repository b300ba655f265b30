//! Bounds a chat template cannot cross: what MiniJinja's operators (`~`, `+`, `*`) and
//! recursive macros build has no hook for the in-process fuel and budget, so renderings
//! run in a child process under OS limits (`src/chat_isolation`). A template that would
//! exhaust the machine's memory or spin is a located `validate` error naming the limit —
//! quickly, never an aborted process — and a dataset stage that meets one on a later
//! record fails naming the record, in the coordinator or in a worker process.

use std::time::{Duration, Instant};

use crate::support::{repo_root, Outcome, Test};

/// A project whose checkpoint `chk` (the tiny Llama fixture) carries `template` as its
/// `chat_template.jinja`, and a dataset stage rendering the prompts of `records` (JSONL)
/// with it.
fn chat_project(template: &str, records: &str) -> Test {
    let fixture = repo_root().join("tests/fixtures/llama-chat-tiny");
    let mut test = Test::new();
    for file in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        let bytes = std::fs::read(fixture.join(file)).expect("read the fixture");
        test = test.write(&format!("chk/{file}"), bytes);
    }
    test.write("chk/chat_template.jinja", template)
        .write("q.jsonl", records)
        .write(
            "m.yaml",
            "name: bounds\nmodels:\n  chk: {path: chk}\ndatasets:\n  \
             q: {kind: jsonl, path: q.jsonl, format: prompts}\nstages:\n  \
             tasks: {kind: dataset, source: q, template: chat, chat_template: chk, test_size: 1}\n",
        )
}

const QUESTIONS: &str = "{\"prompt\": \"What is 2 + 3?\", \"answer\": \"5\"}\n\
                         {\"prompt\": \"What is 2 + 4?\", \"answer\": \"6\"}\n";

/// `args` in `test`, which must fail within `seconds` as an orderly error (its summary
/// line written: not aborted, not killed by the test).
fn fails_within(test: &Test, args: &[&str], seconds: u64) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = test.clone_args(args.iter().copied()).run_within(seconds);
    let took = started.elapsed();
    assert!(!outcome.success, "{args:?} succeeded: {}", outcome.stdout);
    assert!(
        !outcome.stderr.contains("TIMED OUT"),
        "{args:?} took over {seconds} s: {}",
        outcome.stderr
    );
    (outcome, took)
}

/// Templates whose operators double a string or a list until memory runs out: each is
/// stopped by the renderer's 512 MiB, at the stage's `chat_template:`, within seconds,
/// by `validate` and by `plan` and `run` (which check first).
#[test]
fn operators_that_build_without_bound_stop_at_the_renderers_memory_limit() {
    for (name, template) in [
        (
            "tilde_doubling",
            "{% set ns = namespace(s='ab') %}{% for i in range(60) %}\
             {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        ),
        (
            "plus_doubling",
            "{% set ns = namespace(s='ab') %}{% for i in range(60) %}\
             {% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
        ),
        (
            "recursive_macro",
            "{% macro twice(s, n) %}{% if n > 0 %}{{ twice(s ~ s, n - 1) }}\
             {% else %}{{ s|length }}{% endif %}{% endmacro %}{{ twice('ab', 60) }}",
        ),
        (
            "kept_repetitions",
            "{% set ns = namespace(kept=[]) %}{% for i in range(100) %}\
             {% set ns.kept = ns.kept + ['x' * (90000000 + i)] %}{% endfor %}\
             {{ ns.kept|length }}",
        ),
    ] {
        let test = chat_project(template, QUESTIONS);
        let (outcome, took) = fails_within(&test, &["validate", "m.yaml"], 60);
        assert!(
            outcome
                .stderr
                .contains("the template needed more than 512 MiB of memory rendering this prompt")
                && outcome.stderr.contains(" --> m.yaml:7:68")
                && outcome.stderr.ends_with("1 error\n"),
            "{name}: {}",
            outcome.stderr
        );
        assert!(took < Duration::from_secs(30), "{name}: took {took:?}");
        insta::assert_snapshot!(format!("chat_template_memory_{name}"), outcome.stderr);
        if name == "tilde_doubling" {
            for command in [
                &["plan", "m.yaml", "--store", "store"][..],
                &["run", "m.yaml", "--store", "store"][..],
            ] {
                let (again, _) = fails_within(&test, command, 60);
                assert!(
                    again.stderr.contains("more than 512 MiB of memory")
                        && again.stderr.contains(" --> m.yaml:7:68"),
                    "{command:?}: {}",
                    again.stderr
                );
            }
        }
    }
}

/// `*` on a string: one huge repetition is MiniJinja's own located error; repetitions in
/// a loop, each under MiniJinja's 100 MB, copy without end and are stopped by the
/// renderer's CPU time.
#[test]
fn string_repetition_is_refused_at_once_or_stopped_by_the_renderers_cpu_limit() {
    let test = chat_project("{{ 'x' * 10**10 }}", QUESTIONS);
    let (outcome, _) = fails_within(&test, &["validate", "m.yaml"], 60);
    outcome.assert_stderr_says(
        "checkpoint `chk`'s chat template: repeated string is too large (line 1), at \
         `'x' * 10**10`",
    );

    let test = chat_project(
        "{% for i in range(100000) %}{% set x = 'x' * (90000000 + i) %}{% endfor %}",
        QUESTIONS,
    );
    let (outcome, took) = fails_within(&test, &["validate", "m.yaml"], 120);
    outcome
        .assert_stderr_says(
            "the template used more than 10 s of CPU time, the limit of its renderer for 1 prompt",
        )
        .assert_stderr_says(" --> m.yaml:7:68");
    // Ten seconds of the child's CPU, however busy the machine is: the wall clock's
    // 40 s would have said so instead.
    assert!(took >= Duration::from_secs(10), "took {took:?}");
    insta::assert_snapshot!("chat_template_cpu_repetition", outcome.stderr);
}

/// A template that renders check's probe and blows up on a later record: the dataset
/// stage renders every record in one child under the same limits, and fails naming the
/// record — in the coordinator and in a worker process (`--jobs 2`); the store stays
/// usable and the fixed data runs.
#[test]
fn the_dataset_stage_renders_its_records_under_the_same_limits() {
    let template = "{% for m in messages %}{% if m.content == 'boom' %}\
                    {% set ns = namespace(s='ab') %}{% for i in range(60) %}\
                    {% set ns.s = ns.s ~ ns.s %}{% endfor %}{% endif %}\
                    <{{ m.role }}>{{ m.content }}{% endfor %}";
    let records = format!("{QUESTIONS}{{\"prompt\": \"boom\", \"answer\": \"0\"}}\n");
    let test = chat_project(template, &records);
    let validated = test.clone_args(["validate", "m.yaml"]).run_within(60);
    validated.assert_success();
    for jobs in ["1", "2"] {
        let (outcome, took) = fails_within(
            &test,
            &["run", "m.yaml", "--store", "store", "--jobs", jobs],
            120,
        );
        let failed = outcome
            .stderr
            .lines()
            .find_map(|l| l.split_once(": FAILED: "))
            .map(|(stage, why)| (stage.trim(), why));
        let Some((stage, why)) = failed else {
            panic!("--jobs {jobs}: no failed stage: {}", outcome.stderr);
        };
        assert!(stage.starts_with("tasks (dataset) "), "{stage}");
        assert_eq!(
            why,
            "q.jsonl: record 3: chat template: the template needed more than 512 MiB of \
             memory rendering this prompt, the limit of its renderer process (real chat \
             templates need a few MB; look for a string or list that doubles in a loop or in \
             a recursive macro, which MiniJinja's `~`, `+` and `*` build with no bound of \
             their own)",
            "--jobs {jobs}"
        );
        assert!(
            took < Duration::from_secs(60),
            "--jobs {jobs}: took {took:?}"
        );
    }
    let fixed = test.write("q.jsonl", QUESTIONS);
    let run = fixed.run_in_store().run_within(120);
    run.assert_success();
}
