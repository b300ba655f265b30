//! Model layer benchmark (not a test): training-step and KV-cache generation throughput
//! of the `tiny` and `small` presets on the CPU backends compiled in.
//!
//! `cargo run --release --features bench,ndarray --bin bench_model -- [--backend flex|ndarray]
//! [--preset tiny|small] [--numerics portable|native] [--json]`; scripts/bench_torch.py runs
//! it next to PyTorch. flex runs once per numeric profile asked for (both by default), in
//! one process: the portable profile's cost is their ratio.

use std::time::Instant;

use r1flow::model::burn_prelude::*;
use r1flow::model::{
    generate, token_logprobs, Preset, SamplingParams, TextTokenizer, TokenBatch, Transformer,
};

/// Sequence shapes shared with scripts/bench_torch.py.
const TRAIN_BATCH: usize = 8;
const TRAIN_SEQ: usize = 128;
const PROMPT_LEN: usize = 16;
const NEW_TOKENS: usize = 64;

struct Args {
    backends: Vec<String>,
    presets: Vec<String>,
    /// flex's numeric profiles (`portable`, `native`).
    numerics: Vec<String>,
    json: bool,
    steps: usize,
    /// `train`, `generate` or both (empty).
    only: Option<String>,
    /// Measurements per figure; the best is reported (other processes share the CPU).
    repeats: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        backends: Vec::new(),
        presets: Vec::new(),
        numerics: Vec::new(),
        json: false,
        steps: 5,
        only: None,
        repeats: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => args.backends.extend(it.next()),
            "--preset" => args.presets.extend(it.next()),
            "--numerics" => args.numerics.extend(it.next()),
            "--steps" => args.steps = it.next().and_then(|s| s.parse().ok()).unwrap_or(5),
            "--json" => args.json = true,
            "--only" => args.only = it.next(),
            "--repeats" => args.repeats = it.next().and_then(|s| s.parse().ok()).unwrap_or(3),
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    if args.backends.is_empty() {
        if cfg!(feature = "flex") {
            args.backends.push("flex".into());
        }
        if cfg!(feature = "ndarray") {
            args.backends.push("ndarray".into());
        }
    }
    if args.presets.is_empty() {
        args.presets = vec!["tiny".into(), "small".into()];
    }
    if args.numerics.is_empty() {
        args.numerics = vec!["portable".into(), "native".into()];
    }
    args
}

/// `batch` rows of `len` token ids, token t of row r `(r·a + t·b) mod (vocab − 8) + 7`, as
/// scripts/bench_torch.py builds them.
fn token_rows(batch: usize, len: usize, (a, b): (usize, usize), vocab: u32) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|r| {
            (0..len)
                .map(|t| ((r * a + t * b) as u32) % (vocab - 8) + 7)
                .collect()
        })
        .collect()
}

fn report(json: bool, backend: &str, preset: &str, what: &str, tokens_per_s: f64) {
    if json {
        println!(
            "{}",
            serde_json::json!({"backend": backend, "preset": preset, "what": what, "tokens_per_s": tokens_per_s})
        );
    } else {
        println!("{backend:14} {preset:6} {what:12} {tokens_per_s:10.0} tok/s");
    }
}

fn bench<B: TrainBackend>(name: &str, preset: &str, args: &Args) {
    let device = B::Device::default();
    let config = match preset.parse::<Preset>() {
        Ok(p) => p.config(),
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let vocab = config.vocab_size as u32;
    let mut model = match Transformer::<B>::init(&config, 0, &device) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    // Training: next-token loss, backward, AdamW.
    let rows = token_rows(TRAIN_BATCH, TRAIN_SEQ, (31, 7), vocab);
    let batch = TokenBatch::right_padded(&rows, 0);
    let mut optim = AdamWConfig::new().init();
    let mut step = |model: Transformer<B>| {
        let lp = match token_logprobs(&model, &batch, &device) {
            Ok(lp) => lp,
            Err(e) => panic!("{e}"),
        };
        let loss = r1flow::model::kernels::mean(lp.logprobs).neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    if args.only.as_deref() != Some("generate") {
        model = step(model); // warm-up
        let mut best = 0.0f64;
        for _ in 0..args.repeats.max(1) {
            let t = Instant::now();
            for _ in 0..args.steps {
                model = step(model);
            }
            let _ = B::sync(&device);
            let tokens = args.steps * TRAIN_BATCH * TRAIN_SEQ;
            best = best.max(tokens as f64 / t.elapsed().as_secs_f64());
        }
        report(args.json, name, preset, "train", best);
    }
    if args.only.as_deref() == Some("train") {
        return;
    }

    // Generation with the KV cache on the inner backend.
    let inner = model.valid();
    let mut tok = TextTokenizer::builtin();
    tok.set_special_ids(vec![u32::MAX], None, None); // never stop early
    for gen_batch in [8usize, 32] {
        let prompts = token_rows(gen_batch, PROMPT_LEN, (13, 5), vocab);
        let params = SamplingParams {
            max_new_tokens: NEW_TOKENS,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 1,
            stop: Vec::new(),
        };
        let _ = generate(
            &inner,
            &tok,
            &prompts[..1],
            &SamplingParams {
                max_new_tokens: 4,
                ..params.clone()
            },
            &device,
        );
        let mut best = 0.0f64;
        for _ in 0..args.repeats.max(1) {
            let t = Instant::now();
            let out = match generate(&inner, &tok, &prompts, &params, &device) {
                Ok(o) => o,
                Err(e) => panic!("{e}"),
            };
            let tokens: usize = out.iter().map(|c| c.token_ids.len()).sum();
            best = best.max(tokens as f64 / t.elapsed().as_secs_f64());
        }
        let what = format!("generate_b{gen_batch}");
        report(args.json, name, preset, &what, best);
    }
}

fn main() {
    let args = parse_args();
    // On the CPU pool's thread, as `r1flow run` runs a stage (`BackendKind::run`).
    r1flow::model::backend::on_cpu_pool(|| run(&args));
}

fn run(args: &Args) {
    for backend in &args.backends {
        for preset in &args.presets {
            match backend.as_str() {
                #[cfg(feature = "flex")]
                "flex" => {
                    for numerics in &args.numerics {
                        let profile = match numerics.as_str() {
                            "portable" => r1flow::manifest::Numerics::Portable,
                            "native" => r1flow::manifest::Numerics::Native,
                            other => {
                                eprintln!("unknown numerics {other}: use portable or native");
                                continue;
                            }
                        };
                        let _profile = r1flow::model::kernels::profile::scoped(profile);
                        bench::<burn::backend::Autodiff<r1flow::model::backend::FlexBackend>>(
                            &format!("flex/{numerics}"),
                            preset,
                            args,
                        )
                    }
                }
                #[cfg(feature = "ndarray")]
                "ndarray" => {
                    bench::<burn::backend::Autodiff<r1flow::model::backend::NdArrayBackend>>(
                        backend, preset, args,
                    )
                }
                other => eprintln!("backend {other} is not compiled in"),
            }
        }
    }
}
