//! Benchmark (not a test): the math grader (`accuracy` with `mode: math`) over the
//! labelled grading set (`tests/data/grading/labelled.jsonl`), on one thread: verdicts per
//! second, the slowest case (each case's best time over the rounds), and agreement with the labels — the figure to set
//! next to math-verify's from `scripts/grading_agreement.py` (same set, one thread).
//! Core only, so its release build needs neither burn nor sled.
//!
//! Run: `cargo run --release -p r1flow-core --example bench_grading [VERDICTS]`.

use std::path::Path;
use std::time::Instant;

use r1flow_core::manifest::{AccuracyMode, AccuracyReward};
use r1flow_core::records::Answer;
use r1flow_core::rewards::{AccuracyVerifier, Verdict};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200_000);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/grading/labelled.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let mut cases: Vec<(String, Answer, bool)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line)?;
        let field = |name: &str| case[name].as_str().unwrap_or_default().to_string();
        cases.push((
            format!("<answer>{}</answer>", field("prediction")),
            Answer::Text(field("reference")),
            case["equal"].as_bool().unwrap_or(false),
        ));
    }
    let verifier = AccuracyVerifier::new(&AccuracyReward {
        mode: AccuracyMode::Math,
        ..AccuracyReward::default()
    });
    let rounds = (target / cases.len().max(1)).max(1);
    // Each case's fastest time over the rounds: its own cost, without the moments the
    // OS took the CPU away (on a shared machine those dwarf a verdict).
    let mut fastest = vec![f64::INFINITY; cases.len()];
    let mut agree = 0usize;
    let started = Instant::now();
    for round in 0..rounds {
        for (i, (completion, reference, equal)) in cases.iter().enumerate() {
            let one = Instant::now();
            let verdict = verifier.verdict(completion, Some(reference));
            fastest[i] = fastest[i].min(one.elapsed().as_secs_f64());
            if round == 0 && (verdict == Verdict::Correct) == *equal {
                agree += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let slowest = fastest
        .iter()
        .enumerate()
        .fold((0.0f64, 0usize), |worst, (i, &t)| {
            if t > worst.0 {
                (t, i + 1)
            } else {
                worst
            }
        });
    let verdicts = rounds * cases.len();
    println!(
        "math grading: {:.0} verdicts/s on one thread ({} labelled cases x {rounds}, reference \
         and answer parsed each time); slowest case {:.1} us (line {}, its best of {rounds}); \
         {agree}/{} agree \
         with the labels",
        verdicts as f64 / seconds,
        cases.len(),
        slowest.0 * 1e6,
        slowest.1,
        cases.len()
    );
    Ok(())
}
