//! Benchmark (not a test): how many completions per second the rule rewards score.
//! Generates Countdown items, builds 100k completions of every kind the rewards see
//! (right, wrong, hedged, malformed, long and mixed-language), and times each built-in
//! reward, the weighted combination, and the example external verifier over them.
//!
//! Run: `cargo run --release --features bench --bin bench_rewards [COMPLETIONS]`.

use std::time::Instant;

use std::path::Path;

use r1flow::manifest::{CommandReward, CountdownTask, RewardDecl};
use r1flow::records::Answer;
use r1flow::rewards::{Reward, RewardSet, Sample};
use r1flow::tasks::{countdown, SeededRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 100_000,
    };
    let task: CountdownTask = serde_json::from_value(serde_json::json!({ "num_samples": 1000 }))?;
    let items = countdown::generate(&task, 1)?;
    let mut rng = SeededRng::new(7);
    let mut rows: Vec<(String, Answer)> = Vec::with_capacity(total);
    for i in 0..total {
        let item = &items[i % items.len()];
        let think = &item.solution[..item.solution.find("</think>").unwrap_or(0)];
        let completion = match rng.below(8) {
            0 | 1 => item.solution.clone(),
            2 => format!("{think}</think> <answer> {} </answer>", item.question.len()),
            3 => format!("{} <answer> 1 + 2 </answer>", item.solution),
            4 => format!(
                "{think} 我们先算一下 </think> <answer>{}</answer> trailing",
                item.answer
            ),
            5 => format!(
                "{think}{}</think><answer>{}</answer>",
                " and then".repeat(200),
                item.answer
            ),
            6 => "<answer>(((((1 + 2) * 3) / 4) - 5) / 0)</answer>".to_string(),
            _ => String::new(),
        };
        rows.push((completion, Answer::Text(item.answer.clone())));
    }
    let samples: Vec<Sample<'_>> = rows
        .iter()
        .map(|(completion, answer)| Sample::new("", completion, Some(answer)))
        .collect();
    let bytes: usize = rows.iter().map(|(c, _)| c.len()).sum();
    println!(
        "{} completions, mean {} bytes",
        samples.len(),
        bytes / samples.len().max(1)
    );

    let names = ["accuracy", "format", "tag_count", "language", "length"];
    let mut set = Vec::new();
    for name in names {
        let reward = Reward::builtin(name).ok_or(format!("`{name}` is a built-in reward"))?;
        let started = Instant::now();
        let outcomes = reward.score_batch(&samples)?;
        let seconds = started.elapsed().as_secs_f64();
        let mean: f64 =
            outcomes.iter().filter_map(|o| o.score()).sum::<f64>() / outcomes.len().max(1) as f64;
        println!(
            "{name:>10}: {:>12.0} completions/s   (mean score {mean:.3})",
            samples.len() as f64 / seconds
        );
        set.push((reward, 1.0));
    }
    let set = RewardSet::new(set);
    let started = Instant::now();
    let batch = set.score(&samples)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  combined: {:>12.0} completions/s   (all five rewards, weighted sum; mean {:.3})",
        samples.len() as f64 / seconds,
        batch.metrics()["reward"]
    );

    // The external verifier example: one process per batch, so this is mostly Python's
    // JSON parsing; skipped where python3 is missing.
    let verifier = RewardDecl::Command(CommandReward {
        command: vec!["python3".into(), "verify.py".into()],
        timeout_s: 600.0,
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/verifier");
    let reward = Reward::from_decl("verifier", &verifier, &dir)?;
    let started = Instant::now();
    match reward.score_batch(&samples) {
        Ok(_) => println!(
            "  verifier: {:>12.0} completions/s   (examples/verifier/verify.py, one run)",
            samples.len() as f64 / started.elapsed().as_secs_f64()
        ),
        Err(e) => println!("  verifier: skipped ({e})"),
    }
    Ok(())
}
