//! Model layer (used by the CLI edge): `r1flow generate` and `r1flow export`, as clap
//! argument structs and run functions the binary wires in.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::Backend;

use super::kernels::TrainBackend;
use super::{
    from_bytes, generate, load_hf_dir, save_hf_dir, BackendKind, BackendTask, LoadedModel, Preset,
    SamplingParams, TextTokenizer, Transformer,
};
use crate::output_dir::{check_target, replace_dir, Existing};

/// Sample completions from a model.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// A HuggingFace checkpoint directory, an r1flow model file (safetensors bytes), or
    /// `preset:tiny` / `preset:small` (randomly initialised, for smoke tests).
    #[arg(long)]
    pub model: String,
    /// Prompt text; repeat for several prompts (they are generated as one batch).
    #[arg(long, required = true)]
    pub prompt: Vec<String>,
    /// Most tokens to generate per completion.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Random seed; the same seed gives the same completions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Completions per prompt.
    #[arg(long, default_value_t = 1)]
    pub num_samples: usize,
    /// Stop a completion once its text contains this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// tokenizer.json to use with an r1flow model file (default: the built-in one).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, wgpu or cuda (among those compiled in).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Print one JSON object per completion instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// Write a model as a HuggingFace directory (loads as Qwen2ForCausalLM).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// A HuggingFace checkpoint directory, an r1flow model file, or `preset:NAME`.
    #[arg(long)]
    pub model: String,
    /// Directory to write (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// tokenizer.json to ship with an r1flow model file (default: the built-in one).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Seed for `preset:NAME` initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace `--out` if it is not empty (its files are removed; the new directory is
    /// written beside it and renamed into place).
    #[arg(long)]
    pub force: bool,
}

/// Loads what `--model` names: `preset:NAME`, a HF directory, or r1flow model bytes.
pub fn load_model_spec<B: Backend>(
    spec: &str,
    tokenizer: Option<&Path>,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<LoadedModel<B>> {
    let tokenizer = || -> anyhow::Result<TextTokenizer> {
        Ok(match tokenizer {
            Some(p) => TextTokenizer::from_file(p)?,
            None => TextTokenizer::builtin(),
        })
    };
    if let Some(name) = spec.strip_prefix("preset:") {
        let config = name.parse::<Preset>()?.config();
        let model = Transformer::init(&config, seed, device)?;
        return Ok(LoadedModel {
            config,
            model,
            tokenizer: tokenizer()?,
        });
    }
    let path = Path::new(spec);
    if path.is_dir() {
        return load_hf_dir(path, device).with_context(|| format!("loading model from {spec}"));
    }
    let bytes = super::ModelError::read_file(path, super::error::MAX_WEIGHTS_BYTES)
        .with_context(|| format!("reading model file {spec}"))?;
    let (config, model) = from_bytes(&bytes, device).with_context(|| format!("reading {spec}"))?;
    Ok(LoadedModel {
        config,
        model,
        tokenizer: tokenizer()?,
    })
}

struct GenerateTask<'a>(&'a GenerateArgs);

impl BackendTask for GenerateTask<'_> {
    type Output = anyhow::Result<String>;
    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output {
        use std::fmt::Write as _;
        let args = self.0;
        // Generation needs no gradients: run on the inner backend.
        let loaded = load_model_spec::<B::InnerBackend>(
            &args.model,
            args.tokenizer.as_deref(),
            args.seed,
            &device,
        )?;
        let mut prompts = Vec::new();
        let mut which = Vec::new();
        for (i, p) in args.prompt.iter().enumerate() {
            let ids = loaded.tokenizer.encode(p, true)?;
            for s in 0..args.num_samples {
                prompts.push(ids.clone());
                which.push((i, s));
            }
        }
        // Positions past the model's context have no trained meaning (and no rotary
        // table entry): refuse rather than clamp, so the user picks what to give up.
        let longest_prompt = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let context = loaded.config.max_position_embeddings;
        if longest_prompt.saturating_add(args.max_new_tokens) > context {
            anyhow::bail!(
                "--max-new-tokens {} after a prompt of {longest_prompt} tokens exceeds the model's context: \
                 max_position_embeddings is {context}; ask for at most {} new tokens",
                args.max_new_tokens,
                context.saturating_sub(longest_prompt)
            );
        }
        let params = SamplingParams {
            max_new_tokens: args.max_new_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            seed: args.seed,
            stop: args.stop.clone(),
        };
        let completions = generate(&loaded.model, &loaded.tokenizer, &prompts, &params, &device)?;
        let mut out = String::new();
        for ((prompt, sample), c) in which.into_iter().zip(completions) {
            if args.json {
                let line = serde_json::json!({
                    "prompt": prompt, "sample": sample, "text": c.text,
                    "tokens": c.token_ids.len(), "finish": format!("{:?}", c.finish).to_lowercase(),
                });
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "--- prompt {prompt}, sample {sample} ({:?})", c.finish)?;
                writeln!(out, "{}{}", args.prompt[prompt], c.text)?;
            }
        }
        Ok(out)
    }
}

/// Runs `r1flow generate`: the completions as the text the CLI prints.
pub fn run_generate(args: &GenerateArgs) -> anyhow::Result<String> {
    let kind: BackendKind = args.backend.parse()?;
    kind.run(GenerateTask(args))?
}

/// Runs `r1flow export` (on the CPU: export only moves weights); what was written, as a
/// line for the CLI to print.
pub fn run_export(args: &ExportArgs) -> anyhow::Result<String> {
    type Cpu = super::CpuBackend;
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    // Refuse before loading anything.
    check_target(&args.out, existing)?;
    let device = Default::default();
    let loaded =
        load_model_spec::<Cpu>(&args.model, args.tokenizer.as_deref(), args.seed, &device)?;
    replace_dir(&args.out, existing, |dir| {
        save_hf_dir(&loaded.model, &loaded.config, &loaded.tokenizer, dir)
    })
    .with_context(|| format!("exporting to {}", args.out.display()))?;
    Ok(format!(
        "wrote {} (Qwen2ForCausalLM, {} parameters)",
        args.out.display(),
        loaded.config.num_params()
    ))
}
