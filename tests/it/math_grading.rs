//! Grading real math answers: `r1flow score` on the labelled set (every verdict agrees
//! with its label, and nothing different in value is called correct), and
//! pipelines/math-grpo.yaml (MATH-layout data, `mode: math`, boxed answers) at CI size.

use crate::support::{metric_series, repo_root, Test};

const GRADER: &str = "name: grade\nrewards:\n  math: {kind: accuracy, mode: math}\n";

#[test]
fn score_grades_the_labelled_set_as_labelled() {
    let labelled = std::fs::read_to_string(repo_root().join("tests/data/grading/labelled.jsonl"))
        .expect("set");
    let cases: Vec<serde_json::Value> = labelled
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a labelled case"))
        .collect();
    assert!(
        cases.len() >= 300,
        "the labelled set has {} cases",
        cases.len()
    );
    let input: String = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "completion": format!("<think>…</think><answer>{}</answer>", c["prediction"].as_str().expect("prediction")),
                "answer": c["reference"],
            })
            .to_string()
                + "\n"
        })
        .collect();
    let test = Test::new()
        .write("grade.yaml", GRADER)
        .write("in.jsonl", input);
    let outcome = test
        .clone_args([
            "score",
            "--input",
            "in.jsonl",
            "--manifest",
            "grade.yaml",
            "--reward",
            "math",
        ])
        .run();
    assert!(outcome.success, "{}", outcome.stderr);
    let verdicts: Vec<serde_json::Value> = outcome
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a verdict line"))
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "one verdict per input line");
    let mut disagreements = Vec::new();
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let correct = verdict["verdict"] == "correct";
        let equal = case["equal"].as_bool().expect("label");
        assert!(
            !correct || equal,
            "called correct although the values differ: {case} → {verdict}"
        );
        if correct != equal {
            disagreements.push(format!("{case} → {verdict}"));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / cases.len() as f64;
    assert!(
        agreement >= 0.97,
        "agreement {agreement:.3}: {disagreements:#?}"
    );
    assert!(outcome
        .stderr
        .contains(&format!("scored {} lines", cases.len())));
}

#[test]
fn score_reports_unreadable_input_at_its_line() {
    let test = Test::new().write("grade.yaml", GRADER).write(
        "in.jsonl",
        "{\"completion\": \"<answer>1</answer>\", \"answer\": \"1\"}\n{\"completion\": 3\n",
    );
    let outcome = test
        .clone_args([
            "score",
            "--input",
            "in.jsonl",
            "--manifest",
            "grade.yaml",
            "--reward",
            "math",
        ])
        .run();
    assert!(!outcome.success);
    assert!(outcome.stderr.contains("in.jsonl:2:"), "{}", outcome.stderr);
    let unknown = test
        .clone_args([
            "score",
            "--input",
            "in.jsonl",
            "--manifest",
            "grade.yaml",
            "--reward",
            "nope",
        ])
        .run();
    assert!(
        !unknown.success && unknown.stderr.contains("declares no reward `nope`"),
        "{}",
        unknown.stderr
    );
}

/// pipelines/math-grpo.yaml with a micro model and few steps.
fn ci_sized() -> String {
    let mut manifest =
        std::fs::read_to_string(repo_root().join("pipelines/math-grpo.yaml")).expect("manifest");
    for (from, to) in [
        (
            "    preset: tiny\n",
            "    preset: tiny\n    hidden_size: 32\n    num_hidden_layers: 2\n    num_attention_heads: 4\n    num_key_value_heads: 2\n    intermediate_size: 64\n",
        ),
        // GRPO's steps first: the pretraining's new count would match it too.
        ("    max_steps: 20\n", "    max_steps: 2\n"),
        ("    max_steps: 200\n", "    max_steps: 20\n"),
    ] {
        assert!(manifest.contains(from), "math-grpo.yaml no longer has {from:?}");
        manifest = manifest.replacen(from, to, 1);
    }
    manifest
}

#[test]
fn the_math_pipeline_grades_every_reference_it_ships() {
    let data = std::fs::read(repo_root().join("pipelines/data/math-forms.jsonl")).expect("data");
    let test = Test::new()
        .write("m.yaml", ci_sized())
        .write("data/math-forms.jsonl", data);
    let outcome = test.clone_args(["run", "m.yaml", "--store", "store"]).run();
    assert!(outcome.success, "{}", outcome.stderr);
    let series = metric_series(&test, "rl");
    assert_eq!(series.len(), 2, "one point per GRPO step");
    for point in &series {
        let values = &point["values"];
        assert!(values["reward/accuracy"].as_f64().is_some(), "{values}");
        // Every shipped reference is read by the math grader: none is skipped.
        assert_eq!(
            values["reward/accuracy/skipped"].as_f64(),
            Some(0.0),
            "{values}"
        );
    }
}
