//! Real-size benchmark (not a test): r1flow on a HuggingFace checkpoint directory, the
//! half that `scripts/bench_hf_grpo.py` runs next to TRL and transformers on the same
//! checkpoint, machine and threads.
//!
//! - `grpo`: a real `grpo` stage through the library, exactly as `r1flow run` runs it (a
//!   temporary store; the prompts rendered with the checkpoint's chat template from a
//!   GSM8K-layout file): seconds per step, split into generation, rewards and update.
//! - `generate`: KV-cache sampling of `--batch` rows of `--new-tokens` tokens each on the
//!   inner (non-autodiff) backend: generated tokens per second.
//! - `parity`: the logits of a checkpoint on `--backend` against the CPU backend's, for a
//!   few prompts (what scripts/gpu-check.sh runs on a GPU machine).
//!
//! Each mode is one process, so that its peak RSS is its own (the script reads it from
//! the kernel when the process exits). Prints one JSON line.
//!
//! `cargo build --release --features bench --bin bench_hf`, then
//! `bench_hf grpo --model DIR --data FILE [--steps N] [--prompts 4] [--generations 4]
//! [--completion 32] [--gradient-checkpointing on|off] [--lora R] [--backend cpu|wgpu|cuda]`
//! or
//! `bench_hf generate --model DIR [--batch 16] [--new-tokens 128]` or
//! `bench_hf parity --model DIR --backend wgpu|cuda`. `grpo` also takes `--dtype` (what a
//! manifest's `dtype:` says: f32 on the CPU, f16 on wgpu, bf16 or f16 on cuda; `check`
//! refuses any other pair before running). `--lora
//! R` (R ≥ 1) trains rank-R adapters on every linear layer (`lora: {r: R, alpha: 2R,
//! target_modules: [all-linear]}`) instead of every weight; `--beta B` sets the KL
//! coefficient (default 0, TRL's default), which adds the reference model's forward pass
//! (with LoRA, the frozen base without the adapters; otherwise a second copy of the weights).
//! `--numerics portable|native` picks the CPU's numeric profile; the benchmark runs
//! `native` (the profile to choose for speed) unless asked.

mod support;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use r1flow::model::burn_prelude::TrainBackend;
use r1flow::model::{
    self, BackendKind, BackendTask, CpuBackend, ModelError, SamplingParams, TokenBatch,
};
use r1flow::tasks::{chat_render, ChatMessage, ChatTemplate};

struct Args {
    mode: String,
    model: PathBuf,
    data: Option<PathBuf>,
    steps: u64,
    prompts: usize,
    generations: usize,
    completion: usize,
    batch: usize,
    new_tokens: usize,
    checkpointing: bool,
    backend: String,
    dtype: String,
    /// The LoRA rank; 0 trains every weight.
    lora: usize,
    /// The KL coefficient: above 0 the step also runs the reference model.
    beta: f64,
    /// The CPU's numeric profile (`numerics:`): `native` unless asked.
    numerics: String,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: bench_hf grpo|generate --model DIR …")?;
    let mut args = Args {
        mode,
        model: PathBuf::new(),
        data: None,
        steps: 4,
        prompts: 4,
        generations: 4,
        completion: 32,
        batch: 16,
        new_tokens: 128,
        checkpointing: true,
        backend: "cpu".into(),
        dtype: "f32".into(),
        lora: 0,
        beta: 0.0,
        numerics: "native".into(),
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |v: String, name: &str| v.parse::<usize>().map_err(|e| format!("{name}: {e}"));
        match a.as_str() {
            "--model" => args.model = PathBuf::from(value("--model")?),
            "--data" => args.data = Some(PathBuf::from(value("--data")?)),
            "--steps" => args.steps = number(value("--steps")?, "--steps")? as u64,
            "--prompts" => args.prompts = number(value("--prompts")?, "--prompts")?,
            "--generations" => args.generations = number(value("--generations")?, "--generations")?,
            "--completion" => args.completion = number(value("--completion")?, "--completion")?,
            "--batch" => args.batch = number(value("--batch")?, "--batch")?,
            "--new-tokens" => args.new_tokens = number(value("--new-tokens")?, "--new-tokens")?,
            "--gradient-checkpointing" => {
                args.checkpointing = match value("--gradient-checkpointing")?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--gradient-checkpointing on|off, not {other}")),
                }
            }
            "--backend" => args.backend = value("--backend")?,
            "--dtype" => args.dtype = value("--dtype")?,
            "--numerics" => args.numerics = value("--numerics")?,
            "--lora" => args.lora = number(value("--lora")?, "--lora")?,
            "--beta" => {
                args.beta = value("--beta")?
                    .parse()
                    .map_err(|e| format!("--beta: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.steps < 2 {
        return Err("--steps must be at least 2 (the first step is a warm-up)".into());
    }
    Ok(args)
}

/// GRPO on the checkpoint with TRL's defaults where the benchmark sets nothing: the
/// questions through the checkpoint's chat template (its own default system prompt),
/// accuracy and format rewards, `beta: 0` unless `--beta`, one micro-batch of every
/// completion of the step; with `--lora R`, rank-R adapters on every linear layer
/// (alpha 2R).
fn manifest(args: &Args, data: &Path) -> String {
    let batch = args.prompts * args.generations;
    let lora = match args.lora {
        0 => String::new(),
        r => format!(
            "    lora: {{r: {r}, alpha: {alpha}, target_modules: [all-linear]}}\n",
            alpha = 2 * r
        ),
    };
    format!(
        r#"
name: bench-hf
seed: 7
backend: {backend}
dtype: {dtype}
numerics: {numerics}
models:
  policy: {{path: "{model}"}}
datasets:
  gsm8k:
    kind: jsonl
    path: "{data}"
    format: prompts
    fields: {{prompt: question}}
    extract_answer: gsm8k
stages:
  prompts: {{kind: dataset, source: gsm8k, template: chat, chat_template: policy, test_size: 8}}
  grpo:
    kind: grpo
    from: policy
    prompts: prompts
    rewards: {{accuracy: 1.0, format: 0.5}}
    learning_rate: 1.0e-6
    num_generations: {generations}
    per_device_train_batch_size: {batch}
    max_prompt_length: 512
    max_completion_length: {completion}
    temperature: 1.0
    max_steps: {steps}
    beta: {beta:?}
    gradient_checkpointing: {checkpointing}
{lora}"#,
        model = args.model.display(),
        data = data.display(),
        generations = args.generations,
        completion = args.completion,
        steps = args.steps,
        checkpointing = args.checkpointing,
        backend = args.backend,
        dtype = args.dtype,
        beta = args.beta,
        numerics = args.numerics,
    )
}

fn grpo(args: &Args) -> Result<serde_json::Value, Box<dyn Error>> {
    let data = args.data.as_deref().ok_or("grpo needs --data")?;
    let dir = std::env::temp_dir().join(format!("r1flow-bench-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<serde_json::Value, Box<dyn Error>> {
        // Dataset files must lie beside the manifest (or in its git work tree).
        std::fs::copy(data, dir.join("prompts.jsonl"))?;
        let figures = support::run_stage(&dir, manifest(args, Path::new("prompts.jsonl")), "grpo")?;
        let mean = |name: &str| figures.mean(name).unwrap_or(0.0);
        let (generation, reward, update) = (
            mean("time/generation_s"),
            mean("time/reward_s"),
            mean("time/update_s"),
        );
        Ok(serde_json::json!({
            "steps": figures.steady.len(),
            "generation_s": generation, "reward_s": reward, "update_s": update,
            "step_s": generation + reward + update,
            "completion_length": mean("completion_length"),
            "gradient_checkpointing": args.checkpointing,
            "lora_r": args.lora,
            "beta": args.beta,
            "numerics": args.numerics,
            "run_s": figures.run_s,
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn generate(args: &Args) -> Result<serde_json::Value, Box<dyn Error>> {
    let device = Default::default();
    let loaded = model::load_hf_dir::<CpuBackend>(&args.model, &device)?;
    let template =
        ChatTemplate::from_checkpoint(&args.model)?.ok_or("the checkpoint has no chat template")?;
    let conversation = vec![ChatMessage::new(
        "user",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many \
         clips in May. How many clips did Natalia sell altogether in April and May?",
    )];
    let prompt = chat_render::render_all(&template, &[conversation], true)
        .map_err(|failure| failure.error.to_string())?
        .remove(0);
    let ids = loaded.tokenizer.encode(&prompt, false)?;
    let rows = vec![ids.clone(); args.batch];
    let params = |tokens: usize, seed: u64| SamplingParams {
        max_new_tokens: tokens,
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        seed,
        stop: Vec::new(),
    };
    // A short warm-up, then the timed run.
    model::generate(
        &loaded.model,
        &loaded.tokenizer,
        &rows,
        &params(4, 1),
        &device,
    )?;
    let clock = Instant::now();
    let completions = model::generate(
        &loaded.model,
        &loaded.tokenizer,
        &rows,
        &params(args.new_tokens, 2),
        &device,
    )?;
    let seconds = clock.elapsed().as_secs_f64();
    let tokens: usize = completions.iter().map(|c| c.token_ids.len()).sum();
    Ok(serde_json::json!({
        "batch": args.batch, "prompt_tokens": ids.len(), "new_tokens": args.new_tokens,
        "generated_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens as f64 / seconds,
    }))
}

/// A checkpoint's logits for a few prompts on the backend it runs on.
struct Logits {
    dir: PathBuf,
}

impl BackendTask for Logits {
    type Output = Result<Vec<f32>, String>;

    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output {
        let text = |e: ModelError| e.to_string();
        let loaded = model::load_hf_dir::<B::InnerBackend>(&self.dir, &device).map_err(text)?;
        let rows = ["Hello world, 12 + 30 = 42.", "<think>2+3</think>", "a"]
            .iter()
            .map(|line| loaded.tokenizer.encode(line, false))
            .collect::<Result<Vec<_>, _>>()
            .map_err(text)?;
        let batch = TokenBatch::right_padded(&rows, loaded.tokenizer.pad_id());
        let logits = loaded
            .model
            .forward(&batch, &device)
            .map_err(text)?
            .into_data();
        let values: Vec<f32> = logits
            .convert::<f32>()
            .into_vec()
            .map_err(|e| format!("reading logits: {e:?}"))?;
        // Padding positions are not compared.
        let vocab = loaded.config.vocab_size;
        Ok(batch
            .valid
            .iter()
            .zip(values.chunks_exact(vocab))
            .filter(|(valid, _)| **valid)
            .flat_map(|(_, row)| row.iter().copied())
            .collect())
    }
}

fn parity(args: &Args) -> Result<serde_json::Value, Box<dyn Error>> {
    let backend: BackendKind = args.backend.parse()?;
    let task = || Logits {
        dir: args.model.clone(),
    };
    let cpu = BackendKind::Cpu.run(task())??;
    let other = backend.run(task())??;
    if cpu.len() != other.len() {
        return Err(format!(
            "{} logits on the CPU, {} on {backend}",
            cpu.len(),
            other.len()
        )
        .into());
    }
    let worst = cpu
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = cpu.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    Ok(serde_json::json!({
        "backend": backend.to_string(), "model": args.model.display().to_string(),
        "logits": cpu.len(), "max_abs_diff": worst, "max_abs_logit": scale,
    }))
}

fn main() {
    if let Err(error) = run() {
        eprintln!("bench_hf: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = parse_args()?;
    args.model =
        std::fs::canonicalize(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    if let Some(data) = &args.data {
        args.data =
            Some(std::fs::canonicalize(data).map_err(|e| format!("{}: {e}", data.display()))?);
    }
    let out = match args.mode.as_str() {
        "grpo" => grpo(&args)?,
        // On the CPU pool's thread, as `r1flow generate` and the stages run.
        "generate" => model::backend::on_cpu_pool(|| generate(&args).map_err(|e| e.to_string()))?,
        "parity" => parity(&args)?,
        other => return Err(format!("unknown mode {other} (grpo, generate or parity)").into()),
    };
    println!("{out}");
    Ok(())
}
