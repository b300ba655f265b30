//! Check (tests): the labelled grading set, `tests/data/grading/labelled.jsonl` — (prediction,
//! reference, equal?) triples over every answer form — graded by the accuracy reward in
//! `mode: math`, the prediction inside `<answer>` tags as a completion would give it.
//! No verdict may say *correct* where the label says the answers differ, and the verdicts
//! must agree with the labels at least 97 % of the time (the disagreements are printed).

use serde::Deserialize;

use crate::manifest::{AccuracyMode, AccuracyReward};
use crate::records::Answer;
use crate::rewards::{AccuracyVerifier, Verdict};

#[derive(Deserialize)]
struct Case {
    prediction: String,
    reference: String,
    equal: bool,
    form: String,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/grading/labelled.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("the labelled set is in the repository");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1))
        })
        .collect()
}

#[test]
fn the_labelled_set_is_graded_as_labelled() {
    let cases = cases();
    assert!(cases.len() >= 300, "only {} labelled cases", cases.len());
    let verifier = AccuracyVerifier::new(&AccuracyReward {
        mode: AccuracyMode::Math,
        ..AccuracyReward::default()
    });
    let mut agree = 0;
    let mut false_positives = Vec::new();
    let mut disagreements = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let completion = format!("<answer>{}</answer>", case.prediction);
        let verdict = verifier.verdict(&completion, Some(&Answer::Text(case.reference.clone())));
        let correct = verdict == Verdict::Correct;
        if correct == case.equal {
            agree += 1;
            continue;
        }
        let line = format!(
            "line {} [{}] reference {:?} prediction {:?}: label {}, verdict {verdict:?}",
            i + 1,
            case.form,
            case.reference,
            case.prediction,
            if case.equal { "equal" } else { "different" },
        );
        if correct {
            false_positives.push(line.clone());
        }
        disagreements.push(line);
    }
    let share = agree as f64 / cases.len() as f64;
    eprintln!(
        "labelled set: {agree}/{} agree ({:.1} %)",
        cases.len(),
        100.0 * share
    );
    for line in &disagreements {
        eprintln!("  {line}");
    }
    assert!(
        false_positives.is_empty(),
        "graded correct but labelled different:\n{}",
        false_positives.join("\n")
    );
    assert!(
        share >= 0.97,
        "agreement {:.1} % is below 97 %",
        100.0 * share
    );
}
