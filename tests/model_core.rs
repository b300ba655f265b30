//! Model layer behaviour on the CPU backend with tiny shapes: padding, KV cache,
//! sampling, log-probs with gradients, checkpoints in and out.

use r1flow::model::burn_prelude::*;
use r1flow::model::{
    from_bytes, generate, load_hf_dir, save_hf_dir, to_bytes, token_logprobs, CpuBackend,
    FinishReason, SamplingParams, TextTokenizer, TokenBatch, Transformer,
};

mod common;

use common::config;

type B = CpuBackend;
type Ad = burn::backend::Autodiff<CpuBackend>;

fn host(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn left_padding_does_not_change_a_rows_logits() {
    let device = Default::default();
    let model = Transformer::<B>::init(&config(true, true), 1, &device).expect("init");
    let short = vec![10u32, 11, 12];
    let long = vec![20u32, 21, 22, 23, 24, 25];
    let alone = host(
        model
            .forward(
                &TokenBatch::left_padded(std::slice::from_ref(&short), 0),
                &device,
            )
            .expect("forward"),
    );
    let both = host(
        model
            .forward(&TokenBatch::left_padded(&[short, long], 0), &device)
            .expect("forward"),
    );
    let v = 263;
    // Row 0 is padded by 3 on the left: its last 3 positions are the short prompt.
    let padded_row = &both[3 * v..6 * v];
    assert!(max_diff(&alone, padded_row) < 1e-5);
}

#[test]
fn kv_cache_generation_matches_full_recomputation() {
    let device = Default::default();
    let model = Transformer::<B>::init(&config(false, true), 2, &device).expect("init");
    let tok = TextTokenizer::builtin();
    let prompts = vec![vec![7u32, 8, 9, 10], vec![11u32]];
    let params = SamplingParams {
        max_new_tokens: 6,
        temperature: 0.0,
        ..Default::default()
    };
    let out = generate(&model, &tok, &prompts, &params, &device).expect("generate");
    // Recompute greedily without a cache, one full forward per token.
    for (prompt, c) in prompts.iter().zip(&out) {
        let mut seq = prompt.clone();
        for &t in &c.token_ids {
            let logits = host(
                model
                    .forward(&TokenBatch::left_padded(&[seq.clone()], 0), &device)
                    .expect("forward"),
            );
            let last = &logits[(seq.len() - 1) * 263..seq.len() * 263];
            let best = (0..263).fold(0, |b, i| if last[i] > last[b] { i } else { b });
            assert_eq!(best as u32, t);
            seq.push(t);
        }
    }
}

#[test]
fn sampling_is_deterministic_per_seed_and_stops_per_row() {
    let device = Default::default();
    let model = Transformer::<B>::init(&config(true, true), 3, &device).expect("init");
    let tok = TextTokenizer::builtin();
    let prompts = vec![tok.encode("<think>", false).expect("enc"); 4];
    let params = SamplingParams {
        max_new_tokens: 8,
        temperature: 1.0,
        top_p: 0.95,
        top_k: 50,
        seed: 42,
        stop: Vec::new(),
    };
    let a = generate(&model, &tok, &prompts, &params, &device).expect("gen");
    let b = generate(&model, &tok, &prompts, &params, &device).expect("gen");
    assert_eq!(a, b);
    let c = generate(
        &model,
        &tok,
        &prompts,
        &SamplingParams {
            seed: 43,
            ..params.clone()
        },
        &device,
    )
    .expect("gen");
    assert_ne!(a, c);
    // Rows of one batch use different streams.
    assert!(a.iter().any(|x| x.token_ids != a[0].token_ids));

    // A stop string made of the first generated character stops that row at once.
    let first = a[0]
        .text
        .chars()
        .next()
        .map(String::from)
        .unwrap_or_default();
    if !first.is_empty() {
        let s = generate(
            &model,
            &tok,
            &prompts[..1],
            &SamplingParams {
                stop: vec![first.clone()],
                ..params
            },
            &device,
        )
        .expect("gen");
        assert_eq!(s[0].finish, FinishReason::Stop);
        assert!(s[0].text.ends_with(&first));
    }
}

#[test]
fn eos_ends_a_row_and_is_kept() {
    let device = Default::default();
    let cfg = config(false, false);
    let mut model = Transformer::<B>::init(&cfg, 4, &device).expect("init");
    // Make EOS (id 2) the argmax everywhere through a large lm_head column.
    let head = model.lm_head.take().expect("untied");
    let w = head.weight.val(); // [hidden, vocab]
    let boost = Tensor::<B, 2>::zeros([32, 263], &device).slice_assign(
        [0..32, 2..3],
        Tensor::<B, 2>::ones([32, 1], &device) * 100.0,
    );
    model.lm_head = Some(burn::nn::Linear {
        weight: burn::module::Param::from_tensor(w + boost),
        bias: None,
    });
    let tok = TextTokenizer::builtin();
    let out = generate(
        &model,
        &tok,
        &[vec![9u32, 9, 9]],
        &SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        &device,
    )
    .expect("gen");
    assert_eq!(out[0].finish, FinishReason::Eos);
    assert_eq!(out[0].token_ids.last(), Some(&2));
}

#[test]
fn logprobs_have_gradients_and_adamw_lowers_the_loss() {
    let device = Default::default();
    let mut model = Transformer::<Ad>::init(&config(true, true), 5, &device).expect("init");
    let seqs = vec![vec![1u32, 50, 60, 70, 80, 2], vec![1u32, 90, 100, 2]];
    let batch = TokenBatch::right_padded(&seqs, 0);
    let mut optim = AdamWConfig::new().init();
    let loss_of = |m: &Transformer<Ad>| {
        let lp = token_logprobs(m, &batch, &device).expect("logprobs");
        let mask = lp.target_mask.clone();
        (lp.logprobs * mask.clone()).sum().neg() / mask.sum()
    };
    let first = loss_of(&model).into_scalar().elem::<f32>();
    for _ in 0..5 {
        let loss = loss_of(&model);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    let last = loss_of(&model).into_scalar().elem::<f32>();
    assert!(last < first - 0.5, "loss {first} -> {last}");

    // The inner backend gives the same values without a graph.
    let inner = model.valid();
    let lp_inner = token_logprobs(&inner, &batch, &device).expect("logprobs");
    let lp_ad = token_logprobs(&model, &batch, &device).expect("logprobs");
    let a = lp_inner
        .logprobs
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32");
    let b = lp_ad
        .logprobs
        .inner()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32");
    assert!(max_diff(&a, &b) < 1e-6);
}

#[test]
fn bytes_and_hf_directories_round_trip_exactly() {
    let device = Default::default();
    let batch = TokenBatch::left_padded(&[vec![3u32, 4, 5, 6], vec![7u32, 8]], 0);
    for (tied, bias) in [(true, true), (false, false)] {
        let cfg = config(tied, bias);
        let model = Transformer::<B>::init(&cfg, 6, &device).expect("init");
        let want = host(model.forward(&batch, &device).expect("forward"));

        let bytes = to_bytes(&model, &cfg).expect("to_bytes");
        let (cfg2, back) = from_bytes::<B>(&bytes, &device).expect("from_bytes");
        assert_eq!(cfg2, cfg);
        assert_eq!(host(back.forward(&batch, &device).expect("forward")), want);

        let dir = tempfile::tempdir().expect("tmp");
        save_hf_dir(&model, &cfg, &TextTokenizer::builtin(), dir.path()).expect("export");
        let loaded = load_hf_dir::<B>(dir.path(), &device).expect("load");
        // Exported as Qwen2: q/k/v biases always present (zeros when the model had none).
        assert!(loaded.config.attention_bias);
        assert_eq!(loaded.tokenizer.eos_ids(), &[2]);
        assert_eq!(
            host(loaded.model.forward(&batch, &device).expect("forward")),
            want
        );
    }
}

#[test]
fn broken_checkpoints_are_errors_not_panics() {
    let device = Default::default();
    let dir = tempfile::tempdir().expect("tmp");
    assert!(load_hf_dir::<B>(dir.path(), &device).is_err());
    std::fs::write(dir.path().join("config.json"), "{ not json").expect("write");
    assert!(load_hf_dir::<B>(dir.path(), &device).is_err());
    assert!(from_bytes::<B>(b"garbage", &device).is_err());
}

#[test]
fn sharded_bf16_checkpoints_load() {
    let device = Default::default();
    let cfg = config(false, true);
    let model = Transformer::<B>::init(&cfg, 8, &device).expect("init");
    let batch = TokenBatch::left_padded(&[vec![3u32, 4, 5]], 0);
    let want = host(model.forward(&batch, &device).expect("forward"));
    let dir = tempfile::tempdir().expect("tmp");
    save_hf_dir(&model, &cfg, &TextTokenizer::builtin(), dir.path()).expect("export");

    // Re-split model.safetensors into two bf16 shards with an index, as HF does.
    let single = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&single).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", shard + 1);
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = part
            .iter()
            .map(|n| {
                let v = st.tensor(n).expect("tensor");
                let bf: Vec<u8> = v
                    .data()
                    .chunks_exact(4)
                    .flat_map(|c| {
                        half::bf16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .to_le_bytes()
                    })
                    .collect();
                weight_map.insert(n.clone(), file.clone().into());
                (n.clone(), v.shape().to_vec(), bf)
            })
            .collect();
        let views = data.iter().map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, s.clone(), b)
                    .expect("view"),
            )
        });
        let out = safetensors::serialize(views, None).expect("serialize");
        std::fs::write(dir.path().join(&file), out).expect("write");
    }
    std::fs::remove_file(&single).expect("rm");
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .expect("write");

    let loaded = load_hf_dir::<B>(dir.path(), &device).expect("sharded load");
    let got = host(loaded.model.forward(&batch, &device).expect("forward"));
    assert!(max_diff(&got, &want) < 2e-2, "{}", max_diff(&got, &want));
}

#[test]
fn cli_exports_a_preset_and_generates_from_it() {
    use r1flow::model::cli::{run_export, run_generate, ExportArgs, GenerateArgs};
    let dir = tempfile::tempdir().expect("tmp");
    run_export(&ExportArgs {
        model: "preset:tiny".into(),
        out: dir.path().to_path_buf(),
        tokenizer: None,
        seed: 1,
        force: false,
    })
    .expect("export");
    let mut args = GenerateArgs {
        model: dir.path().display().to_string(),
        prompt: vec!["<think>".into(), "2+2=".into()],
        max_new_tokens: 3,
        temperature: 0.0,
        top_p: 1.0,
        top_k: 0,
        seed: 0,
        num_samples: 2,
        stop: Vec::new(),
        tokenizer: None,
        backend: "cpu".into(),
        json: true,
    };
    run_generate(&args).expect("generate");
    if !cfg!(feature = "cuda") {
        args.backend = "cuda".into();
        let err = run_generate(&args)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--features cuda"), "{err}");
    }
}

#[test]
fn completion_logprobs_do_not_depend_on_batch_padding() {
    use r1flow::model::{completion_logprobs, PromptCompletionBatch};
    let device = Default::default();
    let model = Transformer::<B>::init(&config(true, true), 9, &device).expect("init");
    let prompts = vec![vec![1u32, 40, 41, 42], vec![1u32, 43]];
    let completions = vec![vec![50u32, 51], vec![52u32, 53, 54, 2]];
    let both = PromptCompletionBatch::new(&prompts, &completions, 0).expect("layout");
    let lp = completion_logprobs(&model, &both, &device, true).expect("logprobs");
    assert_eq!(lp.logprobs.dims(), [2, 4]);
    assert!(lp.entropy.is_some());
    let joint: Vec<f32> = lp
        .logprobs
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32");
    for r in 0..2 {
        let one =
            PromptCompletionBatch::new(&prompts[r..=r], &completions[r..=r], 0).expect("layout");
        let alone: Vec<f32> = completion_logprobs(&model, &one, &device, false)
            .expect("logprobs")
            .logprobs
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32");
        for (j, v) in alone.iter().enumerate() {
            assert!((joint[r * 4 + j] - v).abs() < 1e-5, "row {r} token {j}");
        }
    }
}
