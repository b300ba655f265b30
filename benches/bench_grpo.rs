//! GRPO step benchmark (not a test): seconds per step of the real `grpo` stage, split into
//! generation, rewards and update (log-probs, loss, backward, clipping, AdamW), at the
//! quickstart's sizes — 4 prompts × 8 completions of up to 96 tokens, `tiny` model.
//!
//! The stage runs through the library exactly as `r1flow run` runs it, on a temporary
//! store, after a short pretraining of the model (not timed). The split comes from the
//! `time/*` metrics the stage logs per step.
//!
//! `cargo run --release --features bench --bin bench_grpo -- [--steps N] [--beta B] [--json]`;
//! `scripts/bench_grpo_torch.py` runs it next to the same step written in PyTorch.

mod support;

use std::error::Error;
use std::path::Path;

struct Args {
    steps: usize,
    beta: f64,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        steps: 8,
        beta: 0.0,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--steps" => {
                args.steps = value("--steps")?
                    .parse()
                    .map_err(|e| format!("--steps: {e}"))?;
            }
            "--beta" => {
                args.beta = value("--beta")?
                    .parse()
                    .map_err(|e| format!("--beta: {e}"))?;
            }
            "--json" => args.json = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.steps < 2 {
        return Err("--steps must be at least 2 (the first step is a warm-up)".into());
    }
    Ok(args)
}

/// The quickstart's data and GRPO settings, from a briefly pretrained `tiny` model (GRPO
/// needs trained weights; 150 steps make it write answer-shaped text, so completions have
/// a realistic length rather than always running to the limit).
fn manifest(args: &Args) -> String {
    format!(
        r#"
name: bench-grpo
seed: 7
defaults: {{max_completion_length: 96, max_prompt_length: 64}}
models: {{tiny: {{preset: tiny}}}}
datasets:
  arithmetic:
    kind: arithmetic
    num_samples: 3000
    operations: [add]
    min_digits: 1
    max_digits: 1
    num_terms: 3
    noise: {{shortcut: 0.6, unformatted: 0.5}}
stages:
  tasks:
    kind: dataset
    source: arithmetic
    template: {{user: "Q: {{question}}\nA: <think>"}}
    test_size: 200
  base:
    kind: pretrain
    from: tiny
    data: tasks
    max_seq_length: 128
    learning_rate: 2.0e-3
    per_device_train_batch_size: 16
    max_steps: 150
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {{accuracy: 1.0, format: 0.5}}
    learning_rate: 5.0e-5
    num_generations: 8
    per_device_train_batch_size: 32
    max_steps: {steps}
    beta: {beta}
"#,
        steps = args.steps,
        beta = args.beta,
    )
}

/// Mean of each `time/*` series and of the completion length, first step left out.
struct Figures {
    generation_s: f64,
    reward_s: f64,
    update_s: f64,
    completion_length: f64,
    completion_length_max: f64,
    steps: usize,
}

fn run(dir: &Path, args: &Args) -> Result<Figures, Box<dyn Error>> {
    let logged = support::run_stage(dir, manifest(args), "zero")?;
    let mean = |name: &str| -> Result<f64, String> {
        logged
            .mean(name)
            .ok_or_else(|| format!("the stage logged no `{name}`"))
    };
    Ok(Figures {
        generation_s: mean("time/generation_s")?,
        reward_s: mean("time/reward_s")?,
        update_s: mean("time/update_s")?,
        completion_length: mean("completion_length")?,
        completion_length_max: mean("completion_length_max")?,
        steps: logged.steady.len(),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("r1flow-bench-grpo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir, &args);
    let _ = std::fs::remove_dir_all(&dir);
    let f = result?;
    let total = f.generation_s + f.reward_s + f.update_s;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "prompts": 4, "num_generations": 8, "max_completion_length": 96,
                "beta": args.beta, "steps": f.steps,
                "completion_length": f.completion_length,
                "completion_length_max": f.completion_length_max,
                "generation_s": f.generation_s, "reward_s": f.reward_s,
                "update_s": f.update_s, "step_s": total,
            })
        );
        return Ok(());
    }
    println!(
        "GRPO step, tiny model, 4 prompts x 8 completions (mean length {:.1}, longest {:.1} \
         of 96 tokens), beta {}, mean of {} steps after a warm-up:",
        f.completion_length, f.completion_length_max, args.beta, f.steps
    );
    for (phase, s) in [
        ("generation", f.generation_s),
        ("rewards", f.reward_s),
        ("update", f.update_s),
        ("step", total),
    ] {
        println!(
            "  {phase:<11} {s:>10.5} s  {:>5.1}%",
            100.0 * s / total.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}
