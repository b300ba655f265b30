//! Hostile inputs and faults (issue 12): nothing poisons the store, nothing runs away,
//! every error is located. One test per case, each through the real binary, each bounded
//! in time (`run_within`): a hostile input must fail fast with a clear message, never
//! block, exhaust memory or leave processes behind.

use crate::support::Test;

/// A micro model and a small generated dataset: what every case's manifest starts from.
const BASE: &str = r#"
name: hostile
seed: 1
models:
  micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}
datasets:
  arith: {kind: arithmetic, num_samples: 40, operations: [add], max_digits: 1}
"#;

fn manifest(rest: &str) -> String {
    format!("{BASE}{rest}")
}

fn validate(test: &Test) -> crate::support::Outcome {
    test.clone_args(["validate", "m.yaml"]).run_within(30)
}

// --- 2. non-finite numbers are rejected where they are written ------------------------

#[test]
fn non_finite_numbers_are_rejected_where_written() {
    let fields = [
        "learning_rate",
        "beta",
        "epsilon",
        "temperature",
        "top_p",
        "weight_decay",
        "max_grad_norm",
    ];
    for field in fields {
        for value in [".nan", ".inf", "-.inf", ".NaN", "-.Inf"] {
            let test = Test::new().write(
                "m.yaml",
                manifest(&format!(
                    r#"stages:
  tasks: {{kind: dataset, source: arith}}
  base: {{kind: pretrain, from: micro, data: tasks}}
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {{accuracy: 1.0}}
    {field}: {value}
"#
                )),
            );
            let outcome = validate(&test);
            assert!(!outcome.success, "{field}: {value} validated");
            assert!(
                outcome.stderr.contains("not a finite number")
                    && outcome.stderr.contains("m.yaml:16:"),
                "{field}: {value}: {}",
                outcome.stderr
            );
        }
    }
    // Every other float field too: one rule where values are decoded.
    for (section, line) in [
        ("defaults:\n  learning_rate: .inf\n", 9),
        (
            "rewards:\n  acc: {kind: accuracy, correct_score: .nan}\n",
            9,
        ),
        ("rewards:\n  long: {kind: length, penalty: -.inf}\n", 9),
    ] {
        let test = Test::new().write(
            "m.yaml",
            format!("{BASE}{section}stages:\n  tasks: {{kind: dataset, source: arith}}\n"),
        );
        let outcome = validate(&test);
        assert!(
            !outcome.success && outcome.stderr.contains(&format!("m.yaml:{line}:")),
            "{section}: {}",
            outcome.stderr
        );
    }
}

// --- 5. JSONL records have a size limit; errors quote an excerpt ----------------------

fn jsonl_project(data: impl AsRef<[u8]>) -> Test {
    Test::new().write("data.jsonl", data).write(
        "m.yaml",
        manifest(
            "  mine: {kind: jsonl, path: data.jsonl, format: prompts}\nstages:\n  tasks: {kind: dataset, source: mine}\n",
        ),
    )
}

#[test]
fn a_huge_jsonl_record_is_refused_at_validate() {
    let line = format!("{{\"prompt\": \"{}\"}}\n", "x".repeat(2 << 20));
    let outcome = validate(&jsonl_project(line));
    assert!(!outcome.success, "a 2 MiB record validated");
    assert!(
        outcome.stderr.contains("data.jsonl:1:") && outcome.stderr.contains("1 MiB"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.len() < 2000, "{}", outcome.stderr.len());

    // An invalid long line is quoted as an excerpt around the error, not whole.
    let line = format!("{{\"prompt\": \"{}\", oops}}\n", "y".repeat(20_000));
    let outcome = validate(&jsonl_project(line));
    assert!(!outcome.success);
    assert!(
        outcome.stderr.contains("data.jsonl:1:"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.len() < 2000, "{}", outcome.stderr);
}

#[test]
fn an_empty_jsonl_file_is_a_located_error() {
    let outcome = validate(&jsonl_project("\n\n"));
    assert!(!outcome.success, "an empty dataset validated");
    assert!(
        outcome.stderr.contains("no records") && outcome.stderr.contains("m.yaml:8:"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn dataset_files_must_stay_inside_the_project() {
    let test = Test::new().write(
        "m.yaml",
        manifest(
            "  leak: {kind: jsonl, path: /etc/passwd, format: prompts}\nstages:\n  tasks: {kind: dataset, source: leak}\n",
        ),
    );
    let outcome = validate(&test);
    assert!(!outcome.success);
    assert!(
        outcome.stderr.contains("outside the project") && !outcome.stderr.contains("root:"),
        "{}",
        outcome.stderr
    );
}

// --- 6. readers never trust metadata, never block ------------------------------------

fn mkfifo(test: &Test, name: &str) {
    let status = std::process::Command::new("mkfifo")
        .arg(test.path(name))
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

#[test]
fn device_and_fifo_manifests_fail_fast() {
    let outcome = Test::new().args(["validate", "/dev/zero"]).run_within(20);
    assert!(
        !outcome.success && outcome.stderr.contains("not a regular file"),
        "{}",
        outcome.stderr
    );
    let test = Test::new();
    mkfifo(&test, "m.yaml");
    let outcome = validate(&test);
    assert!(
        !outcome.success && outcome.stderr.contains("named pipe"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn named_files_that_are_not_regular_files_are_located_errors() {
    let test = Test::new().write(
        "m.yaml",
        manifest(
            r#"  mine: {kind: jsonl, path: data.jsonl, format: prompts}
  dir: {kind: jsonl, path: folder, format: prompts}
rewards:
  lang: {kind: language, detection: word_list, word_list: words.txt}
stages:
  tasks: {kind: dataset, source: mine}
  other: {kind: dataset, source: dir}
"#,
        ),
    );
    mkfifo(&test, "data.jsonl");
    mkfifo(&test, "words.txt");
    std::fs::create_dir_all(test.path("folder")).expect("mkdir");
    let outcome = validate(&test);
    assert!(!outcome.success);
    let stderr = &outcome.stderr;
    assert!(!stderr.contains("does not exist"), "{stderr}");
    assert!(
        stderr.contains("m.yaml:8:") && stderr.contains("is a named pipe"),
        "{stderr}"
    );
    assert!(
        stderr.contains("m.yaml:9:") && stderr.contains("is a directory"),
        "{stderr}"
    );
    assert!(stderr.contains("m.yaml:11:"), "{stderr}");
}

// --- 7. generated datasets have a size bound ------------------------------------------

#[test]
fn absurd_dataset_sizes_are_refused_at_validate() {
    for kind in [
        "{kind: arithmetic, num_samples: 18446744073709551615}",
        "{kind: countdown, num_samples: 18446744073709551615}",
    ] {
        let test = Test::new().write(
            "m.yaml",
            format!("{BASE}  huge: {kind}\nstages:\n  tasks: {{kind: dataset, source: huge}}\n"),
        );
        let outcome = validate(&test);
        assert!(
            !outcome.success
                && outcome.stderr.contains("m.yaml:8:")
                && outcome.stderr.contains("at most 1000000"),
            "{}",
            outcome.stderr
        );
    }
}

// --- weaker cases ----------------------------------------------------------------------

#[test]
fn manifest_encoding_problems_are_located_with_hints() {
    // A UTF-8 byte-order mark is not a second document.
    let with_bom = format!(
        "\u{feff}{}",
        manifest("stages:\n  tasks: {kind: dataset, source: arith}\n")
    );
    let outcome = validate(&Test::new().write("m.yaml", with_bom));
    assert!(outcome.success, "{}", outcome.stderr);

    // Tabs get a hint.
    let tabbed = manifest("stages:\n\ttasks: {kind: dataset, source: arith}\n");
    let outcome = validate(&Test::new().write("m.yaml", tabbed));
    assert!(
        !outcome.success && outcome.stderr.contains("indent with spaces"),
        "{}",
        outcome.stderr
    );

    // Non-UTF-8 bytes are located as file:line:col.
    let mut bytes = b"name: x\nseed: 1\ndescription: caf".to_vec();
    bytes.extend([0xE9, b'\n']);
    let outcome = validate(&Test::new().write("m.yaml", bytes));
    assert!(
        !outcome.success && outcome.stderr.contains("m.yaml:3:17"),
        "{}",
        outcome.stderr
    );
}
