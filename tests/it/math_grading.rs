//! Grading real math answers: `r1flow score` on the labelled set (every verdict agrees
//! with its label, and nothing different in value is called correct), and
//! pipelines/math-grpo.yaml (MATH-layout data, `mode: math`, boxed answers) at CI size.

use crate::support::{metric_series, repo_root, shipped_pipeline_with, Outcome, Test, MICRO_MODEL};

const GRADER: &str = "name: grade\nrewards:\n  math: {kind: accuracy, mode: math}\n";

/// `r1flow score` of the test's `in.jsonl` by reward `reward` of `grade.yaml`.
fn score(test: &Test, reward: &str) -> Outcome {
    test.clone_args([
        "score",
        "--input",
        "in.jsonl",
        "--manifest",
        "grade.yaml",
        "--reward",
        reward,
    ])
    .run()
}

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
    let outcome = score(&test, "math");
    outcome.assert_success();
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
    let outcome = score(&test, "math");
    outcome.assert_failure_says("in.jsonl:2:");
    let unknown = score(&test, "nope");
    unknown.assert_failure_says("declares no reward `nope`");
}

/// pipelines/math-grpo.yaml with a micro model and few steps.
fn ci_sized() -> String {
    shipped_pipeline_with(
        "math-grpo.yaml",
        &[
            MICRO_MODEL,
            // GRPO's steps first: the pretraining's new count would match it too.
            ("    max_steps: 20\n", "    max_steps: 2\n"),
            ("    max_steps: 200\n", "    max_steps: 20\n"),
        ],
    )
}

#[test]
fn the_math_pipeline_grades_every_reference_it_ships() {
    let data = std::fs::read(repo_root().join("pipelines/data/math-forms.jsonl")).expect("data");
    let test = Test::new()
        .write("m.yaml", ci_sized())
        .write("data/math-forms.jsonl", data);
    let outcome = test.run_in_store().run();
    outcome.assert_success();
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
