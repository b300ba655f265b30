//! The model layer on the `wgpu` backend (CI runs it on the CPU through Mesa's lavapipe):
//! the transformers parity fixture's logits and greedy tokens, one AdamW step, the fused
//! operations against the CPU kernels, and training in f16 (mixed precision, with loss
//! scaling) against f32.
#![cfg(feature = "wgpu")]

use std::path::Path;

use r1flow::manifest::Dtype;
use r1flow::model::burn_prelude::*;
use r1flow::model::kernels::{self, precision};
use r1flow::model::{generate, load_hf_dir, token_logprobs, SamplingParams, TokenBatch};
use r1flow::train::loss_scale::LossScale;
use r1flow::train::unscale_and_clip;

type W = burn::backend::Wgpu;
type Ad = burn::backend::Autodiff<W>;

#[test]
fn wgpu_matches_the_transformers_fixture_and_trains() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2-tiny/hf");
    let device = Default::default();
    let loaded = load_hf_dir::<W>(&dir, &device).expect("fixture loads");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("json"))
            .expect("valid json");
    let prompts: Vec<Vec<u32>> =
        serde_json::from_value(expected["prompt_ids"].clone()).expect("ids");
    let greedy: Vec<Vec<u32>> = serde_json::from_value(expected["greedy"].clone()).expect("ids");

    let batch = TokenBatch::left_padded(&prompts, loaded.tokenizer.pad_id());
    let logits: Vec<f32> = loaded
        .model
        .forward(&batch, &device)
        .expect("forward")
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32");
    let bytes = std::fs::read(dir.join("expected_logits.safetensors")).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let want: Vec<f32> = st
        .tensor("logits")
        .expect("logits")
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let vocab = loaded.config.vocab_size;
    let mut worst = 0.0f32;
    for (slot, &valid) in batch.valid.iter().enumerate() {
        if valid {
            for v in 0..vocab {
                worst = worst.max((logits[slot * vocab + v] - want[slot * vocab + v]).abs());
            }
        }
    }
    assert!(worst <= 1e-4, "max abs logit difference {worst}");

    let params = SamplingParams {
        max_new_tokens: greedy[0].len(),
        temperature: 0.0,
        ..Default::default()
    };
    let out =
        generate(&loaded.model, &loaded.tokenizer, &prompts, &params, &device).expect("generates");
    for (got, want) in out.iter().zip(&greedy) {
        assert_eq!(&got.token_ids, want);
    }

    // One training step on the autodiff backend.
    let model = load_hf_dir::<Ad>(&dir, &device).expect("loads").model;
    let seqs = TokenBatch::right_padded(&prompts, 0);
    let lp = token_logprobs(&model, &seqs, &device).expect("logprobs");
    let loss = (lp.logprobs * lp.target_mask.clone()).sum().neg() / lp.target_mask.sum();
    let before = loss.clone().into_scalar().elem::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut optim = AdamWConfig::new().init();
    let model = optim.step(1e-2, model, grads);
    let lp = token_logprobs(&model.valid(), &seqs, &device).expect("logprobs");
    let after = ((lp.logprobs * lp.target_mask.clone()).sum().neg() / lp.target_mask.sum())
        .into_scalar()
        .elem::<f32>();
    assert!(after < before, "{before} -> {after}");
}

type CpuAd = burn::backend::Autodiff<r1flow::model::CpuBackend>;

/// Deterministic values in about [-2, 2] (a small LCG: the same on every backend).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// A leaf of the graph on backend `B` from host values.
fn leaf<B: AutodiffBackend, const D: usize>(data: &[f32], dims: [usize; D]) -> Tensor<B, D> {
    Tensor::<B, D>::from_data(TensorData::new(data.to_vec(), dims), &Default::default())
        .require_grad()
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().expect("f32")
}

/// The largest `|a - b| / (1 + |b|)`.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f32::max)
}

/// One fused operation of [`r1flow::model::kernels`] on both backends: its output and the
/// gradients of `Σ weights ⊙ output` with respect to its inputs, as host vectors.
fn forward_and_gradients<B: AutodiffBackend + KernelBackend>(
    op: &str,
    (rows, cols): (usize, usize),
) -> Vec<(String, Vec<f32>)>
where
    B::InnerBackend: KernelBackend,
{
    let n = rows * cols;
    let x = leaf::<B, 2>(&values(n, 1), [rows, cols]);
    let y = leaf::<B, 2>(&values(n, 2), [rows, cols]);
    let weights = Tensor::<B, 2>::from_data(
        TensorData::new(values(n, 3), [rows, cols]),
        &Default::default(),
    );
    let mut out = Vec::new();
    match op {
        "masked_softmax" => {
            let mask: Vec<f32> = (0..n)
                .map(|i| if i % cols > i / cols * 3 { -1.0e9 } else { 0.0 })
                .collect();
            let mask =
                Tensor::<B, 2>::from_data(TensorData::new(mask, [rows, cols]), &Default::default());
            let probs = B::masked_softmax(x.clone(), mask, 0.125);
            let grads = (probs.clone() * weights).sum().backward();
            out.push(("forward".into(), host(probs.inner())));
            out.push(("d scores".into(), host(x.grad(&grads).expect("grad"))));
        }
        "swiglu" => {
            let h = B::swiglu(x.clone(), y.clone());
            let grads = (h.clone() * weights).sum().backward();
            out.push(("forward".into(), host(h.inner())));
            out.push(("d gate".into(), host(x.grad(&grads).expect("grad"))));
            out.push(("d up".into(), host(y.grad(&grads).expect("grad"))));
        }
        "rms_norm" => {
            let gamma = leaf::<B, 1>(&values(cols, 4), [cols]);
            let h = B::rms_norm(x.clone(), gamma.clone(), 1e-6);
            let grads = (h.clone() * weights).sum().backward();
            out.push(("forward".into(), host(h.inner())));
            out.push(("d x".into(), host(x.grad(&grads).expect("grad"))));
            out.push(("d gamma".into(), host(gamma.grad(&grads).expect("grad"))));
        }
        "rotary" => {
            let angles = Tensor::<B, 2>::from_data(
                TensorData::new(values(n, 5), [rows, cols]),
                &Default::default(),
            );
            let h = B::rotary(x.clone(), angles.clone().cos(), angles.sin());
            let grads = (h.clone() * weights).sum().backward();
            out.push(("forward".into(), host(h.inner())));
            out.push(("d x".into(), host(x.grad(&grads).expect("grad"))));
        }
        "swap_middle" => {
            let x4 = leaf::<B, 4>(&values(n, 1), [2, rows / 2, cols / 4, 4]);
            let w4 = Tensor::<B, 4>::from_data(
                TensorData::new(values(n, 3), [2, cols / 4, rows / 2, 4]),
                &Default::default(),
            );
            let h = B::swap_middle(x4.clone());
            let grads = (h.clone() * w4).sum().backward();
            out.push(("forward".into(), host(h.inner())));
            out.push(("d x".into(), host(x4.grad(&grads).expect("grad"))));
        }
        "target_logprobs" => {
            let targets: Vec<i32> = (0..rows).map(|r| ((r * 7) % cols) as i32).collect();
            let targets = Tensor::<B, 1, Int>::from_data(
                TensorData::new(targets, [rows]),
                &Default::default(),
            );
            let lp = B::target_logprobs(x.clone(), targets, true);
            let row_weights = Tensor::<B, 1>::from_data(
                TensorData::new(values(rows, 6), [rows]),
                &Default::default(),
            );
            let grads = (lp.logprobs.clone() * row_weights).sum().backward();
            out.push(("forward".into(), host(lp.logprobs.inner())));
            out.push((
                "entropy".into(),
                host(lp.entropy.expect("asked for").inner()),
            ));
            out.push(("d logits".into(), host(x.grad(&grads).expect("grad"))));
        }
        "matmul" => {
            let a = leaf::<B, 3>(&values(n, 1), [2, rows / 2, cols]);
            let b = leaf::<B, 3>(&values(n, 2), [2, cols, rows / 2]);
            let h = B::matmul(a.clone(), b.clone());
            let grads = h.clone().sum().backward();
            out.push(("forward".into(), host(h.inner())));
            out.push(("d lhs".into(), host(a.grad(&grads).expect("grad"))));
            out.push(("d rhs".into(), host(b.grad(&grads).expect("grad"))));
        }
        other => panic!("no operation {other}"),
    }
    out
}

/// The fused operations on wgpu (r1flow's CubeCL kernels where `kernels/cube.rs` has one,
/// burn's compositions fused by burn's fusion elsewhere) against the CPU backend's
/// kernels, forward and backward. Prints the largest difference of each; they must stay
/// within 1e-4 relative (f32 sums in other orders differ by about 1e-6 here). Two shapes:
/// rows shorter than a row kernel's cube of units, and longer (600 columns, which 256
/// units cover in strides, the last one partial).
#[test]
fn fused_operations_on_wgpu_match_the_cpu_kernels() {
    let mut failures = Vec::new();
    for (shape, op) in [(12, 96), (6, 600)]
        .into_iter()
        .flat_map(|shape| kernels::OPERATIONS.map(|op| (shape, op)))
    {
        let gpu = forward_and_gradients::<Ad>(op, shape);
        let cpu = forward_and_gradients::<CpuAd>(op, shape);
        for ((what, got), (_, want)) in gpu.iter().zip(&cpu) {
            let difference = worst(got, want);
            eprintln!("{op} {shape:?} {what}: max relative difference {difference:.2e}");
            if difference > 1e-4 || got.iter().any(|v| !v.is_finite()) {
                failures.push(format!("{op} {shape:?} {what}: {difference}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The fixture's prompts, right-padded for training.
fn fixture_batch(dir: &Path) -> TokenBatch {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("json"))
            .expect("valid json");
    let prompts: Vec<Vec<u32>> =
        serde_json::from_value(expected["prompt_ids"].clone()).expect("ids");
    TokenBatch::right_padded(&prompts, 0)
}

/// `steps` AdamW steps of the fixture model on its prompts (mean next-token NLL, learning
/// rate 1e-3, global norm clipped at 1) with the products in `dtype`, as the training loop takes them: in
/// f16 the loss scaled by a [`LossScale`] and the gradients divided again before clipping.
/// Each step's loss and gradient norm (before clipping), and the scaler at the end.
fn train_steps(dtype: Dtype, steps: usize) -> (Vec<(f32, f64)>, Option<LossScale>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2-tiny/hf");
    let device = Default::default();
    let _precision = precision::scoped(dtype);
    let mut scaler = (dtype == Dtype::F16).then(LossScale::default);
    let mut model = load_hf_dir::<Ad>(&dir, &device).expect("loads").model;
    let batch = fixture_batch(&dir);
    let mut optim = AdamWConfig::new().init();
    let mut out = Vec::new();
    for _ in 0..steps {
        let lp = token_logprobs(&model, &batch, &device).expect("logprobs");
        let loss =
            kernels::sum(lp.logprobs * lp.target_mask.clone()).neg() / kernels::sum(lp.target_mask);
        let value = loss.clone().into_scalar().elem::<f32>();
        let scale = scaler.map_or(1.0, |s| s.scale);
        let mut grads = GradientsParams::from_grads(loss.mul_scalar(scale).backward(), &model);
        let norm = unscale_and_clip::<Ad, _>(&model, &mut grads, 1.0, scale);
        out.push((value, norm));
        if let Some(s) = &mut scaler {
            if !s.update(norm.is_finite()).expect("a scale of 1 or more") {
                continue;
            }
        }
        model = optim.step(1e-3, model, grads);
    }
    (out, scaler)
}

/// Largest difference allowed between a step's loss in f16 and in f32 (and the first
/// step's gradient norm), relative to `max(1, |f32 value|)`. On the first step the weights
/// are the same, so only the products' precision differs: f16 keeps 11 significant bits,
/// casting a product's operands rounds each by up to 2^-12 (2.4e-4) relative, and a logit,
/// a sum of `hidden` such products with errors of both signs, differs by about that much
/// again; so do a loss averaging log-softmaxes of them and a gradient norm over every
/// parameter. 2e-3 is eight times that. The later steps' weights differ too: AdamW moves
/// a weight whose gradient is within f16's noise of 0 by the learning rate either way,
/// which at 1e-3 over five steps moved the loss by 1.1e-4 on lavapipe (docs/src/gpu.md).
/// What the test is for shows far above it: a product whose gradient is lost or wrong in
/// the cast moves a loss by 1e-1 or more within a step or two, and a loss scale not
/// divided out multiplies the gradient norm by 65536.
const F16_TOLERANCE: f64 = 2e-3;

/// Five steps of the fixture model with f16 products (f32 master weights, moments and
/// losses; dynamic loss scaling) against the same steps in f32, on the same device.
#[test]
fn f16_training_follows_f32_within_tolerance() {
    let device = Default::default();
    assert!(
        precision::device_supports::<Ad>(&device, Dtype::F16),
        "this wgpu device has no f16 (lavapipe has: shaderFloat16, 16-bit storage)"
    );
    assert!(
        !precision::device_supports::<Ad>(&device, Dtype::Bf16),
        "WGSL has no bf16"
    );
    let (full, none) = train_steps(Dtype::F32, 5);
    let (half, scaler) = train_steps(Dtype::F16, 5);
    assert_eq!(none, None);
    let relative = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
    let mut worst_loss = 0.0f64;
    let mut worst_norm = 0.0f64;
    for (step, ((loss, norm), (loss16, norm16))) in full.iter().zip(&half).enumerate() {
        eprintln!(
            "step {step}: loss f32 {loss:.6} f16 {loss16:.6}, grad norm f32 {norm:.6} f16 {norm16:.6}"
        );
        worst_loss = worst_loss.max(relative(f64::from(*loss16), f64::from(*loss)));
        worst_norm = worst_norm.max(relative(*norm16, *norm));
    }
    let first_loss = relative(f64::from(half[0].0), f64::from(full[0].0));
    let first_norm = relative(half[0].1, full[0].1);
    eprintln!(
        "f16 vs f32, relative: first step loss {first_loss:.2e}, grad norm {first_norm:.2e}; \
         largest over the steps: loss {worst_loss:.2e}, grad norm {worst_norm:.2e}"
    );
    assert!(full[4].0 < full[0].0, "f32 trains: {full:?}");
    assert!(half[4].0 < half[0].0, "f16 trains: {half:?}");
    assert!(first_loss <= F16_TOLERANCE, "first loss: {first_loss}");
    assert!(first_norm <= F16_TOLERANCE, "first grad norm: {first_norm}");
    assert!(worst_loss <= F16_TOLERANCE, "loss: {worst_loss}");
    // This model's gradients fit f16 at the first scale: no step was skipped.
    assert_eq!(
        scaler.map(|s| (s.scale, s.skipped)),
        Some((LossScale::default().scale, 0))
    );
}

/// A real f16 overflow on the device: `Σ x·W` with `x` all 100 over 4 rows gives `W` the
/// gradient 400 everywhere, which times the scale leaves f16 (65504) until the scale is
/// 128: from 2^16, nine steps are skipped, each halving the scale, and the tenth gradient,
/// divided by its scale, is 400 exactly (f16 holds 51200).
#[test]
fn an_f16_overflow_halves_the_loss_scale_until_the_gradient_fits() {
    let device = Default::default();
    let _precision = precision::scoped(Dtype::F16);
    let x = Tensor::<Ad, 2>::from_data(TensorData::new(vec![100.0f32; 16], [4, 4]), &device);
    let w = leaf::<Ad, 2>(&values(16, 7), [4, 4]);
    let mut scaler = LossScale::default();
    let mut skipped = 0;
    let gradient = loop {
        let loss = kernels::sum(kernels::matmul(x.clone(), w.clone())).mul_scalar(scaler.scale);
        let grads = loss.backward();
        let g = host(w.grad(&grads).expect("grad"));
        let finite = g.iter().all(|v| v.is_finite());
        if scaler.update(finite).expect("the scale stays at 1 or more") {
            break g
                .iter()
                .map(|v| v / scaler.scale as f32)
                .collect::<Vec<_>>();
        }
        skipped += 1;
        assert!(skipped < 16, "never fit: {scaler:?}");
    };
    assert_eq!((skipped, scaler.skipped, scaler.scale), (9, 9, 128.0));
    assert_eq!(gradient, vec![400.0; 16]);
}
