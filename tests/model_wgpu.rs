//! The model layer on the `wgpu` backend (CI runs it on the CPU through Mesa's lavapipe):
//! the transformers parity fixture's logits and greedy tokens, and one AdamW step.
#![cfg(feature = "wgpu")]

use std::path::Path;

use r1flow::model::burn_prelude::*;
use r1flow::model::{generate, load_hf_dir, token_logprobs, SamplingParams, TokenBatch};

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
